const AI_EVENTS = new Set(["ai.started", "ai.delta", "ai.completed", "ai.error", "ai.cancelled"]);
export class AiAssembler {
    byStream = new Map();
    /** Every answer seen, in start order. */
    get answers() {
        return this.byStream;
    }
    /** The answer still streaming (at most one runs per session), or null. */
    get running() {
        let last = null;
        for (const a of this.byStream.values())
            if (a.state === "streaming")
                last = a;
        return last;
    }
    /** Apply one msg; returns the answer it changed, or null (not an AI frame, or a duplicate delta). */
    apply(msg) {
        if (!AI_EVENTS.has(msg.event))
            return null;
        const data = msg.data;
        if (typeof data?.streamId !== "string")
            return null;
        const known = this.byStream.get(data.streamId);
        const answer = known ?? {
            streamId: data.streamId, state: "streaming", text: "", index: -1, suggestedOperations: [],
            // Created by anything but ai.started: we missed its beginning (compaction keeps ai.started for
            // unfinished streams, so a delta without it means we joined mid-stream without history).
            incomplete: msg.event !== "ai.started",
        };
        if (!known)
            this.byStream.set(answer.streamId, answer);
        switch (msg.event) {
            case "ai.started": {
                const d = msg.data;
                if (d.requestedBy !== undefined)
                    answer.requestedBy = d.requestedBy;
                if (d.promptMessageId !== undefined)
                    answer.promptMessageId = d.promptMessageId;
                if (d.contextId !== undefined)
                    answer.contextId = d.contextId;
                return answer;
            }
            case "ai.delta": {
                const d = msg.data;
                if (answer.state !== "streaming" || d.index <= answer.index)
                    return null; // already have it
                answer.text += d.text;
                answer.index = d.index;
                return answer;
            }
            case "ai.completed": {
                const d = msg.data;
                answer.state = "completed";
                answer.text = d.text;
                answer.messageId = d.messageId;
                answer.suggestedOperations = d.suggestedOperations ?? [];
                answer.usage = d.usage;
                answer.incomplete = false;
                return answer;
            }
            case "ai.error": {
                const d = msg.data;
                answer.state = "error";
                answer.error = { code: d.code, message: d.message };
                if (d.messageId !== undefined)
                    answer.messageId = d.messageId;
                return answer;
            }
            default: {
                const d = msg.data;
                answer.state = "cancelled";
                if (d.messageId !== undefined)
                    answer.messageId = d.messageId;
                return answer;
            }
        }
    }
    /** A resync (recovered: false): whatever is still streaming has a hole now; its end frame will fix it. */
    markIncomplete() {
        const changed = [];
        for (const a of this.byStream.values()) {
            if (a.state === "streaming" && !a.incomplete) {
                a.incomplete = true;
                changed.push(a);
            }
        }
        return changed;
    }
    clear() {
        this.byStream.clear();
    }
}
