import { Emitter } from "./emitter.js";
/** Who is on a topic: the join reply's snapshot with the `presence` diffs applied as set operations. */
export class Presence extends Emitter {
    users = new Map();
    get state() {
        return this.users;
    }
    get size() {
        return this.users.size;
    }
    list() {
        return [...this.users.values()];
    }
    get(userId) {
        return this.users.get(userId);
    }
    has(userId) {
        return this.users.has(userId);
    }
    /** @internal the join reply: the whole truth (presence is never replayed on resume). */
    reset(snapshot) {
        const left = [...this.users.keys()].filter((id) => !(id in snapshot));
        this.users.clear();
        for (const [id, meta] of Object.entries(snapshot))
            this.users.set(id, meta);
        this.emit("change", { joined: this.list(), left, snapshot: true });
    }
    /** @internal a `presence` frame. */
    apply(joins, leaves) {
        const joined = [];
        const left = [];
        for (const id of Object.keys(leaves))
            if (this.users.delete(id))
                left.push(id);
        for (const [id, meta] of Object.entries(joins)) {
            this.users.set(id, meta);
            joined.push(meta);
        }
        if (joined.length || left.length)
            this.emit("change", { joined, left, snapshot: false });
    }
    /** @internal left the topic. */
    clear() {
        if (this.users.size === 0)
            return;
        const left = [...this.users.keys()];
        this.users.clear();
        this.emit("change", { joined: [], left, snapshot: false });
    }
}
