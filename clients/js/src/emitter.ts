// A tiny typed event emitter. A handler that throws must not break the socket's dispatch loop (the next frame
// would never be handled), so its error is re-thrown asynchronously: it still shows up in the console, in
// `window.onerror` or Node's uncaughtException, as an app bug should.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (...args: any[]) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventsOf<T> = { [K in keyof T]: (...args: any[]) => void };

export function reportAsync(error: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === "function") report(error);
  else setTimeout(() => { throw error; }, 0);
}

export class Emitter<Events extends EventsOf<Events>> {
  private handlers = new Map<keyof Events, Set<Handler>>();

  /** Call `handler` on every `name`; returns a function that unsubscribes it. */
  on<K extends keyof Events>(name: K, handler: Events[K]): () => void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(handler);
    return () => this.off(name, handler);
  }

  off<K extends keyof Events>(name: K, handler: Events[K]): void {
    this.handlers.get(name)?.delete(handler);
  }

  protected emit<K extends keyof Events>(name: K, ...args: Parameters<Events[K]>): void {
    const set = this.handlers.get(name);
    if (!set || set.size === 0) return;
    for (const handler of [...set]) {
      try {
        handler(...args);
      } catch (error) {
        reportAsync(error);
      }
    }
  }

  protected listens(name: keyof Events): boolean {
    return (this.handlers.get(name)?.size ?? 0) > 0;
  }
}
