// A live AI session beside the open event: the conversation, the answer streaming in (ai.delta), and the
// suggested operations of a finished answer, which can be applied. Whether this server has an AI model at
// all (GET /live/ai) shows before anything is typed.

import { clear, h } from "./dom.js";
import { describeError, describeLeft } from "./realtime.js";

export class LivePanel {
  constructor(root, { api, realtime, onError }) {
    this.root = root;
    this.api = api;
    this.realtime = realtime;
    this.ai = null; // {configured, model} from GET /live/ai; null until it answered
    this.onError = onError ?? console.error;
    this.event = null;
    this.reset();
    this.render();
  }

  reset() {
    this.view = null;
    this.context = null;
    this.items = new Map(); // message id or stream id -> {role, text, state, operations}
    this.running = null; // the streamId being answered
    this.error = "";
  }

  get topic() {
    return this.context ? `live:${this.context.id}` : null;
  }

  /** The event whose room is open (or null): the session button follows it. */
  async setEvent(event) {
    if (this.event?.id === event?.id) return;
    await this.close();
    this.event = event;
    this.render();
  }

  async close() {
    const topic = this.topic;
    this.reset();
    this.render();
    if (topic) await this.realtime.leave(topic);
  }

  async open() {
    if (!this.event) return;
    try {
      const eventId = this.event.id;
      const mine = await this.api.get(`/live/contexts?eventId=${eventId}&limit=1`);
      const context = mine[0] ?? await this.api.post("/live/contexts",
        { eventId, processId: this.event.processId ?? undefined });
      this.context = context;
      this.render();
      await this.realtime.join(this.topic); // reload() fills the conversation
    } catch (err) {
      this.error = `Could not open a live session: ${describeError(err)}`;
      this.render();
    }
  }

  async reload() {
    if (!this.context) return;
    const context = await this.api.get(`/live/contexts/${this.context.id}`);
    this.items = new Map();
    for (const m of context.messages ?? []) this.items.set(m.id, { role: m.role, text: m.content, state: "done" });
    this.render();
  }

  onMsg({ event: name, data }) {
    if (name === "message.created") {
      this.items.set(data.id, { role: data.role, text: data.content, state: "done" });
    } else if (name === "context.deleted") {
      this.reset();
    } else {
      return; // ai.*: the client assembles them into answers (onAnswer)
    }
    this.render();
  }

  /** An answer started, grew or ended. Once stored it is keyed by its message id, as a reload lists it. */
  onAnswer(answer) {
    const key = answer.messageId ?? answer.streamId;
    if (key !== answer.streamId) this.items.delete(answer.streamId);
    const state = answer.state === "completed" ? "done" : answer.state;
    let note = null;
    if (answer.state === "error") note = describeError(answer.error ?? {});
    if (answer.state === "cancelled") note = "cancelled";
    this.items.set(key, { role: "assistant", text: answer.text, state, note,
      operations: answer.suggestedOperations });
    if (answer.state === "streaming") this.running = answer.streamId;
    else if (this.running === answer.streamId) this.running = null;
    this.render();
  }

  onLeft(reason) {
    this.error = `The session ended: ${describeLeft(reason)}.`;
    this.context = null;
    this.render();
  }

  async prompt(text) {
    this.error = "";
    try {
      await this.realtime.push(this.topic, "ai.prompt", { text });
      return true;
    } catch (err) {
      this.error = describeError(err);
      this.render();
      return false;
    }
  }

  async cancel() {
    if (this.running) await this.realtime.push(this.topic, "ai.cancel", { streamId: this.running }).catch(() => {});
  }

  async apply(operation, button) {
    button.disabled = true;
    try {
      const result = await this.realtime.push(this.topic, "operation.apply", operation);
      button.textContent = result.success ? "applied" : "not applied";
    } catch (err) {
      button.disabled = false;
      this.onError(`Could not apply: ${describeError(err)}`);
    }
  }

  // ---- rendering -----------------------------------------------------------------------------------

  /** What GET /live/ai said: shown at once, before a session is opened or a prompt typed. */
  setAI(ai) {
    this.ai = ai;
    this.render();
  }

  aiState() {
    if (!this.ai) return h("p", { class: "badge", "data-testid": "live-ai-state", dataset: { state: "unknown" } },
      "AI: checking…");
    if (!this.ai.configured) {
      return h("p", { class: "badge warn", "data-testid": "live-ai-state", dataset: { state: "off" } },
        "AI is off: no model is configured on this server");
    }
    return h("p", { class: "badge ok", "data-testid": "live-ai-state", dataset: { state: "on" } },
      `AI is on · ${this.ai.model}`);
  }

  render() {
    if (!this.event || !this.context) {
      this.view = null;
      const root = clear(this.root);
      root.append(h("h3", {}, "Live AI"), this.aiState());
      if (!this.event) root.append(h("p", { class: "empty" }, "Open an event to talk to the assistant about it."));
      else root.append(h("button", { type: "button", "data-testid": "live-open", onclick: () => this.open(),
        disabled: this.ai?.configured === false }, "Open AI session"));
      if (this.error) root.append(h("p", { class: "error", role: "alert" }, this.error));
      return;
    }
    // Built once per session: re-rendering must never wipe a prompt being typed.
    this.view ??= this.build();
    const v = this.view;
    v.session.textContent = `A session about “${this.event.title}”, shared with its members`;
    clear(v.log).append(...[...this.items.entries()].map(([key, item]) => this.bubble(key, item)));
    v.log.scrollTop = v.log.scrollHeight;
    v.send.disabled = Boolean(this.running) || this.ai?.configured === false;
    v.stop.hidden = !this.running;
    v.error.textContent = this.error;
    v.error.hidden = !this.error;
  }

  build() {
    const v = {
      session: h("p", { class: "muted" }),
      log: h("ol", { class: "conversation", "data-testid": "conversation" }),
      input: h("textarea", { rows: 2, placeholder: "Ask about this event…", "data-testid": "live-input" }),
      send: h("button", { type: "submit", "data-testid": "live-send" }, "Send"),
      stop: h("button", { type: "button", onclick: () => this.cancel() }, "Stop"),
      error: h("p", { class: "error", role: "alert" }),
    };
    const form = h("form", { class: "prompt", onsubmit: async (ev) => {
      ev.preventDefault();
      const text = v.input.value.trim();
      if (text && await this.prompt(text)) v.input.value = "";
    } }, v.input, h("div", { class: "row" }, v.send, v.stop));
    clear(this.root).append(h("h3", {}, "Live AI"), this.aiState(), v.session, v.log, form, v.error);
    return v;
  }

  bubble(key, item) {
    const ops = item.operations ?? [];
    return h("li", { class: `msg ${item.role} ${item.state}`, "data-testid": `msg-${item.role}`,
      dataset: { key, state: item.state } },
    h("div", { class: "text" }, item.text || (item.state === "streaming" ? "…" : "")),
    item.note ? h("div", { class: "muted" }, item.note) : null,
    ops.length ? h("ul", { class: "ops" }, ops.map((op) => {
      const button = h("button", { type: "button" }, "Apply");
      button.addEventListener("click", () => this.apply(op, button));
      return h("li", {}, h("code", {}, op.operation), " ", op.description || op.content || "", " ", button);
    })) : null);
  }
}
