// Connection-storm client for bench/ws_storm.py and bench/ws_conn_profile.py. Reads one JSON job on stdin:
//   {"conns":[{"token","topic"}], "urls":[primary, fallback], "parallel":100, "lean":false}
// 1. Opens every connection to urls[0], `parallel` at a time: connect, `auth`, `join` (lean: connect only),
//    timing each from the socket's creation to the join reply; prints {"ready",...,"p50","p99"}.
// 2. Every socket that closes reconnects to urls[1] with the Python client's backoff (0.1 s × (0.5..1.5),
//    doubling up to 5 s) and joins again with `since` = the last offset it saw; prints {"resumed",...} once
//    all have been resumed.
// 3. On a line "wait-heads {heads, ms}": waits until every connection has seen its room's committed head.
// 4. On a line "stop": prints {"done",...} with every connection's topic, epoch and last offset, and the
//    gaps (offsets skipped), duplicates and resumes that did not recover.
import WebSocket from "ws";
import { performance } from "node:perf_hooks";
import readline from "node:readline";

const now = () => performance.timeOrigin + performance.now();
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const job = JSON.parse((await lines.next()).value);
const print = (obj) => new Promise((res) => process.stdout.write(JSON.stringify(obj) + "\n", res));

let gaps = 0, duplicates = 0, notRecovered = 0, errors = 0, reconnectAttempts = 0, resumedCount = 0, stopping = false;
const conns = job.conns.map((spec) => ({ spec, epoch: null, last: -1, joined: false, resumes: 0, ws: null,
  closedAt: null, resumedAt: null, backoff: 0.1 }));
let onAllResumed = null;

function attach(st, url, resume) {
  return new Promise((resolve, reject) => {
    const started = now();
    const ws = job.lean ? new WebSocket(url + "?room=" + encodeURIComponent(st.spec.topic), { perMessageDeflate: false })
      : new WebSocket(url, ["conversme.v1"], { perMessageDeflate: false });
    st.ws = ws;
    let settled = false;
    const done = (err) => { if (settled) return; settled = true; err ? reject(err) : resolve(now() - started); };
    ws.on("error", (e) => { errors++; done(e); });
    ws.on("open", () => {
      if (job.lean) { done(); return; }
      ws.send(JSON.stringify({ op: "auth", ref: "a", token: st.spec.token }));
    });
    ws.on("close", () => {
      done(new Error("closed before joining"));
      if (stopping || st.ws !== ws) return;
      if (st.closedAt === null) st.closedAt = now();
      st.resumedAt = null;
      setTimeout(() => reconnect(st), st.backoff * 1000 * (0.5 + Math.random()));
      st.backoff = Math.min(st.backoff * 2, 5);
    });
    ws.on("message", (raw) => {
      const f = JSON.parse(raw);
      if (f.op === "reply" && f.ref === "a") {
        if (!f.ok) { done(new Error(JSON.stringify(f))); return; }
        const join = { op: "join", ref: "j", topic: st.spec.topic };
        if (resume && st.epoch !== null) join.since = { epoch: st.epoch, offset: st.last };
        ws.send(JSON.stringify(join));
      } else if (f.op === "reply" && f.ref === "j") {
        if (!f.ok) { done(new Error(JSON.stringify(f))); return; }
        const d = f.data;
        if (resume && st.epoch !== null) {
          if (!d.recovered) { notRecovered++; st.epoch = d.epoch; st.last = d.offset; }
        } else { st.epoch = d.epoch; st.last = d.offset; }
        done();
      } else if (f.op === "msg") {
        if (st.epoch !== null && f.epoch !== st.epoch) { notRecovered++; st.epoch = f.epoch; st.last = f.offset; return; }
        if (f.offset <= st.last) duplicates++;
        else { if (f.offset > st.last + 1) gaps += f.offset - st.last - 1; st.last = f.offset; }
      }
    });
  });
}

async function reconnect(st) {
  if (stopping) return;
  reconnectAttempts++;
  try {
    await attach(st, job.urls[1], true);
  } catch {
    return;  // its close handler schedules the next attempt
  }
  st.backoff = 0.1;
  st.resumes++;
  st.resumedAt = now();
  if (st.resumes === 1) resumedCount++;
  if (resumedCount === conns.length && onAllResumed) onAllResumed();
}

const lat = [];
let failed = 0, next = 0;
const started = now();
async function worker() {
  while (next < conns.length) {
    const st = conns[next++];
    try { lat.push(await attach(st, job.urls[0], false)); } catch { failed++; }
  }
}
await Promise.all(Array.from({ length: job.parallel || 100 }, worker));
const seconds = (now() - started) / 1000;
lat.sort((a, b) => a - b);
const q = (xs, p) => xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : null;
await print({ ready: lat.length, failed, seconds, perSecond: lat.length / seconds, p50: q(lat, 0.5),
  p99: q(lat, 0.99), max: lat.length ? lat[lat.length - 1] : null });

const allResumed = new Promise((res) => { onAllResumed = res; });
for await (const line of lines) {
  const cmd = line.trim();
  if (cmd === "wait-resumed") {
    await allResumed;
    const closed = conns.map((s) => s.closedAt).filter((t) => t !== null).sort((a, b) => a - b);
    const resumed = conns.map((s) => s.resumedAt).sort((a, b) => a - b);
    await print({ resumed: resumedCount, firstClosedAt: closed[0], lastClosedAt: closed[closed.length - 1],
      resumedP50At: q(resumed, 0.5), resumedP99At: q(resumed, 0.99), lastResumedAt: resumed[resumed.length - 1],
      reconnectAttempts });
  } else if (cmd.startsWith("wait-heads ")) {
    // {"topic": head, ...} as committed; then "ms": every connection has seen its room's head, or the time ran
    // out and "behind" lists those still short (a fixed sleep counted frames in flight as missed).
    const { heads, ms } = JSON.parse(cmd.slice("wait-heads ".length));
    const deadline = now() + ms;
    const short = () => conns.filter((s) => s.last < (heads[s.spec.topic] ?? 0));
    while (short().length > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await print({ behind: short().map((s) => ({ topic: s.spec.topic, last: s.last, head: heads[s.spec.topic],
      resumes: s.resumes, open: s.ws?.readyState === WebSocket.OPEN })) });
  } else if (cmd === "stop") break;
}
stopping = true;
const summary = { done: true, gaps, duplicates, notRecovered, errors, reconnectAttempts,
  conns: conns.map((s) => ({ topic: s.spec.topic, epoch: s.epoch, last: s.last, resumes: s.resumes })) };
for (const s of conns) s.ws?.terminate();
await print(summary);
process.exit(0);
