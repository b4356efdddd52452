// The receiving side of bench/js_client_rate.py: one clients/js Client joined to one topic, timing every msg.
// Env: CONVERSME_WS, CONVERSME_TOKEN, CONVERSME_TOPIC. Prints "READY" once joined; reads "DONE <n>" on stdin
// (n = messages published), then prints one JSON line of figures once n msgs arrived (or 30 s after DONE).
// BENCH_RAW=1: the same over a bare WebSocket (auth, join, JSON.parse per frame) — the baseline the client's own
// cost is read against.
import { createInterface } from "node:readline";

import { Client } from "../clients/js/dist/conversme.js";

const { CONVERSME_WS: url, CONVERSME_TOKEN: token, CONVERSME_TOPIC: name } = process.env;
const MAX = 1_000_000;
const lags = new Float64Array(MAX);
const perSecond = new Map(); // whole second since the first msg → msgs received in it
let count = 0;
let gaps = 0;
let backwards = 0;
let lastOffset = -1;
let first = 0;
let last = 0;
let cpuStart = null;
let cpuEnd = null;
let expected = Infinity;
let finished = false;

const raw = process.env.BENCH_RAW === "1";

function onMsg(msg) {
  const now = performance.timeOrigin + performance.now();
  if (count === 0) {
    first = now;
    cpuStart = process.cpuUsage();
  }
  last = now;
  if (count < MAX) lags[count] = now - Date.parse(msg.ts);
  count++;
  if (lastOffset >= 0 && msg.offset !== lastOffset + 1) {
    if (msg.offset <= lastOffset) backwards++;
    else gaps++;
  }
  lastOffset = msg.offset;
  const second = Math.floor((now - first) / 1000);
  perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  if (count >= expected) report();
}

let client = null;
let socket = null;
if (raw) {
  socket = new WebSocket(url, "conversme.v1");
  await new Promise((resolve, reject) => {
    socket.onopen = () => socket.send(JSON.stringify({ op: "auth", ref: "1", token }));
    socket.onclose = (e) => reject(new Error(`closed ${e.code}`));
    socket.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.op === "msg") return onMsg(frame);
      if (frame.ref === "1") socket.send(JSON.stringify({ op: "join", ref: "2", topic: name }));
      if (frame.ref === "2") resolve();
    };
  });
} else {
  client = new Client({ url, getToken: async () => token, heartbeat: false });
  const topic = client.topic(name);
  topic.on("*", onMsg);
  await new Promise((resolve) => {
    client.on("status", (s) => s === "online" && resolve());
    client.connect();
  });
  await topic.join();
}
console.log("READY");

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
}

function report() {
  if (finished) return;
  finished = true;
  cpuEnd = process.cpuUsage(cpuStart ?? undefined);
  const sorted = Array.from(lags.subarray(0, Math.min(count, MAX))).sort((a, b) => a - b);
  const seconds = (last - first) / 1000;
  const full = [...perSecond.entries()].filter(([s]) => s < Math.floor(seconds)).map(([, n]) => n).sort((a, b) => a - b);
  const lastSecond = Array.from(lags.subarray(Math.max(0, Math.min(count, MAX) - 1000), Math.min(count, MAX)));
  const cpuMicros = cpuEnd.user + cpuEnd.system;
  console.log(JSON.stringify({
    expected, received: count, gaps, backwards,
    seconds: +seconds.toFixed(2),
    rate: seconds > 0 ? Math.round(count / seconds) : null,
    rate_min_1s: full[0] ?? null,
    rate_median_1s: pct(full, 50),
    lag_p50_ms: +pct(sorted, 50).toFixed(2),
    lag_p99_ms: +pct(sorted, 99).toFixed(2),
    lag_max_ms: +sorted.at(-1).toFixed(2),
    lag_p50_last_1000_ms: +lastSecond.sort((a, b) => a - b)[Math.floor(lastSecond.length / 2)].toFixed(2),
    cpu_us_per_msg: +(cpuMicros / Math.max(1, count)).toFixed(2),
    cpu_share: seconds > 0 ? +(cpuMicros / 1e6 / seconds).toFixed(3) : null,
  }));
  client?.disconnect();
  socket?.close();
  process.exit(0);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const [word, n] = line.trim().split(/\s+/);
  if (word !== "DONE") return;
  expected = Number(n);
  if (count >= expected) report();
  setTimeout(report, 30_000).unref(); // what did not arrive by then is counted as missing
});
