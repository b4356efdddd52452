// AI answers assembled from a live topic's stream (docs/realtime.md §10): ai.started, ai.delta (text to
// append; its index can jump when deltas were merged), then exactly one end — ai.completed (the whole answer
// replaces the draft), ai.error or ai.cancelled. A resume compacts what was missed: a finished stream comes back
// as its end frame alone, an unfinished one as ai.started plus one merged ai.delta; both build an answer here.
import type { AiCancelled, AiCompleted, AiDelta, AiError, AiStarted } from "./events.js";
import type { Msg } from "./topic.js";

export type AiAnswerState = "streaming" | "completed" | "error" | "cancelled";

export interface AiAnswer {
  streamId: string;
  state: AiAnswerState;
  /** The draft while streaming; the final text once completed. */
  text: string;
  /** The last delta index appended (-1 before any). */
  index: number;
  requestedBy?: string;
  promptMessageId?: string;
  contextId?: string;
  /** The stored assistant message (completed, and error/cancelled when the partial answer was stored). */
  messageId?: string;
  suggestedOperations: Array<Record<string, unknown>>;
  usage?: AiCompleted["usage"];
  /** On `ai.error`: `timeout`, `interrupted`, `ai_unavailable`, `invalid`, `rate_limited`, `internal`. */
  error?: { code: string; message: string };
  /** true when this client did not see the beginning of the text (joined mid-stream or resynced). */
  incomplete: boolean;
}

const AI_EVENTS = new Set(["ai.started", "ai.delta", "ai.completed", "ai.error", "ai.cancelled"]);

export class AiAssembler {
  private readonly byStream = new Map<string, AiAnswer>();

  /** Every answer seen, in start order. */
  get answers(): ReadonlyMap<string, AiAnswer> {
    return this.byStream;
  }

  /** The answer still streaming (at most one runs per session), or null. */
  get running(): AiAnswer | null {
    let last: AiAnswer | null = null;
    for (const a of this.byStream.values()) if (a.state === "streaming") last = a;
    return last;
  }

  /** Apply one msg; returns the answer it changed, or null (not an AI frame, or a duplicate delta). */
  apply(msg: Pick<Msg, "event" | "data">): AiAnswer | null {
    if (!AI_EVENTS.has(msg.event)) return null;
    const data = msg.data as { streamId?: unknown };
    if (typeof data?.streamId !== "string") return null;
    const known = this.byStream.get(data.streamId);
    const answer: AiAnswer = known ?? {
      streamId: data.streamId, state: "streaming", text: "", index: -1, suggestedOperations: [],
      // Created by anything but ai.started: we missed its beginning (compaction keeps ai.started for
      // unfinished streams, so a delta without it means we joined mid-stream without history).
      incomplete: msg.event !== "ai.started",
    };
    if (!known) this.byStream.set(answer.streamId, answer);
    switch (msg.event) {
      case "ai.started": {
        const d = msg.data as AiStarted;
        if (d.requestedBy !== undefined) answer.requestedBy = d.requestedBy;
        if (d.promptMessageId !== undefined) answer.promptMessageId = d.promptMessageId;
        if (d.contextId !== undefined) answer.contextId = d.contextId;
        return answer;
      }
      case "ai.delta": {
        const d = msg.data as AiDelta;
        if (answer.state !== "streaming" || d.index <= answer.index) return null; // already have it
        answer.text += d.text;
        answer.index = d.index;
        return answer;
      }
      case "ai.completed": {
        const d = msg.data as AiCompleted;
        answer.state = "completed";
        answer.text = d.text;
        answer.messageId = d.messageId;
        answer.suggestedOperations = d.suggestedOperations ?? [];
        answer.usage = d.usage;
        answer.incomplete = false;
        return answer;
      }
      case "ai.error": {
        const d = msg.data as AiError;
        answer.state = "error";
        answer.error = { code: d.code, message: d.message };
        if (d.messageId !== undefined) answer.messageId = d.messageId;
        return answer;
      }
      default: {
        const d = msg.data as AiCancelled;
        answer.state = "cancelled";
        if (d.messageId !== undefined) answer.messageId = d.messageId;
        return answer;
      }
    }
  }

  /** A resync (recovered: false): whatever is still streaming has a hole now; its end frame will fix it. */
  markIncomplete(): AiAnswer[] {
    const changed: AiAnswer[] = [];
    for (const a of this.byStream.values()) {
      if (a.state === "streaming" && !a.incomplete) {
        a.incomplete = true;
        changed.push(a);
      }
    }
    return changed;
  }

  clear(): void {
    this.byStream.clear();
  }
}
