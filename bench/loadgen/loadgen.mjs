// Load generator for bench/ws_fanout.py. Reads a JSON job on stdin, prints JSON lines on stdout.
//   {"mode":"subscribe", "conns":[{"url","token","topic"}], "protocol":"conversme"|"lean", "expect": {...}}
//   {"mode":"idle", "conns":[...], "protocol":...}
// It prints {"ready":N} once every connection is set up, then waits for a line "stop" on stdin and prints
// {"done":..., stats} (a line "wait N MS" before it waits for every connection to have seen N messages).
import WebSocket from "ws";
import { performance } from "node:perf_hooks";
import readline from "node:readline";

const now = () => performance.timeOrigin + performance.now();
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const job = JSON.parse((await lines.next()).value);

const latencies = [];
let deliveries = 0, duplicates = 0, outOfOrder = 0, errors = 0;
const perConn = [];

function open(spec, i) {
  return new Promise((resolve, reject) => {
    const ws = job.protocol === "lean"
      ? new WebSocket(spec.url, { perMessageDeflate: false })
      : new WebSocket(spec.url, ["conversme.v1"], { perMessageDeflate: false });
    const st = { last: -1, first: -1, seen: 0, ready: false, ws };
    perConn[i] = st;
    ws.on("error", (e) => { errors++; if (!st.ready) reject(e); });
    ws.on("open", () => {
      if (job.protocol === "lean") { st.ready = true; resolve(); return; }
      ws.send(JSON.stringify({ op: "auth", ref: "a", token: spec.token }));
    });
    ws.on("message", (raw) => {
      const f = JSON.parse(raw);
      if (job.protocol !== "lean" && !st.ready) {
        if (f.op === "reply" && f.ref === "a") {
          if (!f.ok) { reject(new Error(JSON.stringify(f))); return; }
          if (!spec.topic) { st.ready = true; resolve(); return; }  // authenticated, no topic
          ws.send(JSON.stringify({ op: "join", ref: "j", topic: spec.topic }));
        } else if (f.op === "reply" && f.ref === "j") {
          if (!f.ok) { reject(new Error(JSON.stringify(f))); return; }
          st.ready = true; resolve();
        }
        return;
      }
      if (job.protocol !== "lean" && f.op !== "msg") return;
      const t = now();
      const d = f.data || {};
      const ts = d.ts ?? (typeof d.text === "string" ? Number(d.text.split("|")[0]) : undefined);
      const seq = job.protocol === "lean" ? d.seq : f.offset;
      deliveries++;
      st.seen++;
      if (seq <= st.last) { if (seq === st.last || seq < st.last) duplicates++; }
      else if (st.last >= 0 && seq !== st.last + 1) outOfOrder++;
      if (st.first < 0) st.first = seq;
      st.last = Math.max(st.last, seq);
      if (ts !== undefined && latencies.length < 5_000_000) latencies.push(t - ts);
    });
  });
}

// Open connections with bounded parallelism so the servers are not hit by thousands of handshakes at once.
const parallel = job.parallel || 50;
let next = 0;
async function worker() {
  while (next < job.conns.length) { const i = next++; await open(job.conns[i], i); }
}
const started = now();
await Promise.all(Array.from({ length: parallel }, worker));
console.log(JSON.stringify({ ready: job.conns.length, seconds: (now() - started) / 1000 }));

// "wait N MS": answers {"caughtUp":bool,"behind":K} once every connection has seen N messages, or after MS
// milliseconds with K of them still short, so a run is not cut off while the last frames are on their way.
for await (const line of lines) {
  const cmd = line.trim();
  if (cmd === "stop") break;
  if (cmd.startsWith("wait ")) {
    const [n, ms] = cmd.split(" ").slice(1).map(Number);
    const deadline = now() + ms;
    const behind = () => perConn.filter((s) => s.seen < n).length;
    while (behind() > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 20));
    console.log(JSON.stringify({ caughtUp: behind() === 0, behind: behind() }));
  }
}

latencies.sort((a, b) => a - b);
const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
const ranges = perConn.map((s) => ({ first: s.first, last: s.last, seen: s.seen }));
const summary = JSON.stringify({ done: true, deliveries, duplicates, outOfOrder, errors, p50: q(0.5), p99: q(0.99),
  max: latencies.length ? latencies[latencies.length - 1] : null, samples: latencies.length, ranges });
for (const s of perConn) s.ws.terminate();
// Exit only once the (long) line is flushed: process.exit() would cut a pipe write short.
process.stdout.write(summary + "\n", () => process.exit(0));
