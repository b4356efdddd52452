// The room's stored chat: the last lines over REST when the room opens (and after a resume that could not
// replay), then each `chat.message` as it comes; sending is the `chat.send` push.

import { clear, h } from "./dom.js";
import { describeError } from "./realtime.js";

const HISTORY = 50;
const MAX_TEXT = 4000; // docs/realtime.md §9

export class Chat {
  /** @param {{api, realtime, me, onError}} o */
  constructor(o) {
    this.o = o;
    this.lines = new Map(); // id -> ChatMessageOut, kept in createdAt order
    this.log = h("ol", { class: "chat-log", "data-testid": "chat-log", "aria-live": "polite" });
    this.input = h("input", { type: "text", maxlength: MAX_TEXT, placeholder: "Write to the room…",
      "aria-label": "Chat message", "data-testid": "chat-input", autocomplete: "off" });
    this.send = h("button", { type: "submit", "data-testid": "chat-send" }, "Send");
    this.el = h("section", { class: "chat" }, h("h3", {}, "Chat"), this.log,
      h("form", { class: "row", onsubmit: (ev) => this.submit(ev) }, this.input, this.send));
    this.topic = null;
  }

  async load(eventId, topic) {
    this.topic = topic;
    const lines = await this.o.api.get(`/events/${eventId}/chat?limit=${HISTORY}`);
    this.lines = new Map(lines.map((l) => [l.id, l]));
    this.render();
  }

  reset() {
    this.topic = null;
    this.lines = new Map();
    this.render();
  }

  add(line) {
    if (this.lines.has(line.id)) return; // the reply to my push and its msg carry the same line
    this.lines.set(line.id, line);
    this.render();
  }

  async submit(event) {
    event.preventDefault();
    const text = this.input.value.trim();
    if (!text || !this.topic) return;
    this.send.disabled = true;
    try {
      this.add(await this.o.realtime.push(this.topic, "chat.send", { text }));
      this.input.value = "";
    } catch (err) {
      this.o.onError(`Message not sent: ${describeError(err)}`);
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  render() {
    const lines = [...this.lines.values()].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
    clear(this.log).append(...(lines.length ? lines.map((l) => this.line(l))
      : [h("li", { class: "empty" }, "No messages yet.")]));
    this.log.scrollTop = this.log.scrollHeight;
  }

  line(l) {
    const mine = l.authorId === this.o.me.id;
    return h("li", { class: mine ? "mine" : "", "data-testid": "chat-line", dataset: { id: l.id } },
      h("strong", {}, mine ? "You" : l.author?.name ?? "someone"), " ",
      h("time", { datetime: l.createdAt }, new Date(l.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      h("div", { class: "text" }, l.text));
  }
}
