// A new event from a template: the library's templates (GET /market/processes) and my own (GET /templates);
// the server copies the template into the event's own checklist (POST /events with templateProcessId) and
// invites the people picked here (participantIds).

import { $, clear, h } from "./dom.js";
import { PeoplePicker } from "./people.js";
import { describeError } from "./realtime.js";

const HOUR_MS = 3600 * 1000;

export class CreateEvent {
  constructor(root, { api, names, me, onCreated }) {
    this.root = root;
    this.api = api;
    this.names = names;
    this.me = me;
    this.onCreated = onCreated;
    this.invitees = new Map(); // id -> user
    this.picker = new PeoplePicker({ api, names, testid: "new-invite", action: "Add",
      taken: () => new Set([this.me.id, ...this.invitees.keys()]),
      onPick: (user) => {
        this.invitees.set(user.id, user);
        this.renderInvitees();
      } });
    this.form = this.build();
  }

  build() {
    const start = new Date(Math.ceil(Date.now() / HOUR_MS) * HOUR_MS);
    const local = new Date(start.getTime() - start.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    this.templates = h("select", { name: "template", "data-testid": "new-template" },
      h("option", { value: "" }, "Loading templates…"));
    this.chosen = h("ul", { class: "chips", "data-testid": "new-invitees" });
    this.error = h("p", { class: "error", role: "alert" });
    return h("form", { class: "new-event", "data-testid": "new-event-form",
      onsubmit: (ev) => this.submit(ev) },
    h("h3", {}, "New event"),
    h("label", {}, "Title", h("input", { name: "title", required: true, maxlength: 300, "data-testid": "new-title" })),
    h("div", { class: "row" },
      h("label", {}, "Starts", h("input", { name: "start", type: "datetime-local", value: local, required: true,
        "data-testid": "new-start" })),
      h("label", {}, "Length", h("select", { name: "minutes" },
        [30, 60, 90, 120, 240].map((m) => h("option", { value: m, selected: m === 60 },
          m < 60 ? `${m} min` : `${m / 60} h`))))),
    h("label", {}, "Checklist from template", this.templates),
    h("div", { class: "field" }, h("span", {}, "Invite"), this.picker.el, this.chosen),
    h("div", { class: "row" },
      h("button", { type: "submit", "data-testid": "new-create" }, "Create event"),
      h("button", { type: "button", onclick: () => this.hide() }, "Cancel")),
    this.error);
  }

  async show() {
    this.root.hidden = false;
    clear(this.root).append(this.form);
    $("[name=title]", this.form).focus();
    await this.loadTemplates();
  }

  hide() {
    this.root.hidden = true;
  }

  async loadTemplates() {
    const [library, mine] = await Promise.all([
      this.api.get("/market/processes?limit=200").catch(() => []),
      this.api.get("/templates?limit=200").catch(() => []),
    ]);
    const groups = new Map(); // category -> templates
    for (const t of library) groups.set(t.category || "Library", [...(groups.get(t.category || "Library") ?? []), t]);
    const option = (t) => h("option", { value: t.id },
      `${t.title}${t.steps?.length ? ` · ${t.steps.length} steps` : ""}`);
    clear(this.templates).append(
      h("option", { value: "" }, "No checklist"),
      ...(mine.length ? [h("optgroup", { label: "My templates" }, mine.map(option))] : []),
      ...[...groups.entries()].map(([category, list]) => h("optgroup", { label: `Library · ${category}` },
        list.map(option))));
  }

  renderInvitees() {
    clear(this.chosen).append(...[...this.invitees.values()].map((u) =>
      h("li", { dataset: { userId: u.id } }, u.name, " ",
        h("button", { type: "button", class: "link", "aria-label": `Remove ${u.name}`,
          onclick: () => {
            this.invitees.delete(u.id);
            this.renderInvitees();
          } }, "×"))));
  }

  async submit(event) {
    event.preventDefault();
    const f = this.form;
    const button = $("[data-testid=new-create]", f);
    button.disabled = true;
    this.error.textContent = "";
    const start = new Date(f.start.value);
    const body = {
      title: f.title.value.trim(),
      startTime: start.toISOString(),
      endTime: new Date(start.getTime() + Number(f.minutes.value) * 60000).toISOString(),
      participantIds: [...this.invitees.keys()],
    };
    if (this.templates.value) body.templateProcessId = this.templates.value;
    try {
      const created = await this.api.post("/events", body);
      this.names.rememberEvent(created);
      f.reset();
      this.invitees.clear();
      this.renderInvitees();
      this.hide();
      await this.onCreated(created);
    } catch (err) {
      this.error.textContent = `Could not create the event: ${describeError(err)}`;
    } finally {
      button.disabled = false;
    }
  }
}
