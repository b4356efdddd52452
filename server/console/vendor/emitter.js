// A tiny typed event emitter. A handler that throws must not break the socket's dispatch loop (the next frame
// would never be handled), so its error is re-thrown asynchronously: it still shows up in the console, in
// `window.onerror` or Node's uncaughtException, as an app bug should.
export function reportAsync(error) {
    const report = globalThis.reportError;
    if (typeof report === "function")
        report(error);
    else
        setTimeout(() => { throw error; }, 0);
}
export class Emitter {
    handlers = new Map();
    /** Call `handler` on every `name`; returns a function that unsubscribes it. */
    on(name, handler) {
        let set = this.handlers.get(name);
        if (!set)
            this.handlers.set(name, (set = new Set()));
        set.add(handler);
        return () => this.off(name, handler);
    }
    off(name, handler) {
        this.handlers.get(name)?.delete(handler);
    }
    emit(name, ...args) {
        const set = this.handlers.get(name);
        if (!set || set.size === 0)
            return;
        for (const handler of [...set]) {
            try {
                handler(...args);
            }
            catch (error) {
                reportAsync(error);
            }
        }
    }
    listens(name) {
        return (this.handlers.get(name)?.size ?? 0) > 0;
    }
}
