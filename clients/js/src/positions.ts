/** Where a topic's log stands for this client: the epoch and offset of the last msg delivered. */
export interface Position {
  epoch: string;
  offset: number;
}

/** Keeps positions between connections (and, with localStorage, between page loads). */
export interface PositionStore {
  load(topic: string): Position | null;
  save(topic: string, position: Position): void;
  remove(topic: string): void;
}

/** The default: positions live as long as the Client. */
export function memoryPositions(): PositionStore {
  const map = new Map<string, Position>();
  return {
    load: (topic) => map.get(topic) ?? null,
    save: (topic, position) => void map.set(topic, position),
    remove: (topic) => void map.delete(topic),
  };
}

/**
 * Positions in `localStorage` (browsers), so a reload resumes instead of reloading over REST. Only useful
 * when the app also keeps the state those positions describe.
 */
export function localStoragePositions(prefix = "conversme:pos:"): PositionStore {
  return {
    load(topic) {
      const raw = localStorage.getItem(prefix + topic);
      if (!raw) return null;
      try {
        const p = JSON.parse(raw) as Position;
        return typeof p.epoch === "string" && typeof p.offset === "number" ? p : null;
      } catch {
        return null;
      }
    },
    save: (topic, position) => localStorage.setItem(prefix + topic, JSON.stringify(position)),
    remove: (topic) => localStorage.removeItem(prefix + topic),
  };
}
