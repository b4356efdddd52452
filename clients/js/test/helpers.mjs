// Shared by the Node tests: REST calls to the real server (users, events, live sessions), a recording WebSocket,
// and waits on events (never on sleeps). The server comes from tests/ship/test_js_client.py (CONVERSME_URL).
import { Client } from "../dist/conversme.js";

export const BASE = process.env.CONVERSME_URL;
if (!BASE) throw new Error("CONVERSME_URL is not set: run these tests through tests/ship/test_js_client.py");
export const BASE_B = process.env.CONVERSME_URL_B || BASE;
export const wsUrl = (base = BASE) => `${base.replace(/^http/, "ws")}/ws`;
const PASSWORD = "correct horse battery";
// A guard against a hang, not a performance assertion: every wait below ends on an event.
export const HANG = { timeout: 60_000 };

export async function api(method, path, { token, json, form, base = BASE } = {}) {
  const headers = {};
  let body;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }
  const r = await fetch(`${base}${path}`, { method, headers, body });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

function expect2xx(r, what) {
  if (r.status < 200 || r.status > 299) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A new user, signed in: {id, email, handle, name, token, refreshToken}. */
export async function person(name = "user") {
  const handle = `${name.toLowerCase()}_${crypto.randomUUID().slice(0, 8)}`;
  const email = `${handle}@example.com`;
  const user = expect2xx(await api("POST", "/users", { json: { email, password: PASSWORD, name, handle } }), "sign-up");
  const tokens = expect2xx(await api("POST", "/auth/token", { form: { username: email, password: PASSWORD } }), "login");
  return { id: user.id, email, handle, name, token: tokens.accessToken, refreshToken: tokens.refreshToken };
}

/** A new access token over REST (the refresh token rotates). */
export async function freshToken(p) {
  const tokens = expect2xx(await api("POST", "/auth/refresh", { json: { refreshToken: p.refreshToken } }), "refresh");
  p.token = tokens.accessToken;
  p.refreshToken = tokens.refreshToken;
  return p.token;
}

/** An event owned by `owner` with `members` confirmed, and a checklist of two steps. */
export async function eventWith(owner, ...members) {
  const template = expect2xx(await api("POST", "/templates", { token: owner.token, json: {
    title: "Checklist", steps: [{ content: "one", subSteps: [{ content: "a" }] }, { content: "two" }] } }), "template");
  const event = expect2xx(await api("POST", "/events", { token: owner.token, json: {
    title: "Standup", startTime: "2030-01-01T09:00:00Z", endTime: "2030-01-01T10:00:00Z",
    participantIds: members.map((m) => m.id), templateProcessId: template.id } }), "event");
  for (const m of members) {
    expect2xx(await api("PUT", `/events/${event.id}/participants/${m.id}`, { token: m.token,
      json: { status: "confirmed" } }), "confirm");
  }
  return event;
}

/** A live session linked to `eventId` (its members may join it). */
export async function liveSession(owner, eventId) {
  return expect2xx(await api("POST", "/live/contexts", { token: owner.token, json: { eventId } }), "live session");
}

/**
 * A WebSocket class that records what the client sends and receives (raw frames, before the client handles them),
 * and can swallow outgoing frames (`drop = true`) to make a request go unanswered.
 */
export function recorder() {
  const listeners = new Set();
  const rec = { sockets: [], sent: [], received: [], drop: false, WebSocket: null };
  // rec.on("frame", (frame) => …): every received frame, before the client handles it (for next()/when()).
  rec.on = (_name, handler) => {
    listeners.add(handler);
    return () => listeners.delete(handler);
  };
  rec.WebSocket = class extends globalThis.WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      rec.sockets.push(this);
      // Registered before the client's onmessage: the test sees every frame first.
      this.addEventListener("message", (event) => {
        const frame = JSON.parse(event.data);
        rec.received.push(frame);
        for (const handler of [...listeners]) handler(frame);
      });
    }
    send(data) {
      rec.sent.push(JSON.parse(data));
      if (!rec.drop) super.send(data);
    }
  };
  return rec;
}

/** A client for `p`: getToken(false) → the current token, getToken(true) → a fresh one over REST. */
export function clientFor(p, options = {}) {
  const calls = { plain: 0, forced: 0 };
  const client = new Client({
    url: wsUrl(options.base),
    getToken: async (force) => {
      if (force) {
        calls.forced++;
        return freshToken(p);
      }
      calls.plain++;
      return p.token;
    },
    backoff: { initial: 20, max: 200 },
    ...options,
  });
  client.tokenCalls = calls;
  return client;
}

/** Resolve with the handler's arguments the first time `on(name)` fires with them satisfying `test`. */
export function next(emitter, name, test = () => true) {
  return new Promise((resolve) => {
    const off = emitter.on(name, (...args) => {
      if (!test(...args)) return;
      off();
      resolve(args);
    });
  });
}

/** Connect and wait until authenticated. */
export async function online(client) {
  if (client.status === "online") return;
  const opened = next(client, "status", (s) => s === "online");
  client.connect();
  await opened;
}

/** Resolve when `check()` holds, re-checking after every event `name` of `emitter`. */
export function when(emitter, name, check) {
  if (check()) return Promise.resolve();
  return new Promise((resolve) => {
    const off = emitter.on(name, () => {
      if (!check()) return;
      off();
      resolve();
    });
  });
}

/** A promise with its resolve handle (a gate the test opens). */
export function gate() {
  let open;
  const promise = new Promise((resolve) => (open = resolve));
  return { promise, open };
}
