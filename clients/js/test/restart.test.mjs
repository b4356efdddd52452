// A server restart: SIGTERM drains the socket with 1012, the client reconnects at once (not after backoff),
// and once an instance is back on the address it resumes with `since` and gets what it missed. The server is a
// real `conversme serve` process this test starts and stops (CONVERSME_SERVE from tests/ship/test_js_client.py).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import { describeClose } from "../dist/conversme.js";
import { HANG, clientFor, eventWith, next, online, person, when } from "./helpers.mjs";

const SERVE = JSON.parse(process.env.CONVERSME_SERVE ?? "null");
if (!SERVE) throw new Error("CONVERSME_SERVE is not set: run these tests through tests/ship/test_js_client.py");

async function freePort() {
  const srv = createServer().listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/** `conversme serve` on `port`, resolved once /health answers (the harness's readiness check, in Node). */
async function serve(port) {
  const proc = spawn(SERVE.bin, ["serve", "--port", String(port)], { env: SERVE.env, stdio: "ignore" });
  const exited = once(proc, "exit");
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (up) return { proc, exited, url: `http://127.0.0.1:${port}` };
    const gone = await Promise.race([exited.then(() => true), delay(100).then(() => false)]);
    if (gone) throw new Error(`conversme serve on ${port} exited before it was ready`);
  }
}

test("1012 on a server restart: reconnect at once, then resume with since and lose nothing", { timeout: 120_000 }, async (t) => {
  const ada = await person("Ada");
  const grace = await person("Grace");
  const event = await eventWith(ada, grace);
  const name = `event:${event.id}`;
  const port = await freePort();
  let server = await serve(port);
  t.after(() => server.proc.kill("SIGKILL"));

  // timeout: a connection attempt that hangs while the old process drains is given up sooner than the default.
  const a = clientFor(ada, { base: server.url, timeout: 2000 });
  const g = clientFor(grace); // on the suite's instance A, which stays up
  await Promise.all([online(a), online(g)]);
  const aRoom = a.topic(name);
  const gRoom = g.topic(name);
  const texts = [];
  aRoom.on("chat.message", (line) => texts.push(line.text));
  await aRoom.join();
  await gRoom.join();
  await gRoom.push("chat.send", { text: "before" });
  await when(aRoom, "chat.message", () => texts.length === 1);

  const closed = next(a, "close");
  const offline = next(a, "status", (s) => s === "offline");
  server.proc.kill("SIGTERM");
  const [info] = await closed;
  assert.equal(info.code, 1012);
  assert.equal(info.label, describeClose(1012));
  assert.ok(info.reconnectIn !== null && info.reconnectIn < 1000, `reconnect at once, not after backoff: ${info.reconnectIn}`);
  const [, detail] = await offline;
  assert.equal(detail.code, 1012);
  await server.exited;

  // While no instance serves that address, Grace writes on the other one.
  const missed = ["while down 1", "while down 2"];
  for (const text of missed) await gRoom.push("chat.send", { text });
  const back = next(a, "open");
  server = await serve(port);
  await back;
  await when(aRoom, "chat.message", () => texts.length === 1 + missed.length);
  assert.deepEqual(texts, ["before", ...missed]);
  assert.equal(aRoom.state, "joined");
  a.disconnect();
  g.disconnect();
  server.proc.kill("SIGTERM");
  await server.exited;
});
