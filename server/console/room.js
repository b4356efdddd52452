// An event room: the event, who is here (presence), its checklist ticking live, and recent activity.

import { clear, h, when } from "./dom.js";

const ACTIVITY = 30;

export class Room {
  constructor(root, { api, socket, onChange, onError }) {
    this.root = root;
    this.api = api;
    this.socket = socket;
    this.onChange = onChange ?? (() => {});
    this.onError = onError ?? console.error;
    this.reset();
    this.render();
  }

  reset() {
    this.event = null;
    this.steps = new Map(); // id -> StepOut (with subSteps)
    this.presence = new Map(); // userId -> {id, name, handle}
    this.activity = [];
    this.busy = new Set(); // step / substep ids with a push in flight
  }

  get topic() {
    return this.event ? `event:${this.event.id}` : null;
  }

  async open(event) {
    await this.close();
    this.event = { ...event };
    this.render();
    this.onChange();
    await this.socket.join(this.topic); // the first join reloads over REST (onResync)
  }

  async close() {
    const topic = this.topic;
    this.reset();
    this.render();
    if (topic) await this.socket.leave(topic);
  }

  /** The whole room from REST: after the first join, and whenever a resume could not replay. */
  async reload() {
    if (!this.event) return;
    const id = this.event.id;
    const event = await this.api.get(`/events/${id}`);
    const steps = event.processId ? await this.api.get(`/processes/${event.processId}/steps`) : [];
    if (this.event?.id !== id) return; // another room was opened meanwhile
    this.event = event;
    this.steps = new Map(steps.map((s) => [s.id, s]));
    this.render();
  }

  upsert(kind, data) {
    const current = kind === "step" ? this.steps.get(data.id)
      : this.steps.get(data.stepId)?.subSteps?.find((s) => s.id === data.id);
    if (current?.updatedAt && data.updatedAt && data.updatedAt < current.updatedAt) return; // a newer msg won
    this.apply(`${kind}.updated`, data);
    this.render();
  }

  onMsg({ event: name, data, ts }) {
    if (name === "event.deleted") {
      this.note(ts, "the event was deleted");
      return;
    }
    this.apply(name, data);
    this.note(ts, describe(name, data));
    this.render();
  }

  apply(name, data) {
    switch (name) {
      case "event.updated":
        this.event = { ...this.event, ...data };
        break;
      case "step.created":
      case "step.updated":
        this.steps.set(data.id, data);
        break;
      case "step.deleted":
        this.steps.delete(data.id);
        break;
      case "substep.created":
      case "substep.updated":
      case "substep.deleted": {
        const step = this.steps.get(data.stepId);
        if (step) {
          const rest = (step.subSteps ?? []).filter((s) => s.id !== data.id);
          step.subSteps = name === "substep.deleted" ? rest : [...rest, data].sort((a, b) => a.order - b.order);
        }
        break;
      }
      default:
        break;
    }
  }

  onPresence(joins, leaves) {
    if (leaves === null) this.presence = new Map(); // a snapshot
    for (const [id, meta] of Object.entries(joins ?? {})) this.presence.set(id, meta);
    for (const id of Object.keys(leaves ?? {})) this.presence.delete(id);
    this.renderPresence();
  }

  onLeft(reason) {
    this.note(new Date().toISOString(), `you were taken off this room (${reason})`);
    this.event = { ...this.event, left: reason };
    this.render();
  }

  note(ts, text) {
    this.activity.unshift({ ts, text });
    this.activity.length = Math.min(this.activity.length, ACTIVITY);
    this.renderActivity();
  }

  async tick(kind, id, completed) {
    this.busy.add(id);
    this.render();
    const field = kind === "step" ? "stepId" : "subStepId";
    try {
      const changed = await this.socket.push(this.topic, `${kind}.update`, { [field]: id, completed });
      // The msg carries the same object (and notes the activity); the reply makes the tick show at once.
      this.upsert(kind, changed);
    } catch (err) {
      this.onError(`could not update the ${kind}: ${err.message}`);
    } finally {
      this.busy.delete(id);
      this.render();
    }
  }

