// The connection: one WebSocket for every topic. Authentication by frame, in-band token refresh, app-level
// ping, reconnect with jittered exponential backoff (at once on 1012), and the dispatch of server frames to
// requests (by ref) and topics (by name). Protocol: docs/realtime.md.
import { describeClose } from "./codes.js";
import { Emitter } from "./emitter.js";
import { ReplyError } from "./errors.js";
import type { LeftReason, PresenceMeta } from "./events.js";
import { jwtExpiry } from "./jwt.js";
import { LiveSession } from "./live.js";
import { memoryPositions, type PositionStore } from "./positions.js";
import { type Msg, type RequestOptions, Topic, type TopicHost, type TopicOptions } from "./topic.js";

/** The parts of the WHATWG WebSocket the client uses (browsers, Node 22+, Node 20 with the flag). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** `ws(s)://host/ws` */
  url: string;
  /** An access JWT; `force`: a fresh one is needed (in-band refresh, or after 4001). Rejecting = signed out. */
  getToken: (force: boolean) => Promise<string>;
  /** Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** How long a request waits for its reply (ms). Default 10000. */
  timeout?: number;
  /** Send the app-level ping at the server's interval; no pong in `timeout` → reconnect. Default true. */
  heartbeat?: boolean;
  /** Refresh the token in-band this long before the JWT's `exp` (ms). Default 60000. */
  refreshBefore?: number;
  /** Reconnect delays: `initial · 2^attempt` capped at `max`, jittered ×(0.5…1.5). Default 500 / 15000 ms. */
  backoff?: { initial?: number; max?: number };
  /** Where per-topic positions are kept. Default: in memory. */
  positions?: PositionStore;
}

export type Status = "idle" | "connecting" | "online" | "offline" | "signed-out" | "closed";

/** The `auth` reply of the current connection. */
export interface Session {
  userId: string;
  connectionId: string;
  heartbeat: number;
}

export interface StatusDetail {
  code?: number;
  reason?: string;
  label?: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
  label: string;
  /** ms until the next attempt, or null when the client will not reconnect. */
  reconnectIn: number | null;
}

export interface ClientEvents {
  status: (status: Status, detail?: StatusDetail) => void;
  open: (session: Session) => void;
  close: (info: CloseInfo) => void;
  /** An `error` frame: a frame the server could not tie to a ref. */
  error: (error: ReplyError) => void;
  /** Every delivered msg of every topic. */
  msg: (msg: Msg) => void;
  /** The token was refreshed in-band. */
  refresh: () => void;
}

interface Pending {
  resolve: (data: unknown) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
  onReply: ((data: unknown) => void) | undefined;
  topic: string | undefined;
  event: string | undefined;
}

interface Frame {
  op?: string;
  ref?: string | null;
  ok?: boolean;
  data?: unknown;
  error?: { code: string; message: string };
  topic?: string;
  event?: string;
  joins?: Record<string, PresenceMeta>;
  leaves?: Record<string, unknown>;
  reason?: LeftReason;
}

const SUBPROTOCOL = "conversme.v1";
const OPEN = 1;
const CLIENT_CLOSE = 4000; // we dropped the socket ourselves (no pong, or reconnect())
const MAX_AUTH_FAILURES = 3;
const MIN_REFRESH_MS = 1000;

export class Client extends Emitter<ClientEvents> {
  private readonly o: Required<Omit<ClientOptions, "backoff" | "WebSocket">> & { backoff: { initial: number; max: number } };
  private readonly WS: WebSocketConstructor;
  private readonly topics = new Map<string, Topic>();
  private readonly pending = new Map<string, Pending>();
  private readonly host: TopicHost;
  private ws: WebSocketLike | null = null;
  private ready = false;
  private stoppedByUser = true;
  private nextRef = 1;
  private attempt = 0;
  private authFailures = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private _status: Status = "idle";
  private _session: Session | null = null;

