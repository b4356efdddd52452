// Everything the console asks of the realtime connection, in one place, on top of the shared client
// (clients/js, served from ./vendor/): the panels call connect/close/join/leave/push and receive
// onMsg/onResync/onPresence/onLeft/onAnswer/onStatus, and show errors and close codes in words through
// describeError/describeLeft (the client's labels, plus the server's detail).

import { Client, describeError as errorLabel } from "./vendor/conversme.js";

const STATUS_LABELS = { connecting: "connecting…", online: "online", "signed-out": "signed out", closed: "closed" };

/** An error (a ReplyError from a push, a REST ApiError, or a plain Error) as a sentence. */
export function describeError(err) {
  if (!err?.code) return err?.message || "Something went wrong";
  const label = errorLabel(err.code);
  const detail = err.message && err.message !== err.code && !err.message.startsWith("HTTP ") ? err.message : "";
  return detail && detail !== label ? `${label}: ${detail}` : label;
}

/** Why the server took us off a topic (`left`). */
export function describeLeft(reason) {
  return { revoked: "you are no longer a member", deleted: "it was deleted" }[reason] ?? reason;
}

export class Realtime {
  /**
   * @param {object} o
   * @param {import("./api.js").Api} o.api  for tokens
   * @param {(msg: {topic, event, data, ts}) => void} o.onMsg
   * @param {(topic: string) => Promise<void>} o.onResync  reload the topic over REST (msgs wait meanwhile)
   * @param {(topic: string, people: object[]) => void} o.onPresence  who is on the topic now
   * @param {(topic: string, reason: string) => void} o.onLeft
   * @param {(topic: string, answer: object) => void} o.onAnswer  an AI answer (live topics) started, grew or ended
   * @param {(status: string, label: string) => void} o.onStatus
   */
  constructor(o) {
    this.o = o;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.client = new Client({ url: `${scheme}//${location.host}/ws`, getToken: (force) => o.api.token(force) });
    this.client.on("status", (status, detail) => {
      // offline, signed-out, closed: the close code that caused it, in words ("Connection lost", …).
      const label = status === "online" || status === "connecting" ? STATUS_LABELS[status]
        : detail?.label ?? STATUS_LABELS[status] ?? status;
      o.onStatus(status, label);
    });
    this.listening = new Map(); // topic -> unsubscribe functions of our handlers
  }

  connect() {
    this.client.connect();
  }

  close() {
    this.client.disconnect();
  }

  topic(name) {
    const opts = { onResync: () => this.o.onResync(name) };
    return name.startsWith("live:") ? this.client.live(name, opts) : this.client.topic(name, opts);
  }

  /** Join (and keep rejoining after reconnects); resolves with the first join, rejects on a refusal. */
  async join(name) {
    const topic = this.topic(name);
    if (!this.listening.has(name)) {
      const offs = [
        topic.on("*", (msg) => this.o.onMsg(msg)),
        topic.on("left", (reason) => this.o.onLeft(name, reason)),
        topic.presence.on("change", () => this.o.onPresence(name, topic.presence.list())),
      ];
      if (name.startsWith("live:")) offs.push(topic.on("answer", (answer) => this.o.onAnswer?.(name, answer)));
      this.listening.set(name, offs);
    }
    await topic.join();
  }

  async leave(name) {
    for (const off of this.listening.get(name) ?? []) off();
    this.listening.delete(name);
    await this.topic(name).leave().catch(() => {});
  }

  /** A push; resolves with the reply's data, rejects with a ReplyError (`code`, `message`). */
  push(name, event, data) {
    return this.topic(name).push(event, data);
  }
}
