// Finding people to invite: a search box over GET /users?query= (name or handle; the API keeps other
// users' emails private, so an email finds nobody but yourself) and a list of matches to pick from.

import { clear, h } from "./dom.js";

const WAIT_MS = 250; // between keystrokes and the search

export class PeoplePicker {
  /**
   * @param {object} o
   * @param {import("./api.js").Api} o.api
   * @param {import("./names.js").Names} o.names
   * @param {(user: object) => Promise<void>|void} o.onPick
   * @param {() => Set<string>} o.taken  user ids not to offer (already invited, or me)
   * @param {string} o.action  the pick button's label
   * @param {string} o.testid
   */
  constructor(o) {
    this.o = o;
    this.timer = null;
    this.input = h("input", { type: "search", placeholder: "Search people by name or @handle",
      "aria-label": "Search people", "data-testid": `${o.testid}-search`, autocomplete: "off",
      oninput: () => this.later() });
    this.results = h("ul", { class: "people-results", "data-testid": `${o.testid}-results` });
    this.el = h("div", { class: "picker" }, this.input, this.results);
  }

  later() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.search(), WAIT_MS);
  }

  async search() {
    const text = this.input.value.trim().replace(/^@/, "");
    if (!text) {
      clear(this.results);
      return;
    }
    let users;
    try {
      users = await this.o.api.get(`/users?query=${encodeURIComponent(text)}&limit=8`);
    } catch (err) {
      clear(this.results).append(h("li", { class: "error" }, err.message));
      return;
    }
    if (this.input.value.trim().replace(/^@/, "") !== text) return; // typed on meanwhile
    const taken = this.o.taken();
    const offered = users.filter((u) => !taken.has(u.id));
    for (const u of users) this.o.names.rememberUser(u);
    clear(this.results).append(...(offered.length ? offered.map((u) => this.row(u))
      : [h("li", { class: "empty" }, "Nobody else matches.")]));
  }

  row(user) {
    const button = h("button", { type: "button", "data-testid": `${this.o.testid}-pick`,
      onclick: async () => {
        button.disabled = true;
        await this.o.onPick(user);
        this.input.value = "";
        clear(this.results);
      } }, this.o.action);
    return h("li", { dataset: { userId: user.id } },
      h("span", {}, user.name, " ", h("span", { class: "muted" }, `@${user.handle}`)), button);
  }
}
