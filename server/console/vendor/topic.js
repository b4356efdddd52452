// One topic of the connection: joining and resuming it, its log position, duplicates, the resync hold, presence
// and `left`. The Client owns the socket; a Topic asks it for requests and gets the frames of its name.
import { Emitter, reportAsync } from "./emitter.js";
import { ReplyError } from "./errors.js";
import { Presence } from "./presence.js";
// Refusals that will not change by asking again: the topic is given up.
const FINAL_REFUSALS = new Set(["not_found", "forbidden", "invalid", "too_many_topics", "bad_frame"]);
const RETRY_MS = 2000;
export class Topic extends Emitter {
    host;
    options;
    name;
    presence = new Presence();
    _state = "idle";
    _position;
    wanted = false;
    held = null;
    resyncAgain = false;
    waiters = [];
    lastReply = null;
    retryTimer;
    generation = 0; // bumps on leave/left/reconnect: a stale join reply is ignored
    /** @internal created by `client.topic()`. */
    constructor(host, name, options = {}) {
        super();
        this.host = host;
        this.options = options;
        this.name = name;
        this._position = host.positions.load(name);
    }
    get state() {
        return this._state;
    }
    get position() {
        return this._position;
    }
    /** @internal whether the client should (re)join it. */
    get isWanted() {
        return this.wanted;
    }
    on(name, handler) {
        return super.on(name, handler);
    }
    /**
     * Want this topic, now and after every reconnect. Resolves with the first join reply; rejects with a
     * ReplyError on a refusal (the topic is then `failed` and not retried) or when the client stops first.
     */
    join() {
        this.wanted = true;
        if (this._state === "joined" && this.lastReply)
            return Promise.resolve(this.lastReply);
        const promise = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
        if (this._state !== "joining") {
            this.setState("joining");
            if (this.host.online)
                this.sendJoin();
        }
        return promise;
    }
    /** Stop wanting the topic: leave it on the server, forget its position and presence. */
    async leave() {
        const wasOn = this._state === "joined" || this._state === "joining";
        this.forget();
        this.setState("idle");
        this.rejectWaiters(new ReplyError("closed", "left the topic before joining it", this.name));
        if (wasOn && this.host.online) {
            try {
                await this.host.request({ op: "leave", topic: this.name });
            }
            catch (error) {
                // not_joined: the join had not been answered yet, or the server had already taken us off.
                if (!(error instanceof ReplyError) || !["not_joined", "disconnected", "not_connected"].includes(error.code)) {
                    throw error;
                }
            }
        }
    }
    push(event, data, options = {}) {
        const frame = { op: "push", topic: this.name, event, data: data ?? {} };
        return this.host.request(frame, options.timeout === undefined ? {} : { timeout: options.timeout });
    }
    // ---- driven by the Client ------------------------------------------------------------------------------
    /** @internal authenticated: (re)join with `since` when we have a position. */
    sendJoin() {
        clearTimeout(this.retryTimer);
        const generation = ++this.generation;
        if (this._state !== "joining")
            this.setState("joining");
        const since = this._position;
        const frame = { op: "join", topic: this.name };
        if (since)
            frame.since = { epoch: since.epoch, offset: since.offset };
        this.host
            .request(frame, { onReply: (data) => generation === this.generation && this.joined(data) })
            .catch((error) => {
            if (generation !== this.generation || !this.wanted)
                return;
            const code = error instanceof ReplyError ? error.code : "internal";
            if (FINAL_REFUSALS.has(code)) {
                this.forget();
                this.setState("failed");
                this.rejectWaiters(error);
            }
            else if (code === "conflict") {
                // Already joined on this connection: a retried join whose first attempt was answered after we gave up
                // on it. Leave and join again, so that one reply (with `since`) sets the state.
                this.host.request({ op: "leave", topic: this.name }).then(() => generation === this.generation && this.wanted && this.sendJoin(), () => { });
            }
            else if (code !== "disconnected" && code !== "not_connected") {
                // timeout, unavailable, internal, rate_limited: ask again shortly (a lost socket rejoins on reconnect).
                this.retryTimer = setTimeout(() => this.wanted && this.host.online && this.sendJoin(), RETRY_MS);
            }
        });
    }
    /** @internal the connection was lost; the topic is rejoined after the next authentication. */
    connectionLost() {
        clearTimeout(this.retryTimer);
        this.generation++;
        if (this.wanted && this._state === "joined")
            this.setState("joining");
    }
    /** @internal the client stopped (disconnect, signed out): pending joins fail. */
    stopped(error) {
        this.rejectWaiters(error);
    }
    /** @internal a `msg` frame for this topic. */
    receive(msg) {
        if (!this.wanted)
            return;
        const pos = this._position;
        if (pos && pos.epoch === msg.epoch && msg.offset <= pos.offset)
            return; // seen already
        this._position = { epoch: msg.epoch, offset: msg.offset };
        this.host.positions.save(this.name, this._position);
        if (this.held)
            this.held.push(msg);
        else
            this.deliver(msg);
    }
    /** @internal a `presence` frame. */
    presenceDiff(joins, leaves) {
        if (this.wanted)
            this.presence.apply(joins ?? {}, leaves ?? {});
    }
    /** @internal a `left` frame: the server took us off; not rejoined. */
    removed(reason) {
        this.forget();
        this.setState("left");
        this.rejectWaiters(new ReplyError("closed", `removed from the topic (${reason})`, this.name));
        this.emit("left", reason);
    }
    // ---- inside ------------------------------------------------------------------------------------------
    deliver(msg) {
        this.emit("*", msg);
        this.emit(msg.event, msg.data, msg);
        this.host.delivered(msg);
    }
    /** Hook for subclasses: a resync is starting (recovered: false). */
    resyncing() { }
    joined(reply) {
        if (!this.wanted)
            return;
        this.lastReply = reply;
        if (!reply.recovered) {
            // No usable position: start from the head; what changes during the REST reload arrives after this reply.
            this._position = { epoch: reply.epoch, offset: reply.offset };
            this.host.positions.save(this.name, this._position);
        }
        this.presence.reset(reply.presence ?? {});
        this.setState("joined");
        this.emit("joined", reply);
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters)
            w.resolve(reply);
        if (!reply.recovered)
            this.resync();
    }
    /** Hold msgs from now (synchronously, inside the reply's dispatch) until onResync settles, then flush them. */
    resync() {
        if (this.held) {
            this.resyncAgain = true; // a resync is running: run onResync once more before flushing
            return;
        }
        this.resyncing();
        const onResync = this.options.onResync;
        this.emit("resync");
        if (!onResync)
            return;
        this.held = [];
        void (async () => {
            do {
                this.resyncAgain = false;
                try {
                    await onResync(this);
                }
                catch (error) {
                    if (this.listens("error"))
                        this.emit("error", error);
                    else
                        reportAsync(error);
                }
            } while (this.resyncAgain && this.wanted);
            const held = this.held ?? [];
            this.held = null;
            if (this.wanted)
                for (const msg of held)
                    this.deliver(msg);
        })();
    }
    forget() {
        clearTimeout(this.retryTimer);
        this.generation++;
        this.wanted = false;
        this.held = null;
        this.lastReply = null;
        this._position = null;
        this.host.positions.remove(this.name);
        this.presence.clear();
    }
    rejectWaiters(error) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters)
            w.reject(error);
    }
    setState(state) {
        if (state === this._state)
            return;
        this._state = state;
        this.emit("state", state);
    }
}