  constructor(options: ClientOptions) {
    super();
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
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

  get status(): Status {
    return this._status;
  }

  get session(): Session | null {
    return this._session;
  }

  /** The Topic for `name` (`event:<id>`, `user:<id>`, `live:<id>`); the same object for the same name. */
  topic(name: string, options?: TopicOptions): Topic {
    const key = name.toLowerCase();
    if (key.startsWith("live:")) return this.live(key, options);
    let topic = this.topics.get(key);
    if (!topic) this.topics.set(key, (topic = new Topic(this.host, key, options)));
    return topic;
  }

  /** The LiveSession for a live context id or `live:<id>`. */
  live(contextIdOrTopic: string, options?: TopicOptions): LiveSession {
    const key = (contextIdOrTopic.includes(":") ? contextIdOrTopic : `live:${contextIdOrTopic}`).toLowerCase();
    let topic = this.topics.get(key);
    if (!topic) this.topics.set(key, (topic = new LiveSession(this.host, key, options)));
    if (!(topic instanceof LiveSession)) throw new TypeError(`${key} is not a live topic`);
    return topic;
  }

  /** Open the socket and keep it open (reconnecting) until disconnect() or a final close. */
  connect(): void {
    if (!this.stoppedByUser && (this.ws || this.reconnectTimer !== undefined)) return;
    this.stoppedByUser = false;
    this.attempt = 0;
    this.authFailures = 0;
    this.open();
  }

  /** Close (1000) and stop reconnecting. Topics stay wanted: connect() rejoins and resumes them. */
  disconnect(): void {
    this.stoppedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.detach();
    ws?.close(1000, "client disconnect");
    this.lost(1000, "client disconnect", "closed");
  }

  /** Drop the current socket and connect again at once, resuming every joined topic. */
  reconnect(): void {
    if (this.stoppedByUser) return this.connect();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.detach();
    ws?.close(CLIENT_CLOSE, "reconnect");
    if (ws) this.lost(CLIENT_CLOSE, "reconnect", "offline", 0);
    this.open();
  }

  /** Get a fresh token (`getToken(true)`) and hand it to the socket in-band now. */
  async refresh(): Promise<void> {
    const token = await this.o.getToken(true);
    await this.request({ op: "refresh", token });
    this.scheduleRefresh(token);
    this.emit("refresh");
  }

  // ---- the socket ----------------------------------------------------------------------------------------

  private open(): void {
    this.reconnectTimer = undefined;
    this.setStatus("connecting");
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.o.url, SUBPROTOCOL);
    } catch {
      this.scheduleReconnect(1006, "could not open");
      return;
    }
    this.ws = ws;
    ws.onopen = () => void this.authenticate(ws);
    ws.onmessage = (event) => this.ws === ws && this.dispatch(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // a socket we already let go of
      this.ws = null;
      this.closed(event.code, event.reason ?? "");
    };
    ws.onerror = () => {}; // a close event always follows
  }

  /** Forget the current socket (its events are ignored from now on) and return it. */
  private detach(): WebSocketLike | null {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    return ws;
  }

  private async authenticate(ws: WebSocketLike): Promise<void> {
    let token: string;
    try {
      token = await this.o.getToken(false);
    } catch {
      this.signOut(ws, "getToken failed");
      return;
    }
    if (this.ws !== ws) return;
    let session: Session;
    try {
      session = await this.request<Session>({ op: "auth", token });
    } catch {
      return; // the server closes 4001 after a refused auth; closed() handles it
    }
    if (this.ws !== ws) return;
    this.ready = true;
    this.attempt = 0;
    this.authFailures = 0;
    this._session = session;
    this.scheduleRefresh(token);
    this.startHeartbeat(session.heartbeat);
    this.setStatus("online");
    this.emit("open", session);
    for (const topic of this.topics.values()) if (topic.isWanted) topic.sendJoin();
  }

  private closed(code: number, reason: string): void {
    if (this.stoppedByUser) return this.lost(code, reason, "closed");
    if (code === 1008 || code === 1009 || code === 1000) return this.stop(code, reason, "closed");
    if (code === 4001) {
      if (reason === "session ended" || ++this.authFailures > MAX_AUTH_FAILURES) {
        return this.stop(code, reason, "signed-out");
      }
      const delay = this.delayFor(code);
      this.lost(code, reason, "offline", delay);
      // The token was refused or expired: a fresh one first (rejecting means signed out).
      this.o.getToken(true).then(
        () => this.later(delay),
        () => this.stop(code, "getToken failed", "signed-out"),
      );
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  private scheduleReconnect(code: number, reason: string): void {
    const delay = this.delayFor(code);
    this.lost(code, reason, "offline", delay);
    this.later(delay);
  }

  private later(delay: number): void {
    if (this.stoppedByUser || this._status === "signed-out" || this._status === "closed") return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private delayFor(code: number): number {
    const jitter = 0.5 + Math.random();
    let delay = Math.min(this.o.backoff.max, this.o.backoff.initial * 2 ** this.attempt) * jitter;
    if (code === 1012) delay = Math.random() * 1000; // server restarting: resume elsewhere at once, spread out
    if (code === 4029) delay = 30_000 + Math.random() * 30_000; // sustained push abuse: back off
    this.attempt += 1;
    return Math.round(delay);
  }

  /** Everything that ends with a connection: pending requests, timers, topic states; then announce it. */
  private lost(code: number, reason: string, status: Status, reconnectIn: number | null = null): void {
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
      if (status !== "offline") topic.stopped(error);
    }
    const label = describeClose(code, reason);
    this.setStatus(status, { code, reason, label });
    this.emit("close", { code, reason, label, reconnectIn: status === "offline" ? reconnectIn : null });
  }

  /** A close that ends reconnecting: `closed` (connect() starts again) or `signed-out` (the user must sign in). */
  private stop(code: number, reason: string, status: "closed" | "signed-out"): void {
    if (status === "signed-out") this.stoppedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.lost(code, reason, status);
  }

  private signOut(ws: WebSocketLike, reason: string): void {
    if (this.ws !== ws) return;
    this.detach();
    ws.close(1000, reason);
    this.stop(4001, reason, "signed-out");
  }

  // ---- requests: every frame with a ref gets exactly one answer ---------------------------------------------

  private request<T>(frame: Record<string, unknown>, options: RequestOptions = {}): Promise<T> {
    const topic = typeof frame.topic === "string" ? frame.topic : undefined;
    const event = typeof frame.event === "string" ? frame.event : undefined;
    const ws = this.ws;
    // Anything but auth before the auth reply would close the socket with 4001.
    if (!ws || ws.readyState !== OPEN || (!this.ready && frame.op !== "auth")) {
      return Promise.reject(new ReplyError("not_connected", "not connected", topic, event));
    }
    const ref = String(this.nextRef++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ReplyError("timeout", `no reply to ${String(frame.op)} in time`, topic, event));
      }, options.timeout ?? this.o.timeout);
      this.pending.set(ref, { resolve: resolve as (d: unknown) => void, reject, timer, onReply: options.onReply, topic, event });
      ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  private dispatch(raw: unknown): void {
    let frame: Frame;
    try {
      frame = JSON.parse(String(raw)) as Frame;
    } catch {
      return; // the server sends JSON text only
    }
    switch (frame.op) {
      case "msg": {
        this.topics.get(frame.topic ?? "")?.receive(frame as unknown as Msg);
        return;
      }
      case "reply":
      case "pong": {
        const waiting = this.pending.get(String(frame.ref));
        if (!waiting) return;
        this.pending.delete(String(frame.ref));
        clearTimeout(waiting.timer);
        if (frame.op === "pong" || frame.ok) {
          const data = frame.data ?? {};
          try {
            waiting.onReply?.(data);
          } finally {
            waiting.resolve(data);
          }
        } else {
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

  private scheduleRefresh(token: string): void {
    clearTimeout(this.refreshTimer);
    const exp = jwtExpiry(token);
    if (exp === null) return; // not a JWT we can read: the server closes 4001 at expiry and we reconnect
    const inMs = Math.max(MIN_REFRESH_MS, exp * 1000 - Date.now() - this.o.refreshBefore);
    this.refreshTimer = setTimeout(() => {
      // Refused or lost: the server closes 4001 when the old token expires, and closed() reconnects.
      this.refresh().catch(() => {});
    }, inMs);
  }

  private startHeartbeat(seconds: number): void {
    clearInterval(this.pingTimer);
    if (!this.o.heartbeat || !(seconds > 0)) return;
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      this.request({ op: "ping" }).catch((error: unknown) => {
        if (ws !== this.ws || !(error instanceof ReplyError) || error.code !== "timeout") return;
        // No pong: the connection is dead even if the socket does not know it yet.
        this.detach()?.close(CLIENT_CLOSE, "no pong");
        this.scheduleReconnect(CLIENT_CLOSE, "no pong");
      });
    }, seconds * 1000);
  }

  private setStatus(status: Status, detail?: StatusDetail): void {
    if (status === this._status && !detail) return;
    this._status = status;
    this.emit("status", status, detail);
  }
}
