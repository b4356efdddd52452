// Names instead of ids: users and events the console has seen (presence, participants, my events), and a
// REST look-up for the rest, cached for the page's life.

export class Names {
  constructor(api) {
    this.api = api;
    this.users = new Map(); // id -> {id, name, handle}
    this.events = new Map(); // id -> title
    this.asking = new Map(); // "user:<id>" -> Promise
  }

  rememberUser(user) {
    if (user?.id) this.users.set(String(user.id).toLowerCase(), user);
  }

  rememberEvent(event) {
    if (event?.id && event.title) this.events.set(String(event.id).toLowerCase(), event.title);
  }

  user(id) {
    const user = this.users.get(String(id).toLowerCase());
    return user ? `${user.name} (@${user.handle})` : null;
  }

  /** A topic such as `event:<id>` or `user:<id>` as words; null when the name is not known yet. */
  topic(topic) {
    const [kind, id] = topic.split(":");
    if (kind === "event") return this.events.has(id) ? `event “${this.events.get(id)}”` : null;
    if (kind === "user") return this.user(id) ? `user ${this.user(id)}` : null;
    if (kind === "live") return "a live AI session";
    return null;
  }

  /** Fetch the users behind these topics that are not known yet; resolves when every look-up ended. */
  async resolve(topics) {
    const wanted = topics.map((t) => t.split(":")).filter(([kind, id]) => kind === "user" && !this.users.has(id));
    await Promise.all(wanted.map(([, id]) => {
      const key = `user:${id}`;
      if (!this.asking.has(key)) {
        this.asking.set(key, this.api.get(`/users/${id}`).then((u) => this.rememberUser(u), () => {}));
      }
      return this.asking.get(key);
    }));
  }
}