  // ---- rendering -----------------------------------------------------------------------------------

  render() {
    const root = clear(this.root);
    if (!this.event) {
      root.append(h("p", { class: "empty" }, "Pick one of your events to open its room."));
      return;
    }
    const e = this.event;
    const steps = [...this.steps.values()].sort((a, b) => a.order - b.order);
    const done = steps.filter((s) => s.completed).length;
    root.append(
      h("div", { class: "room-head" },
        h("h2", { "data-testid": "room-title" }, e.title ?? "event"),
        h("span", { class: "badge", "data-testid": "room-status" }, e.status ?? ""),
        h("span", { class: "muted" }, when(e.startTime)),
        e.left ? h("span", { class: "badge warn" }, `left: ${e.left}`) : null),
      h("section", {},
        h("h3", {}, "Here now"),
        (this.presenceEl = h("ul", { class: "presence", "data-testid": "presence" }))),
      h("section", {},
        h("h3", {}, "Steps ", h("span", { class: "muted", "data-testid": "progress" }, `${done}/${steps.length}`)),
        steps.length
          ? h("ol", { class: "steps", "data-testid": "steps" }, steps.map((s) => this.stepItem(s)))
          : h("p", { class: "empty" }, e.processId ? "No steps yet." : "This event has no checklist.")),
      h("section", {},
        h("h3", {}, "Activity"),
        (this.activityEl = h("ol", { class: "activity", "data-testid": "activity" }))),
    );
    this.renderPresence();
    this.renderActivity();
  }

  stepItem(step) {
    const subs = [...(step.subSteps ?? [])].sort((a, b) => a.order - b.order);
    return h("li", { class: step.completed ? "step done" : "step", "data-testid": "step",
      dataset: { stepId: step.id, completed: String(step.completed) } },
    h("label", {},
      h("input", { type: "checkbox", checked: step.completed, disabled: this.busy.has(step.id),
        "aria-label": step.content, onchange: (ev) => this.tick("step", step.id, ev.target.checked) }),
      h("span", {}, step.content)),
    subs.length ? h("ul", { class: "substeps" }, subs.map((sub) =>
      h("li", { class: sub.completed ? "done" : "", "data-testid": "substep",
        dataset: { substepId: sub.id, completed: String(sub.completed) } },
      h("label", {},
        h("input", { type: "checkbox", checked: sub.completed, disabled: this.busy.has(sub.id),
          "aria-label": sub.content, onchange: (ev) => this.tick("substep", sub.id, ev.target.checked) }),
        h("span", {}, sub.content))))) : null);
  }

  renderPresence() {
    if (!this.presenceEl) return;
    const people = [...this.presence.values()].sort((a, b) => (a.name ?? "").localeCompare(b.name ?? ""));
    clear(this.presenceEl).append(...people.map((p) =>
      h("li", { title: `@${p.handle}`, dataset: { userId: p.id } }, p.name ?? p.handle)));
  }

  renderActivity() {
    if (!this.activityEl) return;
    clear(this.activityEl).append(...this.activity.map((a) =>
      h("li", {}, h("time", {}, new Date(a.ts).toLocaleTimeString()), " ", a.text)));
  }
}

function describe(name, data) {
  switch (name) {
    case "step.updated":
      return `step “${data.content}” ${data.completed ? "done" : "reopened"}`;
    case "substep.updated":
      return `substep “${data.content}” ${data.completed ? "done" : "reopened"}`;
    case "status.changed":
      return `status ${data.previousStatus ?? "?"} → ${data.newStatus}`;
    case "chat.message":
      return `${data.author?.name ?? "someone"}: ${data.text}`;
    case "participant.added":
    case "participant.updated":
      return `${data.user?.name ?? "a participant"} is ${data.status}`;
    default:
      return name;
  }
}
