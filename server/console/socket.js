// The realtime protocol v1 (docs/realtime.md) for the console: auth frame first, join with resume,
// presence, pushes, reconnect with backoff (at once on 1012), app-level ping.

export class Socket {
  /**
   * @param {object} o
   * @param {string} o.url
   * @param {(force: boolean) => Promise<string>} o.getToken
   * @param {(frame: object) => void} o.onMsg
   * @param {(topic: string) => Promise<void>} o.onResync   reload the topic's state over REST
   * @param {(topic: string, joins: object, leaves: object|null) => void} o.onPresence
   * @param {(topic: string, reason: string) => void} o.onLeft
   * @param {(status: string, code?: number) => void} o.onStatus
   */
  constructor(o) {
    this.o = o;
    this.topics = new Set();
    this.positions = new Map(); // topic -> {epoch, offset} of the last msg applied
    this.held = new Map(); // topic -> msgs held back while its REST reload runs
    this.pending = new Map();
    this.nextRef = 1;
    this.attempt = 0;
    this.ready = false;
    this.stopped = false;
  }

  connect() {
    this.stopped = false;
    const ws = new WebSocket(this.o.url, "conversme.v1");
    this.ws = ws;
    this.o.onStatus?.("connecting");
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (event) => this.dispatch(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(event.code);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.refresher);
    this.ws?.close(1000);
  }

  async authenticate(ws) {
    try {
      const token = await this.o.getToken(false);
      const hello = await this.request({ op: "auth", token });
      this.ready = true;
      this.attempt = 0;
      this.o.onStatus?.("online");
      this.scheduleRefresh(token);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.request({ op: "ping" }).catch(() => ws.close(4000)),
        (hello.heartbeat || 25) * 1000);
      for (const topic of this.topics) this.joinNow(topic).catch((err) => console.warn(topic, err.message));
    } catch {
      ws.close();
    }
  }

  /** A new token over REST a minute before this one expires, handed to the socket in-band (no reconnect). */
  scheduleRefresh(token) {
    clearTimeout(this.refresher);
    let exp;
    try {
      exp = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
    } catch {
      return; // not a JWT we can read: the server closes 4001 at expiry and we reconnect
    }
    this.refresher = setTimeout(async () => {
      try {
        const fresh = await this.o.getToken(true);
        await this.request({ op: "refresh", token: fresh });
        this.scheduleRefresh(fresh);
      } catch {
        // the server closes 4001 when the old token expires; closed() reconnects with a new one
      }
    }, Math.max(5000, exp * 1000 - Date.now() - 60000));
  }

  closed(code) {
    this.ready = false;
    clearInterval(this.pinger);
    clearTimeout(this.refresher);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(Object.assign(new Error(`connection closed (${code})`), { code: "closed" }));
    }
    this.pending.clear();
    this.o.onStatus?.("offline", code);
    if (this.stopped || code === 1008 || code === 1009) return;
    let delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.5 + Math.random());
    if (code === 1012) delay = Math.random() * 500; // server restarting: resume elsewhere at once
    this.attempt += 1;
    const again = () => setTimeout(() => this.connect(), delay);
    if (code === 4001) this.o.getToken(true).then(again, () => this.o.onStatus?.("signed-out"));
    else again();
  }

  request(frame, timeoutMs = 10000, onReply = null) {
    if (!this.ready && frame.op !== "auth") {
      return Promise.reject(Object.assign(new Error("not connected"), { code: "not_connected" }));
    }
    const ref = String(this.nextRef++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(Object.assign(new Error("no reply"), { code: "timeout" }));
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer, onReply });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  async join(topic) {
    this.topics.add(topic);
    if (this.ready) await this.joinNow(topic);
  }

  async leave(topic) {
    this.topics.delete(topic);
    this.positions.delete(topic);
    this.held.delete(topic);
    if (this.ready) await this.request({ op: "leave", topic }).catch(() => {});
  }

  push(topic, event, data) {
    return this.request({ op: "push", topic, event, data });
  }

  async joinNow(topic) {
    const since = this.positions.get(topic);
    // Runs inside dispatch(), before any msg that follows the reply is handled.
    const onReply = (reply) => {
      if (reply.recovered) return; // the missed msgs follow the reply and move the position on
      this.positions.set(topic, { epoch: reply.epoch, offset: reply.offset });
      this.held.set(topic, []);
    };
    let data;
    try {
      data = await this.request(since ? { op: "join", topic, since } : { op: "join", topic }, 10000, onReply);
    } catch (err) {
      if (err.code === "not_found" || err.code === "forbidden") this.topics.delete(topic);
      throw err;
    }
    this.o.onPresence?.(topic, data.presence, null);
    if (data.recovered) return;
    try {
      await this.o.onResync(topic);
    } finally {
      const held = this.held.get(topic) ?? [];
      this.held.delete(topic);
      for (const frame of held) this.o.onMsg(frame);
    }
  }

  dispatch(frame) {
    switch (frame.op) {
      case "reply":
      case "pong": {
        const waiting = this.pending.get(frame.ref);
        if (!waiting) return;
        this.pending.delete(frame.ref);
        clearTimeout(waiting.timer);
        if (frame.ok) waiting.onReply?.(frame.data);
        if (frame.op === "pong" || frame.ok) waiting.resolve(frame.data ?? {});
        else waiting.reject(Object.assign(new Error(frame.error.message), { code: frame.error.code }));
        return;
      }
      case "msg": {
        if (!this.topics.has(frame.topic)) return;
        const pos = this.positions.get(frame.topic);
        if (pos && pos.epoch === frame.epoch && frame.offset <= pos.offset) return; // seen already
        this.positions.set(frame.topic, { epoch: frame.epoch, offset: frame.offset });
        const held = this.held.get(frame.topic);
        if (held) held.push(frame);
        else this.o.onMsg(frame);
        return;
      }
      case "presence":
        this.o.onPresence?.(frame.topic, frame.joins, frame.leaves);
        return;
      case "left":
        this.topics.delete(frame.topic);
        this.positions.delete(frame.topic);
        this.o.onLeft?.(frame.topic, frame.reason);
        return;
      case "error":
        console.warn("conversme socket:", frame.error.code, frame.error.message);
    }
  }
}
