import { Emitter } from "./emitter.js";
import type { PresenceMeta } from "./events.js";

export interface PresenceChange {
  /** Users who arrived (or, for a snapshot, everyone present). */
  joined: PresenceMeta[];
  /** Ids of users who went (for a snapshot: those present before and not in it). */
  left: string[];
  /** true when a join reply replaced the whole state (after every join and resume). */
  snapshot: boolean;
}

interface PresenceEvents {
  change: (change: PresenceChange) => void;
}

/** Who is on a topic: the join reply's snapshot with the `presence` diffs applied as set operations. */
export class Presence extends Emitter<PresenceEvents> {
  private readonly users = new Map<string, PresenceMeta>();

  get state(): ReadonlyMap<string, PresenceMeta> {
    return this.users;
  }

  get size(): number {
    return this.users.size;
  }

  list(): PresenceMeta[] {
    return [...this.users.values()];
  }

  get(userId: string): PresenceMeta | undefined {
    return this.users.get(userId);
  }

  has(userId: string): boolean {
    return this.users.has(userId);
  }

  /** @internal the join reply: the whole truth (presence is never replayed on resume). */
  reset(snapshot: Record<string, PresenceMeta>): void {
    const left = [...this.users.keys()].filter((id) => !(id in snapshot));
    this.users.clear();
    for (const [id, meta] of Object.entries(snapshot)) this.users.set(id, meta);
    this.emit("change", { joined: this.list(), left, snapshot: true });
  }

  /** @internal a `presence` frame. */
  apply(joins: Record<string, PresenceMeta>, leaves: Record<string, unknown>): void {
    const joined: PresenceMeta[] = [];
    const left: string[] = [];
    for (const id of Object.keys(leaves)) if (this.users.delete(id)) left.push(id);
    for (const [id, meta] of Object.entries(joins)) {
      this.users.set(id, meta);
      joined.push(meta);
    }
    if (joined.length || left.length) this.emit("change", { joined, left, snapshot: false });
  }

  /** @internal left the topic. */
  clear(): void {
    if (this.users.size === 0) return;
    const left = [...this.users.keys()];
    this.users.clear();
    this.emit("change", { joined: [], left, snapshot: false });
  }
}
