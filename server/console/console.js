// The console: sign in, my events, an event room, a live AI session, and (admins) the ops view.
// Plain ES modules served by the server itself at /console (same origin: REST and /ws need no CORS).

import { AdminPanel } from "./admin.js";
import { Api } from "./api.js";
import { $, clear, h, when } from "./dom.js";
import { LivePanel } from "./live.js";
import { Room } from "./room.js";
import { Socket } from "./socket.js";

const api = new Api(location.origin);
const ui = { socket: null, room: null, live: null, admin: null, me: null };

function flash(text) {
  const el = $("#flash");
  el.textContent = text;
  el.hidden = !text;
  clearTimeout(flash.timer);
  if (text) flash.timer = setTimeout(() => (el.hidden = true), 6000);
}

function setStatus(status, code) {
  const el = $("#status");
  el.dataset.state = status;
  el.textContent = code && status === "offline" ? `offline (${code})` : status;
  if (status === "signed-out") signOut();
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
    $("#signin-error").textContent = err.status === 401 ? "Wrong email or password." : err.message;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  ui.admin?.stop();
  ui.socket?.close();
  ui.socket = null;
  await api.signOut();
  showSignIn();
}

function onTopic(topic) {
  if (topic === ui.room?.topic) return ui.room;
  if (topic === ui.live?.topic) return ui.live;
  return null;
}

async function enter() {
  ui.me = await api.get("/users/me");
  $("#signin-view").hidden = true;
  $("#app-view").hidden = false;
  $("#signout").hidden = false;
  $("#whoami").textContent = `${ui.me.name} (@${ui.me.handle})${ui.me.isAdmin ? " · admin" : ""}`;
  $("#tabs").hidden = !ui.me.isAdmin;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ui.socket = new Socket({
    url: `${scheme}//${location.host}/ws`,
    getToken: (force) => api.token(force),
    onStatus: setStatus,
    onMsg: (frame) => onTopic(frame.topic)?.onMsg(frame),
    onResync: async (topic) => onTopic(topic)?.reload(),
    onPresence: (topic, joins, leaves) => {
      if (topic === ui.room?.topic) ui.room.onPresence(joins, leaves);
    },
    onLeft: (topic, reason) => onTopic(topic)?.onLeft(reason),
  });
  ui.room = new Room($("#room-panel"), {
    api, socket: ui.socket, onError: flash,
    onChange: () => ui.live.setEvent(ui.room.event),
  });
  ui.live = new LivePanel($("#live-panel"), { api, socket: ui.socket, onError: flash });
  ui.admin = ui.me.isAdmin ? new AdminPanel($("#admin-view"), api) : null;
  ui.socket.connect();
  showTab("events");
  await loadEvents();
}

async function loadEvents() {
  const list = clear($("#event-list"));
  let events;
  try {
    events = await api.get("/events/me?limit=100");
  } catch (err) {
    list.append(h("li", { class: "error" }, err.message));
    return;
  }
  if (!events.length) list.append(h("li", { class: "empty" }, "No events yet."));
  for (const event of events) {
    list.append(h("li", {},
      h("button", { type: "button", class: "event", "data-testid": "event", dataset: { eventId: event.id },
        onclick: (ev) => openEvent(event, ev.currentTarget) },
      h("strong", {}, event.title),
      h("span", { class: "muted" }, `${when(event.startTime)} · ${event.status}`))));
  }
}

async function openEvent(event, button) {
  for (const el of document.querySelectorAll("#event-list .event")) el.classList.toggle("active", el === button);
  try {
    await ui.room.open(event);
  } catch (err) {
    flash(`could not open the room: ${err.message}`);
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
for (const tab of document.querySelectorAll("#tabs button")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

if (api.hasSession()) {
  enter().catch(() => {
    api.save(null);
    showSignIn();
  });
} else {
  showSignIn();
}
