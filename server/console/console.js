// The console: sign in, my events (create one from a template, invite people), an event room (presence,
// status, checklist, chat), a live AI session, and (admins) the ops view.
// Plain ES modules served by the server itself at /console (same origin: REST and /ws need no CORS).

import { AdminPanel } from "./admin.js";
import { Api } from "./api.js";
import { CreateEvent } from "./create.js";
import { $, clear, h, when } from "./dom.js";
import { LivePanel } from "./live.js";
import { Names } from "./names.js";
import { describeError, Realtime } from "./realtime.js";
import { Room } from "./room.js";

const api = new Api(location.origin);
const names = new Names(api);
const ui = { realtime: null, room: null, live: null, admin: null, create: null, me: null };

/** A line under the header: `error` (red) or `info`; it goes away by itself. */
function flash(text, kind = "error") {
  const el = $("#flash");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
  clearTimeout(flash.timer);
  if (text) flash.timer = setTimeout(() => (el.hidden = true), 6000);
}

function setStatus(state, label) {
  const el = $("#status");
  el.dataset.state = state;
  el.textContent = label;
  if (state === "signed-out") signOut();
}

function showSignIn(message = "") {
  $("#signin-view").hidden = false;
  $("#app-view").hidden = true;
  $("#signout").hidden = true;
  $("#tabs").hidden = true;
  $("#whoami").textContent = "";
  $("#signin-error").textContent = message;
  $("#signin-form [name=email]").focus();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button");
  button.disabled = true;
  $("#signin-error").textContent = "";
  try {
    await api.signIn(form.email.value.trim(), form.password.value);
    form.password.value = "";
    await enter();
  } catch (err) {
    $("#signin-error").textContent = err.status === 401 ? "Wrong email or password." : describeError(err);
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  ui.admin?.stop();
  ui.realtime?.close();
  ui.realtime = null;
  await api.signOut();
  showSignIn();
}

/** My own topic: an invitation (or a change to one of my events) shows in the list without a reload. */
const inbox = {
  async reload() {
    await loadEvents();
  },
  onMsg({ event: name, data }) {
    if (name !== "notification.created" || data.referenceType !== "event") return;
    if (data.type === "event_invite") flash(data.message || data.title, "info");
    loadEvents();
  },
  onLeft() {},
};

function onTopic(topic) {
  if (topic === ui.room?.topic) return ui.room;
  if (topic === ui.live?.topic) return ui.live;
  if (topic === inbox.topic) return inbox;
  return null;
}

async function enter() {
  ui.me = await api.get("/users/me");
  $("#signin-view").hidden = true;
  $("#app-view").hidden = false;
  $("#signout").hidden = false;
  $("#whoami").textContent = `${ui.me.name} (@${ui.me.handle})${ui.me.isAdmin ? " · admin" : ""}`;
  $("#tabs").hidden = !ui.me.isAdmin;
  names.rememberUser(ui.me);
  ui.realtime = new Realtime({
    api,
    onStatus: setStatus,
    onMsg: (frame) => onTopic(frame.topic)?.onMsg(frame),
    onResync: async (topic) => onTopic(topic)?.reload(),
    onPresence: (topic, people) => {
      if (topic === ui.room?.topic) ui.room.onPresence(people);
    },
    onLeft: (topic, reason) => onTopic(topic)?.onLeft(reason),
    onAnswer: (topic, answer) => {
      if (topic === ui.live?.topic) ui.live.onAnswer(answer);
    },
  });
  ui.room = new Room($("#room-panel"), {
    api, realtime: ui.realtime, names, me: ui.me, onError: flash,
    onChange: () => {
      ui.live.setEvent(ui.room.event);
      markActive();
      markStatus(ui.room.event);
    },
  });
  ui.live = new LivePanel($("#live-panel"), { api, realtime: ui.realtime, onError: flash });
  ui.create = new CreateEvent($("#new-event"), { api, names, me: ui.me, onCreated: async (event) => {
    await loadEvents();
    await openEvent(event);
  } });
  ui.admin = ui.me.isAdmin ? new AdminPanel($("#admin-view"), api, names) : null;
  api.get("/live/ai").then((ai) => ui.live.setAI(ai), () => ui.live.setAI(null));
  inbox.topic = `user:${ui.me.id}`;
  ui.realtime.connect();
  ui.realtime.join(inbox.topic).catch((err) => flash(`Live updates of my events are off: ${describeError(err)}`));
  showTab("events");
  await loadEvents();
}

async function loadEvents() {
  let events;
  try {
    events = await api.get("/events/me?limit=100");
  } catch (err) {
    clear($("#event-list")).append(h("li", { class: "error" }, describeError(err)));
    return;
  }
  const list = clear($("#event-list"));
  if (!events.length) list.append(h("li", { class: "empty" }, "No events yet: create one."));
  for (const event of events) {
    names.rememberEvent(event);
    list.append(h("li", {},
      h("button", { type: "button", class: "event", "data-testid": "event",
        dataset: { eventId: event.id, status: event.status }, onclick: () => openEvent(event) },
      h("strong", {}, event.title),
      h("span", { class: "muted" }, when(event.startTime), " · ",
        h("span", { class: "event-status" }, event.status)))));
  }
  markActive();
}

function markActive() {
  const id = ui.room?.event?.id;
  for (const el of document.querySelectorAll("#event-list .event")) el.classList.toggle("active", el.dataset.eventId === id);
}

/** The open room's status, mirrored in the list (it changes live). */
function markStatus(event) {
  const el = event && document.querySelector(`#event-list .event[data-event-id="${event.id}"]`);
  if (!el || !event.status) return;
  el.dataset.status = event.status;
  el.querySelector(".event-status").textContent = event.status;
}

async function openEvent(event) {
  try {
    await ui.room.open(event);
  } catch (err) {
    flash(`Could not open the room: ${describeError(err)}`);
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll("#tabs button")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("#events-view").hidden = name !== "events";
  $("#admin-view").hidden = name !== "admin";
  if (name === "admin") ui.admin?.start();
  else ui.admin?.stop();
}

$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
$("#refresh-events").addEventListener("click", loadEvents);
$("#create-event").addEventListener("click", () => ui.create?.show());
for (const tab of document.querySelectorAll("#tabs button")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

if (api.hasSession()) {
  enter().catch(() => {
    api.save(null);
    showSignIn();
  });
} else {
  showSignIn();
}
