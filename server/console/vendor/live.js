// A live AI session's topic (`live:<id>`): a Topic whose ai.* msgs are assembled into answers.
import { AiAssembler } from "./ai.js";
import { ReplyError } from "./errors.js";
import { Topic } from "./topic.js";
export class LiveSession extends Topic {
    assembler = new AiAssembler();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    on(name, handler) {
        return super.on(name, handler);
    }
    /** Every answer seen, in start order. */
    get answers() {
        return this.assembler.answers;
    }
    /** The answer still streaming, or null. */
    get running() {
        return this.assembler.running;
    }
    /** Ask the assistant: typed text, or `{transcript}` from POST /live/transcribe. */
    prompt(input) {
        const data = typeof input === "string" ? { text: input } : input;
        return this.push("ai.prompt", data);
    }
    /** Stop an answer (default: the running one). Only the member who asked, or the session's owner. */
    cancel(streamId) {
        const id = streamId ?? this.running?.streamId;
        if (!id)
            return Promise.reject(new ReplyError("invalid", "no answer is running", this.name, "ai.cancel"));
        return this.push("ai.cancel", { streamId: id });
    }
    /** Apply one of an answer's suggestedOperations to the session's checklist. */
    apply(operation) {
        return this.push("operation.apply", operation);
    }
    deliver(msg) {
        super.deliver(msg);
        const answer = this.assembler.apply(msg);
        if (answer)
            this.emit("answer", answer);
    }
    resyncing() {
        for (const answer of this.assembler.markIncomplete())
            this.emit("answer", answer);
    }
}
