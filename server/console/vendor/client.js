// The connection: one WebSocket for every topic. Authentication by frame, in-band token refresh, app-level
// ping, reconnect with jittered exponential backoff (at once on 1012), and the dispatch of server frames to
// requests (by ref) and topics (by name). Protocol: docs/realtime.md.
import { describeClose } from "./codes.js";
import { Emitter } from "./emitter.js";
import { ReplyError } from "./errors.js";
import { jwtExpiry } from "./jwt.js";
import { LiveSession } from "./live.js";
import { memoryPositions } from "./positions.js";
import { Topic } from "./topic.js";
const SUBPROTOCOL = "conversme.v1";
const OPEN = 1;
const CLIENT_CLOSE = 4000; // we dropped the socket ourselves (no pong, or reconnect())
const MAX_AUTH_FAILURES = 3;
const MIN_REFRESH_MS = 1000;
export class Client extends Emitter {
    o;
    WS;
    topics = new Map();
    pending = new Map();
    host;
    ws = null;
    ready = false;
    stoppedByUser = true;
    nextRef = 1;
    attempt = 0;
    authFailures = 0;
    reconnectTimer;
    refreshTimer;
    pingTimer;
    _status = "idle";
    _session = null;
    constructor(options) {
        super();
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (!WS) {
            throw new TypeError("no WebSocket: pass the WebSocket option (Node 20: run with --experimental-websocket)");
        }
        this.WS = WS;
        this.o = {
            url: options.url,
            getToken: options.getToken,
            timeout: options.timeout ?? 10_000,
            heartbeat: options.heartbeat ?? true,
            refreshBefore: options.refreshBefore ?? 60_000,
            positions: options.positions ?? memoryPositions(),
            backoff: { initial: options.backoff?.initial ?? 500, max: options.backoff?.max ?? 15_000 },
        };
        const self = this;
        this.host = {
            get online() { return self.ready; },
            positions: this.o.positions,
            request: (frame, opts) => this.request(frame, opts),
            delivered: (msg) => this.emit("msg", msg),
        };
    }
    get status() {
        return this._status;
    }
    get session() {
        return this._session;
    }
    /** The Topic for `name` (`event:<id>`, `user:<id>`, `live:<id>`); the same object for the same name. */
    topic(name, options) {
        const key = name.toLowerCase();
        if (key.startsWith("live:"))
            return this.live(key, options);
        let topic = this.topics.get(key);
        if (!topic)
            this.topics.set(key, (topic = new Topic(this.host, key, options)));
        return topic;
    }
    /** The LiveSession for a live context id or `live:<id>`. */
    live(contextIdOrTopic, options) {
        const key = (contextIdOrTopic.includes(":") ? contextIdOrTopic : `live:${contextIdOrTopic}`).toLowerCase();
        let topic = this.topics.get(key);
        if (!topic)
            this.topics.set(key, (topic = new LiveSession(this.host, key, options)));
        if (!(topic instanceof LiveSession))
            throw new TypeError(`${key} is not a live topic`);
        return topic;
    }
    /** Open the socket and keep it open (reconnecting) until disconnect() or a final close. */
    connect() {
        if (!this.stoppedByUser && (this.ws || this.reconnectTimer !== undefined))
            return;
        this.stoppedByUser = false;
        this.attempt = 0;
        this.authFailures = 0;
        this.open();
    }
    /** Close (1000) and stop reconnecting. Topics stay wanted: connect() rejoins and resumes them. */
    disconnect() {
        this.stoppedByUser = true;
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        const ws = this.detach();
        ws?.close(1000, "client disconnect");
        this.lost(1000, "client disconnect", "closed");
    }
    /** Drop the current socket and connect again at once, resuming every joined topic. */
    reconnect() {
        if (this.stoppedByUser)
            return this.connect();
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        const ws = this.detach();
        ws?.close(CLIENT_CLOSE, "reconnect");
        if (ws)
            this.lost(CLIENT_CLOSE, "reconnect", "offline", 0);
        this.open();
    }
    /** Get a fresh token (`getToken(true)`) and hand it to the socket in-band now. */
    async refresh() {
        const token = await this.o.getToken(true);
        await this.request({ op: "refresh", token });
        this.scheduleRefresh(token);
        this.emit("refresh");
    }
    // ---- the socket ----------------------------------------------------------------------------------------
    open() {
        this.reconnectTimer = undefined;
        this.setStatus("connecting");
        let ws;
        try {
            ws = new this.WS(this.o.url, SUBPROTOCOL);
        }
        catch {
            this.scheduleReconnect(1006, "could not open");
            return;
        }
        this.ws = ws;
        ws.onopen = () => void this.authenticate(ws);
        ws.onmessage = (event) => this.ws === ws && this.dispatch(event.data);
        ws.onclose = (event) => {
            if (this.ws !== ws)
                return; // a socket we already let go of
            this.ws = null;
            this.closed(event.code, event.reason ?? "");
        };
        ws.onerror = () => { }; // a close event always follows
    }
    /** Forget the current socket (its events are ignored from now on) and return it. */
    detach() {
        const ws = this.ws;
        this.ws = null;
        if (ws)
            ws.onopen = ws.onmessage = ws.onclose = null;
        return ws;
    }
    async authenticate(ws) {
        let token;
        try {
            token = await this.o.getToken(false);
        }
        catch {
            this.signOut(ws, "getToken failed");
            return;
        }
        if (this.ws !== ws)
            return;
        let session;
        try {
            session = await this.request({ op: "auth", token });
        }
        catch {
            return; // the server closes 4001 after a refused auth; closed() handles it
        }
        if (this.ws !== ws)
            return;
        this.ready = true;
        this.attempt = 0;
        this.authFailures = 0;
        this._session = session;
        this.scheduleRefresh(token);
        this.startHeartbeat(session.heartbeat);
        this.setStatus("online");
        this.emit("open", session);
        for (const topic of this.topics.values())
            if (topic.isWanted)
                topic.sendJoin();
    }
    closed(code, reason) {
        if (this.stoppedByUser)
            return this.lost(code, reason, "closed");
        if (code === 1008 || code === 1009 || code === 1000)
            return this.stop(code, reason, "closed");
        if (code === 4001) {
            if (reason === "session ended" || ++this.authFailures > MAX_AUTH_FAILURES) {
                return this.stop(code, reason, "signed-out");
            }
            const delay = this.delayFor(code);
            this.lost(code, reason, "offline", delay);
            // The token was refused or expired: a fresh one first (rejecting means signed out).
            this.o.getToken(true).then(() => this.later(delay), () => this.stop(code, "getToken failed", "signed-out"));
            return;
        }
        this.scheduleReconnect(code, reason);
    }
    scheduleReconnect(code, reason) {
        const delay = this.delayFor(code);
        this.lost(code, reason, "offline", delay);
        this.later(delay);
    }
    later(delay) {
        if (this.stoppedByUser || this._status === "signed-out" || this._status === "closed")
            return;
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = setTimeout(() => this.open(), delay);
    }
    delayFor(code) {
        const jitter = 0.5 + Math.random();
        let delay = Math.min(this.o.backoff.max, this.o.backoff.initial * 2 ** this.attempt) * jitter;
        if (code === 1012)
            delay = Math.random() * 1000; // server restarting: resume elsewhere at once, spread out
        if (code === 4029)
            delay = 30_000 + Math.random() * 30_000; // sustained push abuse: back off
        this.attempt += 1;
        return Math.round(delay);
    }
    /** Everything that ends with a connection: pending requests, timers, topic states; then announce it. */
    lost(code, reason, status, reconnectIn = null) {
        this.ready = false;
        this._session = null;
        clearInterval(this.pingTimer);
        clearTimeout(this.refreshTimer);
        const error = status === "offline"
            ? new ReplyError("disconnected", `connection lost (${code})`)
            : new ReplyError("closed", `connection closed (${code})`);
        for (const p of this.pending.values()) {
            clearTimeout(p.timer);
            p.reject(new ReplyError(error.code, error.message, p.topic, p.event));
        }
        this.pending.clear();
        for (const topic of this.topics.values()) {
            topic.connectionLost();
            if (status !== "offline")
                topic.stopped(error);
        }
        const label = describeClose(code, reason);
        this.setStatus(status, { code, reason, label });
        this.emit("close", { code, reason, label, reconnectIn: status === "offline" ? reconnectIn : null });
    }
    /** A close that ends reconnecting: `closed` (connect() starts again) or `signed-out` (the user must sign in). */
    stop(code, reason, status) {
        if (status === "signed-out")
            this.stoppedByUser = true;
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.lost(code, reason, status);
    }
    signOut(ws, reason) {
        if (this.ws !== ws)
            return;
        this.detach();
        ws.close(1000, reason);
        this.stop(4001, reason, "signed-out");
    }
    // ---- requests: every frame with a ref gets exactly one answer ---------------------------------------------
    request(frame, options = {}) {
        const topic = typeof frame.topic === "string" ? frame.topic : undefined;
        const event = typeof frame.event === "string" ? frame.event : undefined;
        const ws = this.ws;
        // Anything but auth before the auth reply would close the socket with 4001.
        if (!ws || ws.readyState !== OPEN || (!this.ready && frame.op !== "auth")) {
            return Promise.reject(new ReplyError("not_connected", "not connected", topic, event));
        }
        const ref = String(this.nextRef++);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(ref);
                reject(new ReplyError("timeout", `no reply to ${String(frame.op)} in time`, topic, event));
            }, options.timeout ?? this.o.timeout);
            this.pending.set(ref, { resolve: resolve, reject, timer, onReply: options.onReply, topic, event });
            ws.send(JSON.stringify({ ...frame, ref }));
        });
    }
    dispatch(raw) {
        let frame;
        try {
            frame = JSON.parse(String(raw));
        }
        catch {
            return; // the server sends JSON text only
        }
        switch (frame.op) {
            case "msg": {
                this.topics.get(frame.topic ?? "")?.receive(frame);
                return;
            }
            case "reply":
            case "pong": {
                const waiting = this.pending.get(String(frame.ref));
                if (!waiting)
                    return;
                this.pending.delete(String(frame.ref));
                clearTimeout(waiting.timer);
                if (frame.op === "pong" || frame.ok) {
                    const data = frame.data ?? {};
                    try {
                        waiting.onReply?.(data);
                    }
                    finally {
                        waiting.resolve(data);
                    }
                }
                else {
                    const e = frame.error ?? { code: "internal", message: "refused" };
                    waiting.reject(new ReplyError(e.code, e.message, waiting.topic, waiting.event));
                }
                return;
            }
            case "presence":
                this.topics.get(frame.topic ?? "")?.presenceDiff(frame.joins ?? {}, frame.leaves ?? {});
                return;
            case "left":
                this.topics.get(frame.topic ?? "")?.removed(frame.reason ?? "revoked");
                return;
            case "error": {
                const e = frame.error ?? { code: "internal", message: "error" };
                this.emit("error", new ReplyError(e.code, e.message));
                return;
            }
        }
    }
    // ---- token refresh and heartbeat -----------------------------------------------------------------------------
    scheduleRefresh(token) {
        clearTimeout(this.refreshTimer);
        const exp = jwtExpiry(token);
        if (exp === null)
            return; // not a JWT we can read: the server closes 4001 at expiry and we reconnect
        const inMs = Math.max(MIN_REFRESH_MS, exp * 1000 - Date.now() - this.o.refreshBefore);
        this.refreshTimer = setTimeout(() => {
            // Refused or lost: the server closes 4001 when the old token expires, and closed() reconnects.
            this.refresh().catch(() => { });
        }, inMs);
    }
    startHeartbeat(seconds) {
        clearInterval(this.pingTimer);
        if (!this.o.heartbeat || !(seconds > 0))
            return;
        this.pingTimer = setInterval(() => {
            const ws = this.ws;
            this.request({ op: "ping" }).catch((error) => {
                if (ws !== this.ws || !(error instanceof ReplyError) || error.code !== "timeout")
                    return;
                // No pong: the connection is dead even if the socket does not know it yet.
                this.detach()?.close(CLIENT_CLOSE, "no pong");
                this.scheduleReconnect(CLIENT_CLOSE, "no pong");
            });
        }, seconds * 1000);
    }
    setStatus(status, detail) {
        if (status === this._status && !detail)
            return;
        this._status = status;
        this.emit("status", status, detail);
    }
}
