/**
 * A refused request (`reply` with `ok: false`), an `error` frame, or a request that could not complete:
 * `timeout` (no reply in time), `disconnected` (the connection was lost before the reply), `not_connected`
 * (the client was not online when asked), `closed` (disconnect() or signed out).
 */
export class ReplyError extends Error {
    code;
    topic;
    event;
    constructor(code, message, topic, event) {
        super(message);
        this.name = "ReplyError";
        this.code = code;
        this.topic = topic;
        this.event = event;
    }
}
