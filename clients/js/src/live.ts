// A live AI session's topic (`live:<id>`): a Topic whose ai.* msgs are assembled into answers.
import { AiAnswer, AiAssembler } from "./ai.js";
import { ReplyError } from "./errors.js";
import type { CancelRequested, LiveOperationOut, OperationData, PromptAccepted, PromptData } from "./events.js";
import { type Msg, Topic, type TopicEvents } from "./topic.js";

export interface LiveEvents extends TopicEvents {
  /** An answer started, grew, or ended. */
  answer: (answer: AiAnswer) => void;
}

export class LiveSession extends Topic {
  private readonly assembler = new AiAssembler();

  override on<K extends keyof LiveEvents>(name: K, handler: LiveEvents[K]): () => void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override on(name: string, handler: (data: any, msg: Msg) => void): () => void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override on(name: string, handler: (...args: any[]) => void): () => void {
    return super.on(name, handler);
  }

  /** Every answer seen, in start order. */
  get answers(): ReadonlyMap<string, AiAnswer> {
    return this.assembler.answers;
  }

  /** The answer still streaming, or null. */
  get running(): AiAnswer | null {
    return this.assembler.running;
  }

  /** Ask the assistant: typed text, or `{transcript}` from POST /live/transcribe. */
  prompt(input: string | { text: string } | { transcript: string }): Promise<PromptAccepted> {
    const data: PromptData = typeof input === "string" ? { text: input } : input;
    return this.push("ai.prompt", data);
  }

  /** Stop an answer (default: the running one). Only the member who asked, or the session's owner. */
  cancel(streamId?: string): Promise<CancelRequested> {
    const id = streamId ?? this.running?.streamId;
    if (!id) return Promise.reject(new ReplyError("invalid", "no answer is running", this.name, "ai.cancel"));
    return this.push("ai.cancel", { streamId: id });
  }

  /** Apply one of an answer's suggestedOperations to the session's checklist. */
  apply(operation: OperationData | Record<string, unknown>): Promise<LiveOperationOut> {
    return this.push("operation.apply", operation as OperationData);
  }

  protected override deliver(msg: Msg): void {
    super.deliver(msg);
    const answer = this.assembler.apply(msg);
    if (answer) this.emit("answer", answer);
  }

  protected override resyncing(): void {
    for (const answer of this.assembler.markIncomplete()) this.emit("answer", answer);
  }
}
