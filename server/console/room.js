// An event room: the event and its status (members change it live), who is here (presence), the people
// invited (organizers invite more), the checklist ticking live, the chat, and recent activity.

import { Chat } from "./chat.js";
import { clear, h, when } from "./dom.js";
import { PeoplePicker } from "./people.js";
import { describeError, describeLeft } from "./realtime.js";

const ACTIVITY = 30;
const STATUSES = ["Pending", "Planning", "Execution", "Review", "Administrative", "Done"];
const ORGANIZER_ROLES = new Set(["organizer", "host", "owner"]);

export class Room {
  constructor(root, { api, realtime, names, me, onChange, onError }) {
    this.root = root;
    this.api = api;
    this.realtime = realtime;
    this.names = names;
    this.me = me;
    this.onChange = onChange ?? (() => {});
    this.onError = onError ?? console.error;
    this.chat = new Chat({ api, realtime, me, onError: this.onError });
    this.picker = new PeoplePicker({ api, names, testid: "invite", action: "Invite",
      taken: () => new Set([...this.participants().map((p) => p.userId), this.event?.createdById]),
      onPick: (user) => this.invite(user) });
    this.reset();
    this.render();
  }

  reset() {
    this.event = null;
    this.steps = new Map(); // id -> StepOut (with subSteps)
    this.presence = new Map(); // userId -> {id, name, handle}
    this.activity = [];
    this.busy = new Set(); // step / substep ids with a push in flight
    this.chat.reset();
    this.el = null; // the skeleton of the open room (built once per room: inputs keep what is typed)
  }

  get topic() {
    return this.event ? `event:${this.event.id}` : null;
  }

  async open(event) {
    await this.close();
    this.event = { ...event };
    this.render();
    this.onChange();
    await this.realtime.join(this.topic); // the first join reloads over REST (onResync)
  }

  async close() {
    const topic = this.topic;
    this.reset();
    this.render();
    if (topic) await this.realtime.leave(topic);
  }

  /** The whole room from REST: after the first join, and whenever a resume could not replay. */
  async reload() {
    if (!this.event) return;
    const id = this.event.id;
    const [event, steps] = await Promise.all([
      this.api.get(`/events/${id}`),
      this.event.processId ? this.api.get(`/processes/${this.event.processId}/steps`) : [],
      this.chat.load(id, this.topic),
    ]);
    if (this.event?.id !== id) return; // another room was opened meanwhile
    this.event = event;
    this.names.rememberEvent(event);
    for (const p of event.participants ?? []) this.names.rememberUser(p.user);
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
    if (name === "chat.message") {
      this.chat.add(data);
      return;
    }
    this.apply(name, data);
    const text = describe(name, data);
    if (text) this.note(ts, text);
    this.render();
    if (name === "event.updated" || name === "status.changed") this.onChange(); // the list shows the status
  }

