import type { ErrorCode } from "./events.js";

/** Codes the client itself uses (the server's are `ErrorCode`). */
export type ClientErrorCode = "timeout" | "disconnected" | "not_connected" | "closed";

/**
 * A refused request (`reply` with `ok: false`), an `error` frame, or a request that could not complete:
 * `timeout` (no reply in time), `disconnected` (the connection was lost before the reply), `not_connected`
 * (the client was not online when asked), `closed` (disconnect() or signed out).
 */
export class ReplyError extends Error {
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  readonly topic: string | undefined;
  readonly event: string | undefined;

  constructor(code: string, message: string, topic?: string, event?: string) {
    super(message);
    this.name = "ReplyError";
    this.code = code;
    this.topic = topic;
    this.event = event;
  }
}
