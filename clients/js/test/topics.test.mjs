// Topics against the real server: joins, msg order, pushes and their errors, presence, `left`, reconnect with
// resume (`since`), and recovered:false → onResync with the msgs that arrive meanwhile held back.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ReplyError, memoryPositions } from "../dist/conversme.js";
import { BASE_B, HANG, api, clientFor, eventWith, gate, next, online, person, recorder, when } from "./helpers.mjs";

/** Ada on instance A and Grace on instance B, online. */
async function bothOnline(ada, grace) {
  const a = clientFor(ada);
  const g = clientFor(grace, { base: BASE_B });
  await Promise.all([online(a), online(g)]);
  return [a, g];
}

async function room() {
  const ada = await person("Ada");
  const grace = await person("Grace");
  const event = await eventWith(ada, grace);
  return { ada, grace, event, name: `event:${event.id}` };
}

test("msgs arrive in log order, each once, to every member (across two server instances)", HANG, async () => {
  const { ada, grace, name } = await room();
  const [a, g] = await bothOnline(ada, grace);
  const aRoom = a.topic(name);
  const gRoom = g.topic(name);
  const seen = [];
  aRoom.on("chat.message", (line, msg) => seen.push({ text: line.text, offset: msg.offset }));
  const all = [];
  a.on("msg", (msg) => all.push(msg.topic));
  const reply = await aRoom.join();
  assert.equal(reply.recovered, false);
  assert.equal(aRoom.state, "joined");
  await gRoom.join();
  const texts = Array.from({ length: 15 }, (_, i) => `line ${i}`);
  for (const text of texts) {
    const line = await gRoom.push("chat.send", { text });
    assert.equal(line.text, text);
    assert.equal(line.authorId, grace.id);
  }
  await when(aRoom, "chat.message", () => seen.length === texts.length);
  assert.deepEqual(seen.map((s) => s.text), texts);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].offset > seen[i - 1].offset);
  assert.equal(aRoom.position.offset, seen.at(-1).offset);
  assert.ok(all.every((t) => t === name));
  a.disconnect();
  g.disconnect();
});

test("push resolves with the reply data and rejects with ReplyError codes", HANG, async () => {
  const { ada, name } = await room();
  const rec = recorder();
  const a = clientFor(ada, { WebSocket: rec.WebSocket });
  const r = a.topic(name);
  await assert.rejects(r.push("chat.send", { text: "too early" }), (e) => e instanceof ReplyError && e.code === "not_connected");
  await online(a);
  await r.join();
  const line = await r.push("chat.send", { text: "hello" });
  assert.equal(line.text, "hello");
  await assert.rejects(r.push("step.update", { stepId: crypto.randomUUID(), completed: true }),
    (e) => e instanceof ReplyError && e.code === "not_found" && e.topic === name && e.event === "step.update");
  await assert.rejects(r.push("no.such.push", {}), (e) => e instanceof ReplyError && e.code === "invalid");
  await assert.rejects(r.push("chat.send", { text: "" }), (e) => e instanceof ReplyError && e.code === "invalid");
  // Unanswered (the frame never leaves): timeout. Connection lost while waiting: disconnected.
  rec.drop = true;
  await assert.rejects(r.push("chat.send", { text: "lost" }, { timeout: 300 }), (e) => e.code === "timeout");
  const pending = r.push("chat.send", { text: "lost too" });
  a.reconnect();
  await assert.rejects(pending, (e) => e instanceof ReplyError && e.code === "disconnected");
  rec.drop = false;
  a.disconnect();
});

test("a refused join rejects with its code and marks the topic failed", HANG, async () => {
  const ada = await person("Ada");
  const grace = await person("Grace");
  const a = clientFor(ada);
  await online(a);
  const missing = a.topic(`event:${crypto.randomUUID()}`);
  await assert.rejects(missing.join(), (e) => e instanceof ReplyError && e.code === "not_found");
  assert.equal(missing.state, "failed");
  await assert.rejects(a.topic(`user:${grace.id}`).join(), (e) => e.code === "forbidden");
  a.disconnect();
});

test("presence: the snapshot, then joins and leaves as change events", HANG, async () => {
  const { ada, grace, name } = await room();
  const [a, g] = await bothOnline(ada, grace);
  const aRoom = a.topic(name);
  const changes = [];
  aRoom.presence.on("change", (c) => changes.push(c));
  await aRoom.join();
  assert.deepEqual(aRoom.presence.list().map((m) => m.id), [ada.id]);
  assert.equal(changes[0].snapshot, true);
  const graceCame = when(aRoom.presence, "change", () => aRoom.presence.has(grace.id));
  const gRoom = g.topic(name);
  const reply = await gRoom.join();
  assert.deepEqual(Object.keys(reply.presence).sort(), [ada.id, grace.id].sort());
  assert.equal(gRoom.presence.size, 2);
  await graceCame;
  assert.equal(aRoom.presence.get(grace.id).handle, grace.handle);
  const joinDiff = changes.find((c) => !c.snapshot && c.joined.some((m) => m.id === grace.id));
  assert.ok(joinDiff);
  const graceWent = when(aRoom.presence, "change", () => !aRoom.presence.has(grace.id));
  await gRoom.leave();
  assert.equal(gRoom.presence.size, 0);
  await graceWent;
  assert.ok(changes.some((c) => c.left.includes(grace.id)));
  a.disconnect();
  g.disconnect();
});

