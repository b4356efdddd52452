/** The default: positions live as long as the Client. */
export function memoryPositions() {
    const map = new Map();
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
export function localStoragePositions(prefix = "conversme:pos:") {
    return {
        load(topic) {
            const raw = localStorage.getItem(prefix + topic);
            if (!raw)
                return null;
            try {
                const p = JSON.parse(raw);
                return typeof p.epoch === "string" && typeof p.offset === "number" ? p : null;
            }
            catch {
                return null;
            }
        },
        save: (topic, position) => localStorage.setItem(prefix + topic, JSON.stringify(position)),
        remove: (topic) => localStorage.removeItem(prefix + topic),
    };
}