  apply(name, data) {
    switch (name) {
      case "event.updated":
        this.event = { ...this.event, ...data };
        break;
      case "status.changed":
        // A status-only change publishes no event.updated: the log entry carries the new status.
        this.event = { ...this.event, status: data.newStatus };
        break;
      case "participant.added":
      case "participant.updated":
      case "participant.removed": {
        const rest = this.participants().filter((p) => p.userId !== data.userId);
        this.event = { ...this.event, participants: name === "participant.removed" ? rest : [...rest, data] };
        this.names.rememberUser(data.user);
        break;
      }
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

  /** Who is on the room's topic now (the client keeps the set from the join snapshot and the diffs). */
  onPresence(people) {
    this.presence = new Map(people.map((p) => [p.id, p]));
    for (const p of people) this.names.rememberUser(p);
    this.renderPresence();
  }

  onLeft(reason) {
    this.note(new Date().toISOString(), `you left this room: ${describeLeft(reason)}`);
    this.event = { ...this.event, left: reason };
    this.render();
  }

  note(ts, text) {
    this.activity.unshift({ ts, text });
    this.activity.length = Math.min(this.activity.length, ACTIVITY);
    this.renderActivity();
  }

  participants() {
    return this.event?.participants ?? [];
  }

  isOrganizer() {
    if (!this.event) return false;
    if (this.event.createdById === this.me.id) return true;
    const mine = this.participants().find((p) => p.userId === this.me.id);
    return Boolean(mine && mine.status !== "declined" && ORGANIZER_ROLES.has(mine.role));
  }

  // ---- actions -------------------------------------------------------------------------------------

  async tick(kind, id, completed) {
    this.busy.add(id);
    this.renderSteps();
    const field = kind === "step" ? "stepId" : "subStepId";
    try {
      const changed = await this.realtime.push(this.topic, `${kind}.update`, { [field]: id, completed });
      // The msg carries the same object (and notes the activity); the reply makes the tick show at once.
      this.upsert(kind, changed);
    } catch (err) {
      this.onError(`Could not update the ${kind}: ${describeError(err)}`);
    } finally {
      this.busy.delete(id);
      this.renderSteps();
    }
  }

  async setStatus(status, select) {
    select.disabled = true;
    try {
      const event = await this.realtime.push(this.topic, "event.status", { status });
      this.event = { ...this.event, ...event };
      this.onChange();
    } catch (err) {
      this.onError(`Could not change the status: ${describeError(err)}`);
    } finally {
      select.disabled = false;
      this.renderHead();
    }
  }

  async invite(user) {
    try {
      const participant = await this.api.post(`/events/${this.event.id}/participants`, { userId: user.id });
      this.apply("participant.added", participant); // its msg follows; applying twice is harmless
      this.renderPeople();
    } catch (err) {
      this.onError(`Could not invite ${user.name}: ${describeError(err)}`);
    }
  }

  /** My own answer to an invitation (accept, or decline: declining ends membership and the room). */
  async respond(status) {
    try {
      const participant = await this.api.request("PUT", `/events/${this.event.id}/participants/${this.me.id}`, { status });
      this.apply("participant.updated", participant);
      this.renderPeople();
    } catch (err) {
      this.onError(`Could not answer the invitation: ${describeError(err)}`);
    }
  }

  // ---- rendering -----------------------------------------------------------------------------------

  render() {
    if (!this.event) {
      this.el = null;
      clear(this.root).append(h("p", { class: "empty" }, "Pick one of your events, or create one, to open its room."));
      return;
    }
    if (!this.el) {
      this.el = {
        head: h("div", { class: "room-head" }),
        presence: h("ul", { class: "presence", "data-testid": "presence" }),
        people: h("ul", { class: "people", "data-testid": "participants" }),
        invite: h("div", { class: "invite" }, this.picker.el),
        steps: h("div", {}),
        activity: h("ol", { class: "activity", "data-testid": "activity" }),
      };
      const v = this.el;
      clear(this.root).append(v.head,
        h("section", {}, h("h3", {}, "Here now"), v.presence),
        h("section", {}, h("h3", {}, "People"), v.people, v.invite),
        h("section", {}, v.steps),
        this.chat.el,
        h("section", {}, h("h3", {}, "Activity"), v.activity));
    }
    this.renderHead();
    this.renderPresence();
    this.renderPeople();
    this.renderSteps();
    this.renderActivity();
  }

  renderHead() {
    if (!this.el) return;
    const e = this.event;
    const select = h("select", { "aria-label": "Status", "data-testid": "room-status-select",
      disabled: Boolean(e.left), onchange: (ev) => this.setStatus(ev.target.value, ev.target) },
    STATUSES.map((s) => h("option", { value: s, selected: s === e.status }, s)));
    clear(this.el.head).append(
      h("h2", { "data-testid": "room-title" }, e.title ?? "event"),
      h("span", { class: "badge", "data-testid": "room-status" }, e.status ?? ""),
      select,
      h("span", { class: "muted" }, when(e.startTime)),
      ...(e.left ? [h("span", { class: "badge warn" }, `left: ${describeLeft(e.left)}`)] : []));
  }

  renderSteps() {
    if (!this.el) return;
    const steps = [...this.steps.values()].sort((a, b) => a.order - b.order);
    const done = steps.filter((s) => s.completed).length;
    clear(this.el.steps).append(
      h("h3", {}, "Steps ", h("span", { class: "muted", "data-testid": "progress" }, `${done}/${steps.length}`)),
      steps.length
        ? h("ol", { class: "steps", "data-testid": "steps" }, steps.map((s) => this.stepItem(s)))
        : h("p", { class: "empty" }, this.event.processId ? "No steps yet." : "This event has no checklist."));
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
    if (!this.el) return;
    const people = [...this.presence.values()].sort((a, b) => (a.name ?? "").localeCompare(b.name ?? ""));
    clear(this.el.presence).append(...people.map((p) =>
      h("li", { title: `@${p.handle}`, dataset: { userId: p.id } }, p.name ?? `@${p.handle}`,
        p.id === this.me.id ? h("span", { class: "you" }, " (you)") : null)));
  }

  renderPeople() {
    if (!this.el) return;
    const order = { organizer: 0, host: 0, owner: 0 };
    const people = [...this.participants()].sort((a, b) =>
      (order[a.role] ?? 1) - (order[b.role] ?? 1) || (a.user?.name ?? "").localeCompare(b.user?.name ?? ""));
    clear(this.el.people).append(...people.map((p) =>
      h("li", { dataset: { userId: p.userId, status: p.status } },
        h("span", {}, p.user?.name ?? "someone", " ", h("span", { class: "muted" }, `@${p.user?.handle ?? "?"}`)),
        h("span", {},
          p.userId === this.me.id && p.status === "invited" && !this.event.left ? [
            h("button", { type: "button", "data-testid": "accept", onclick: () => this.respond("confirmed") }, "Accept"),
            " ",
            h("button", { type: "button", class: "link", onclick: () => this.respond("declined") }, "Decline"),
            " "] : null,
          h("span", { class: `badge ${p.status === "invited" ? "warn" : ""}` },
            p.role === "participant" ? p.status : `${p.role} · ${p.status}`)))));
    this.el.invite.hidden = !this.isOrganizer() || Boolean(this.event.left);
  }

  renderActivity() {
    if (!this.el) return;
    clear(this.el.activity).append(...this.activity.map((a) =>
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
      return `${data.user?.name ?? "someone"} changed the status ${data.previousStatus ?? "–"} → ${data.newStatus}`;
    case "event.updated":
      return null; // its cause (a status change, an edit) has a line of its own
    case "participant.added":
      return `${data.user?.name ?? "someone"} was invited`;
    case "participant.updated":
      return `${data.user?.name ?? "a participant"} is ${data.status}`;
    case "participant.removed":
      return "a participant left";
    case "step.created":
      return `step “${data.content}” added`;
    case "step.deleted":
      return `step “${data.content}” removed`;
    default:
      return name.replace(".", " ");
  }
}
