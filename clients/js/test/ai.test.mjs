// AI answers on a live topic (the server streams from the fake OpenAI server): assembled from ai.started /
// ai.delta / ai.completed, resumed across a reconnect (the server compacts what was missed), and cancelled.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AiAssembler } from "../dist/conversme.js";
import { HANG, clientFor, eventWith, liveSession, next, online, person, when } from "./helpers.mjs";

/** Ada's live session linked to an event of hers with Grace: both online (one client each) and joined. */
async function session() {
  const ada = await person("Ada");
  const grace = await person("Grace");
  const event = await eventWith(ada, grace);
  const ctx = await liveSession(ada, event.id);
  const a = clientFor(ada);
  const g = clientFor(grace);
  await Promise.all([online(a), online(g)]);
  const aLive = a.live(ctx.id);
  const gLive = g.live(ctx.id);
  await aLive.join();
  await gLive.join();
  return { ada, grace, ctx, a, g, aLive, gLive };
}

/** Every state an answer went through, as {state, text, index}. */
function track(live) {
  const seen = new Map();
  live.on("answer", (a) => {
    if (!seen.has(a.streamId)) seen.set(a.streamId, []);
    seen.get(a.streamId).push({ state: a.state, text: a.text, index: a.index, incomplete: a.incomplete });
  });
  return seen;
}

test("an answer streams in, assembled, and its completion replaces the draft", HANG, async () => {
  const { ada, ctx, a, g, aLive, gLive } = await session();
  assert.equal(g.topic(`live:${ctx.id}`), gLive); // topic() hands out the LiveSession too
  assert.equal(aLive.name, `live:${ctx.id}`);
  const aSeen = track(aLive);
  const gSeen = track(gLive);
  const prompts = [];
  gLive.on("message.created", (m) => prompts.push(m));
  const accepted = await aLive.prompt("What is next? [n:24] [rate:80]");
  assert.equal(accepted.contextId, ctx.id);
  for (const live of [aLive, gLive]) {
    await when(live, "answer", () => live.answers.get(accepted.streamId)?.state === "completed");
  }
  for (const [live, seen] of [[aLive, aSeen], [gLive, gSeen]]) {
    const answer = live.answers.get(accepted.streamId);
    const states = seen.get(accepted.streamId);
    assert.equal(states[0].state, "streaming");
    const drafts = states.filter((s) => s.state === "streaming");
    const lastDraft = drafts.at(-1);
    // Appended in order, never a hole or a repeat: the last draft is exactly the final text.
    assert.equal(lastDraft.text, answer.text);
    assert.match(answer.text, /tok0 tok1 .*tok23/);
    for (let i = 1; i < drafts.length; i++) assert.ok(drafts[i].text.startsWith(drafts[i - 1].text));
    assert.equal(answer.incomplete, false);
    assert.equal(typeof answer.messageId, "string");
    assert.ok(Array.isArray(answer.suggestedOperations));
    assert.ok(answer.usage.totalTokens > 0);
    assert.equal(answer.requestedBy, ada.id);
    assert.equal(live.running, null);
  }
  assert.equal(prompts.length, 1);
  a.disconnect();
  g.disconnect();
});

test("a member who drops mid-stream resumes it: compacted backlog, no hole, no duplicate", HANG, async () => {
  const { a, g, aLive, gLive } = await session();
  const gSeen = track(gLive);
  const accepted = await aLive.prompt("Talk slowly [n:80] [rate:40]");
  const id = accepted.streamId;
  await when(gLive, "answer", () => (gLive.answers.get(id)?.index ?? -1) >= 2);
  g.disconnect();
  const gone = gLive.answers.get(id).index;
  // Away while at least ten more deltas go by.
  await when(aLive, "answer", () => aLive.answers.get(id).index >= gone + 10);
  g.connect();
  await when(gLive, "answer", () => gLive.answers.get(id)?.state === "completed");
  const final = gLive.answers.get(id).text;
  assert.equal(final, aLive.answers.get(id).text);
  const drafts = gSeen.get(id).filter((s) => s.state === "streaming");
  for (let i = 1; i < drafts.length; i++) assert.ok(drafts[i].text.startsWith(drafts[i - 1].text));
  const resumed = drafts.filter((d) => d.index > gone);
  if (resumed.length) {
    // The stream was still running when Grace came back: the merged delta filled the gap exactly.
    assert.ok(resumed[0].index > gone + 1, "the compacted delta jumps the index");
    assert.equal(drafts.at(-1).text, final);
  }
  assert.equal(gLive.answers.get(id).incomplete, false);
  a.disconnect();
  g.disconnect();
});

test("cancel stops the running answer for everyone", HANG, async () => {
  const { a, g, aLive, gLive } = await session();
  // [stall]: two tokens, then silence with the upstream request open — surely still running when cancelled.
  const accepted = await aLive.prompt("Think forever [stall]");
  await when(aLive, "answer", () => aLive.running?.index >= 0);
  assert.equal(aLive.running.streamId, accepted.streamId);
  const reply = await aLive.cancel();
  assert.equal(reply.streamId, accepted.streamId);
  assert.equal(reply.cancelling, true);
  for (const live of [aLive, gLive]) {
    await when(live, "answer", () => live.answers.get(accepted.streamId)?.state === "cancelled");
    assert.equal(live.running, null);
  }
  await assert.rejects(aLive.cancel(), (e) => e.code === "invalid");
  a.disconnect();
  g.disconnect();
});

test("the assembler on its own: merged deltas, duplicates, end frames first seen on resume", () => {
  const asm = new AiAssembler();
  const m = (event, data) => ({ event, data: { streamId: "s1", ...data } });
  assert.equal(asm.apply({ event: "chat.message", data: {} }), null);
  assert.equal(asm.apply(m("ai.started", { requestedBy: "u" })).incomplete, false);
  assert.equal(asm.apply(m("ai.delta", { index: 0, text: "a" })).text, "a");
  assert.equal(asm.apply(m("ai.delta", { index: 3, text: "bcd" })).text, "abcd"); // merged: 1..3
  assert.equal(asm.apply(m("ai.delta", { index: 2, text: "x" })), null); // already have it
  assert.equal(asm.running.streamId, "s1");
  const done = asm.apply(m("ai.completed", { messageId: "m", text: "ABCD", suggestedOperations: [{ operation: "add_step" }], usage: {} }));
  assert.equal(done.state, "completed");
  assert.equal(done.text, "ABCD");
  assert.equal(asm.running, null);
  // A stream whose only frame after a resume is its end.
  const only = asm.apply({ event: "ai.error", data: { streamId: "s2", code: "timeout", message: "silent" } });
  assert.equal(only.state, "error");
  assert.equal(only.incomplete, true);
  assert.deepEqual([...asm.answers.keys()], ["s1", "s2"]);
});