test("left: a removed participant's topic says why and is not rejoined", HANG, async () => {
  const { ada, grace, event, name } = await room();
  const rec = recorder();
  const g = clientFor(grace, { WebSocket: rec.WebSocket });
  await online(g);
  const gRoom = g.topic(name);
  await gRoom.join();
  const left = next(gRoom, "left");
  const r = await api("DELETE", `/events/${event.id}/participants/${grace.id}`, { token: ada.token });
  assert.ok(r.status < 300, JSON.stringify(r.body));
  const [reason] = await left;
  assert.equal(reason, "revoked");
  assert.equal(gRoom.state, "left");
  assert.equal(gRoom.position, null);
  const reopened = next(g, "open");
  g.reconnect();
  await reopened;
  // Every join frame sent was on the first connection.
  assert.equal(rec.sent.filter((f) => f.op === "join").length, 1);
  g.disconnect();
});

test("reconnect resumes with since: the missed msgs arrive once, in order", HANG, async () => {
  const { ada, grace, name } = await room();
  const rec = recorder();
  let hold = null; // while set, authentication waits: the client is off the topic
  const a = clientFor(ada, {
    WebSocket: rec.WebSocket,
    getToken: async () => {
      await hold?.promise;
      return ada.token;
    },
  });
  const g = clientFor(grace);
  await Promise.all([online(a), online(g)]);
  const aRoom = a.topic(name);
  const gRoom = g.topic(name);
  const offsets = [];
  const texts = [];
  aRoom.on("chat.message", (line, msg) => {
    offsets.push(msg.offset);
    texts.push(line.text);
  });
  const resyncs = [];
  aRoom.on("resync", () => resyncs.push(true));
  await aRoom.join();
  await gRoom.join();
  await gRoom.push("chat.send", { text: "before" });
  await when(aRoom, "chat.message", () => texts.length === 1);
  const before = { ...aRoom.position };

  // Kill the socket from the client side; hold the reconnect's authentication while Grace writes.
  hold = gate();
  const originalSocketCount = rec.sockets.length;
  const reconnecting = next(a, "status", (s) => s === "connecting");
  rec.sockets.at(-1).close(4000, "test kill");
  await reconnecting;
  const missed = ["missed 1", "missed 2", "missed 3"];
  for (const text of missed) await gRoom.push("chat.send", { text });
  hold.open();
  await when(aRoom, "chat.message", () => texts.length === 1 + missed.length);
  assert.deepEqual(texts, ["before", ...missed]);
  assert.ok(rec.sockets.length > originalSocketCount);
  const resume = rec.sent.filter((f) => f.op === "join").at(-1);
  assert.deepEqual(resume.since, before);
  assert.equal(resyncs.length, 1); // only the first join (no since) needed a REST load
  for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] > offsets[i - 1]);
  // The replayed msgs were real frames after a recovered join reply.
  const replies = rec.received.filter((f) => f.op === "reply" && f.data && "recovered" in f.data);
  assert.equal(replies.at(-1).data.recovered, true);
  // Duplicates are dropped: the same frame handed in again changes nothing.
  const dup = rec.received.filter((f) => f.op === "msg").at(-1);
  rec.sockets.at(-1).dispatchEvent(new MessageEvent("message", { data: JSON.stringify(dup) }));
  assert.equal(texts.length, 1 + missed.length);
  a.disconnect();
  g.disconnect();
});

test("recovered:false → onResync runs, msgs arriving meanwhile are held and delivered after it", HANG, async () => {
  const { ada, grace, name } = await room();
  // A stale position (another epoch) makes the server answer recovered:false.
  const positions = memoryPositions();
  positions.save(name, { epoch: "an-old-epoch", offset: 7 });
  const rec = recorder();
  const reload = gate();
  const order = [];
  const a = clientFor(ada, { WebSocket: rec.WebSocket, positions });
  const g = clientFor(grace);
  await Promise.all([online(a), online(g)]);
  const resyncStarted = gate();
  const aRoom = a.topic(name, {
    onResync: async (topic) => {
      assert.equal(topic, aRoom);
      order.push("resync start");
      resyncStarted.open();
      await reload.promise;
      order.push("resync done");
    },
  });
  aRoom.on("chat.message", (line) => order.push(line.text));
  const gRoom = g.topic(name);
  await gRoom.join();
  const reply = await aRoom.join();
  assert.equal(reply.recovered, false);
  assert.deepEqual(rec.sent.find((f) => f.op === "join").since, { epoch: "an-old-epoch", offset: 7 });
  assert.equal(aRoom.position.epoch, reply.epoch); // the reply's position replaced the stale one
  await resyncStarted.promise;
  // Grace writes while the REST reload runs: the frame reaches the socket but is held.
  const arrived = next(rec, "frame", (f) => f.op === "msg" && f.topic === name && f.event === "chat.message");
  await gRoom.push("chat.send", { text: "during reload" });
  await arrived;
  assert.deepEqual(order, ["resync start"]);
  reload.open();
  await when(aRoom, "chat.message", () => order.includes("during reload"));
  assert.deepEqual(order, ["resync start", "resync done", "during reload"]);
  a.disconnect();
  g.disconnect();
});
