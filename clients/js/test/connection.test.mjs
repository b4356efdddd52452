// Connecting: the auth frame first, a refused token answered by a forced fresh one, the in-band refresh before
// the JWT expires, and a session that ends (logout) signing the client out instead of reconnecting.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, describeClose } from "../dist/conversme.js";
import { HANG, api, clientFor, freshToken, next, online, person, recorder, wsUrl } from "./helpers.mjs";

test("authenticates with an auth frame first and reports the session", HANG, async () => {
  const ada = await person("Ada");
  const rec = recorder();
  const client = clientFor(ada, { WebSocket: rec.WebSocket });
  const statuses = [];
  client.on("status", (s) => statuses.push(s));
  const [session] = await Promise.all([next(client, "open").then(([s]) => s), online(client)]);
  assert.equal(session.userId, ada.id);
  assert.equal(client.session.userId, ada.id);
  assert.ok(session.heartbeat > 0);
  assert.deepEqual(statuses, ["connecting", "online"]);
  assert.equal(rec.sent[0].op, "auth");
  assert.equal(rec.sent[0].token, ada.token);
  assert.equal(rec.sockets[0].protocol, "conversme.v1");
  client.disconnect();
  assert.equal(client.status, "closed");
});

test("a refused token (4001) gets a forced fresh token and reconnects", HANG, async () => {
  const ada = await person("Ada");
  let token = "not.a.token";
  const forced = [];
  const client = new Client({
    url: wsUrl(),
    getToken: async (force) => {
      if (force) {
        forced.push(true);
        token = await freshToken(ada);
      }
      return token;
    },
    backoff: { initial: 20, max: 200 },
  });
  const closes = [];
  client.on("close", (info) => closes.push(info));
  await online(client);
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 4001);
  assert.equal(closes[0].label, describeClose(4001));
  assert.notEqual(closes[0].reconnectIn, null);
  assert.equal(forced.length, 1);
  assert.equal(client.session.userId, ada.id);
  client.disconnect();
});

test("refreshes the token in-band before it expires, on the same connection", HANG, async () => {
  const ada = await person("Ada");
  const exp = JSON.parse(atob(ada.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
  const rec = recorder();
  // Due one second after connecting: refreshBefore is the time left minus one second.
  const client = clientFor(ada, { WebSocket: rec.WebSocket, refreshBefore: exp * 1000 - Date.now() - 1000 });
  const refreshed = next(client, "refresh");
  await online(client);
  const connectionId = client.session.connectionId;
  await refreshed;
  const frames = rec.sent.filter((f) => f.op === "refresh");
  assert.equal(frames.length, 1);
  assert.equal(frames[0].token, ada.token); // the fresh one getToken(true) fetched
  assert.equal(client.tokenCalls.forced, 1);
  assert.equal(rec.sockets.length, 1);
  assert.equal(client.session.connectionId, connectionId);
  // The socket still works on the new token.
  const room = client.topic(`user:${ada.id}`);
  const reply = await room.join();
  assert.equal(typeof reply.epoch, "string");
  // And client.refresh() does the same on demand.
  await client.refresh();
  assert.equal(rec.sent.filter((f) => f.op === "refresh").length, 2);
  client.disconnect();
});

test("a sign-in session that ends (logout) signs the client out: no reconnect", HANG, async () => {
  const ada = await person("Ada");
  const client = clientFor(ada);
  await online(client);
  const signedOut = next(client, "status", (s) => s === "signed-out");
  const closed = next(client, "close");
  const r = await api("POST", "/auth/logout", { token: ada.token });
  assert.ok(r.status < 300, JSON.stringify(r.body));
  const [, detail] = await signedOut;
  const [info] = await closed;
  assert.equal(info.code, 4001);
  assert.equal(info.reason, "session ended");
  assert.equal(info.reconnectIn, null);
  assert.equal(detail.label, "Signed out: the sign-in session ended");
  assert.equal(client.status, "signed-out");
});

test("client.reconnect() resumes on a new connection", HANG, async () => {
  const ada = await person("Ada");
  const rec = recorder();
  const client = clientFor(ada, { WebSocket: rec.WebSocket });
  await online(client);
  const first = client.session.connectionId;
  const again = next(client, "open");
  client.reconnect();
  const [session] = await again;
  assert.notEqual(session.connectionId, first);
  assert.equal(rec.sockets.length, 2);
  client.disconnect();
});
