// Admins: this instance's connections and topics (GET /admin/realtime), and the job system across the
// cluster — workers by heartbeat, queue depth, failures (GET /admin/jobs). Polled while the tab is shown.
// Topics show as the event's title or the user's name where the console knows or can look them up.

import { clear, h } from "./dom.js";

const EVERY_MS = 5000;

export class AdminPanel {
  constructor(root, api, names) {
    this.root = root;
    this.api = api;
    this.names = names;
    this.timer = null;
  }

  start() {
    this.stop();
    this.refresh();
    this.timer = setInterval(() => this.refresh(), EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async refresh() {
    const [rt, jobs] = await Promise.all([
      this.api.get("/admin/realtime").catch((err) => ({ error: err.message })),
      this.api.get("/admin/jobs?limit=10").catch((err) => ({ error: err.message })),
    ]);
    if (rt.topTopics) await this.names.resolve(rt.topTopics.map((t) => t.topic));
    clear(this.root).append(this.realtime(rt), this.jobs(jobs));
  }

  realtime(rt) {
    if (rt.error) return h("section", {}, h("h3", {}, "Realtime"), h("p", { class: "error" }, rt.error));
    return h("section", { "data-testid": "admin-realtime" },
      h("h3", {}, "Realtime ", h("span", { class: "muted" }, `instance ${rt.instanceId} · ${rt.hub}`)),
      figures([["connections", rt.connections], ["authenticated", rt.authenticated], ["topics", rt.topics],
        ["subscriptions", rt.subscriptions], ["published", rt.published], ["queued bytes", rt.queuedBytes]]),
      table(["topic", "connections here"], rt.topTopics.map((t) => [this.topicLabel(t.topic), t.connections])));
  }

  topicLabel(topic) {
    const [kind] = topic.split(":");
    const label = this.names.topic(topic) ?? { event: "an event you are not in", user: "a user" }[kind] ?? topic;
    return h("span", { title: topic, dataset: { topic } }, label);
  }

  jobs(j) {
    if (j.error) return h("section", {}, h("h3", {}, "Jobs"), h("p", { class: "error" }, j.error));
    return h("section", { "data-testid": "admin-jobs" },
      h("h3", {}, "Jobs ", h("span", { class: "muted" }, j.queue.broker)),
      figures([["workers alive", j.workersAlive], ["waiting", j.queue.waiting], ["running", j.queue.running],
        ["delayed", j.queue.delayed], ["dead letters", j.deadLettersOpen]]),
      table(["worker", "role", "alive", "running", "done", "failed", "last heartbeat"],
        j.workers.map((w) => [w.id, w.role ?? "", w.alive ? "yes" : "no", w.running, w.done, w.failed,
          `${w.secondsSinceHeartbeat}s ago`])),
      j.recentFailures.length
        ? table(["failed task", "attempt", "error"], j.recentFailures.slice(0, 10).map((f) => [f.task, f.attempt, f.error]))
        : null);
  }
}

function figures(pairs) {
  return h("dl", { class: "figures" }, pairs.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v ?? "–")))));
}

function table(head, rows) {
  if (!rows.length) return h("p", { class: "empty" }, `no ${head[0]}s`);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c instanceof Node ? c : String(c))))))));
}
