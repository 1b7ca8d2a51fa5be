// The reactivity workloads of `node bench/run.mjs` (see README.md, "Reactivity"): two tabs of
// bench/reactivity.html on one database, in the browser session run.mjs launched.
//   latency: commit in one tab -> onRange callback in the other, >= 200 samples per direction;
//   cost:    1,000 one-row transactions awaited one by one, with 20 subscriptions open vs none.
// Numbers only: the checks (every row notified, with the right source; the subscriptions saw
// every commit) are reported as failures, like run.mjs's result checks.

export const LATENCY_TARGET_MS = 5;
const LAT_SAMPLES = 300;
const LAT_WARMUP = 20;
const LAT_GAP_MS = 8;
const PINGS = 200;
const COST_N = 1000;
const COST_REPS = 3;
const COST_BLOCK = 50;

const W = {
  commitP50: 'reactivity: cross-tab, commit (owner worker announces) -> onRange callback in other tab, median',
  commitP95: 'reactivity: cross-tab, commit (owner worker announces) -> onRange callback in other tab, p95',
  execP50: 'reactivity: cross-tab, exec() called in owner tab A -> onRange callback in tab B, median',
  execP95: 'reactivity: cross-tab, exec() called in owner tab A -> onRange callback in tab B, p95',
  followerP50: 'reactivity: cross-tab, exec() called in follower tab B -> onRange callback in owner tab A, median',
  followerP95: 'reactivity: cross-tab, exec() called in follower tab B -> onRange callback in owner tab A, p95',
  floor: 'reactivity: bare BroadcastChannel hop between the tabs (floor), median',
  costMixed: 'reactivity: 1,000 one-row transactions awaited one by one, 20 subscriptions open (incl. 5 liveQuery)',
  costPlain: 'reactivity: 1,000 one-row transactions awaited one by one, 20 subscriptions open (no liveQuery)',
};
export const REACTIVITY_WORKLOADS = Object.values(W);
const NO_SUBS = 'synqlite, no subscriptions';

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};
const median = (xs) => quantile(xs, 0.5);
const round = (x, d = 3) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);
const stats = (xs) => ({
  n: xs.length, median: round(median(xs)), p95: round(quantile(xs, 0.95)), min: round(Math.min(...xs)), max: round(Math.max(...xs)),
});

async function tab(context, url, log) {
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[rx page error] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning' || process.env.DEBUG) log(`[rx console.${m.type()}] ${m.text()}`);
  });
  await page.goto(`${url}/bench/reactivity.html`);
  await page.waitForFunction(() => window.rxReady === true, null, { timeout: 30_000 });
  return page;
}

/**
 * Runs the selected reactivity workloads. `selected(name)` filters by workload name; `reps`
 * overrides the cost repetitions (BENCH_REPS). Returns `{ entries, detail, failures }`, entries in
 * the latest.json shape plus run.mjs's display fields (`_min`, `_targetMs`).
 */
export async function runReactivity({ context, url, log, selected, reps }) {
  const entries = [];
  const failures = [];
  const detail = {};
  const want = (...names) => names.some((n) => selected(n));
  const a = await tab(context, url, log);
  const b = await tab(context, url, log);
  const call = (page, fn, ...args) => page.evaluate(([fn, args]) => window.rx[fn](...args), [fn, args]);
  try {
    await call(a, 'wipeOpfs');
    if (want(W.commitP50, W.commitP95, W.execP50, W.execP95, W.followerP50, W.followerP95, W.floor)) {
      const t0 = Date.now();
      const name = `rx-latency-${Date.now().toString(36)}`;
      // A opens first, so A's worker owns the database; B's worker forwards to it.
      detail.tabs = { a: await call(a, 'open', name), b: await call(b, 'open', name) };
      await call(a, 'exec', 'CREATE TABLE lat (id INTEGER PRIMARY KEY, v TEXT)');

      // Floor: a bare BroadcastChannel message between the two main threads, both directions.
      await call(a, 'pingListen');
      await call(b, 'pingListen');
      await call(a, 'pingSend', PINGS, 4);
      await call(b, 'pingSend', PINGS, 4);
      await new Promise((r) => setTimeout(r, 50));
      const aSeen = await call(a, 'pingCollect');
      const bSeen = await call(b, 'pingCollect');
      const ab = bSeen.map((p) => p.t - p.sent);
      const ba = aSeen.map((p) => p.t - p.sent);
      if (ab.length !== PINGS || ba.length !== PINGS) failures.push(`ping: lost messages (${ab.length}, ${ba.length} of ${PINGS})`);
      // If B's clock ran s ms ahead of A's, A->B would read d+s and B->A d-s.
      detail.ping = { aToB: stats(ab), bToA: stats(ba), clockOffsetEstimateMs: round((median(ab) - median(ba)) / 2, 4) };

      const measure = async (writer, reader, first) => {
        await call(reader, 'listen', 'lat');
        await call(writer, 'listen', 'lat');
        const writes = await call(writer, 'write', 'lat', first, LAT_WARMUP + LAT_SAMPLES, LAT_GAP_MS);
        await new Promise((r) => setTimeout(r, 100));
        const seen = new Map((await call(reader, 'collect')).map((s) => [s.id, s]));
        const local = new Map((await call(writer, 'collect')).map((s) => [s.id, s]));
        const rows = writes.slice(LAT_WARMUP).map((w) => ({ w, r: seen.get(w.id), l: local.get(w.id) }));
        const missing = rows.filter((x) => !x.r || !x.l);
        if (missing.length) failures.push(`latency: ${missing.length} writes never reached a callback (ids ${missing.slice(0, 5).map((x) => x.w.id)})`);
        const ok = rows.filter((x) => x.r && x.l);
        const badSource = ok.filter((x) => x.r.source !== 'tab' || x.l.source !== 'local');
        if (badSource.length) failures.push(`latency: ${badSource.length} callbacks with the wrong source`);
        const noStamp = ok.filter((x) => x.r.announcedAt == null);
        if (noStamp.length) failures.push(`latency: ${noStamp.length} announcements without a stamp`);
        return {
          execToCallback: ok.map((x) => x.r.t - x.w.t0),
          commitToCallback: ok.filter((x) => x.r.announcedAt != null).map((x) => x.r.t - x.r.announcedAt),
          execToCommit: ok.filter((x) => x.r.announcedAt != null).map((x) => x.r.announcedAt - x.w.t0),
          resolvedToCallback: ok.map((x) => x.r.t - x.w.t1),
          execRoundTrip: ok.map((x) => x.w.t1 - x.w.t0),
          sameTab: ok.map((x) => x.l.t - x.w.t0),
        };
      };
      const ownerWrites = await measure(a, b, 1);
      const followerWrites = await measure(b, a, 100_000);
      const summarize = (m) => Object.fromEntries(Object.entries(m).map(([k, xs]) => [k, stats(xs)]));
      detail.latency = { samples: LAT_SAMPLES, warmup: LAT_WARMUP, gapMs: LAT_GAP_MS, ownerWrites: summarize(ownerWrites), followerWrites: summarize(followerWrites) };
      detail.latencySamples = { ownerWrites, followerWrites };
      await call(b, 'close');
      await call(a, 'close');
      await call(a, 'wipeOpfs');

      const entry = (workload, xs, q, target) => ({
        workload, unit: 'ms', synqlite: round(quantile(xs, q)), anchor: null, anchor_value: null, ratio: null,
        _min: { synqlite: round(Math.min(...xs)) }, _reps: xs.length, ...(target && { _targetMs: target }),
      });
      const add = (e) => selected(e.workload) && entries.push(e);
      add(entry(W.commitP50, ownerWrites.commitToCallback, 0.5, LATENCY_TARGET_MS));
      add(entry(W.commitP95, ownerWrites.commitToCallback, 0.95));
      add(entry(W.execP50, ownerWrites.execToCallback, 0.5, LATENCY_TARGET_MS));
      add(entry(W.execP95, ownerWrites.execToCallback, 0.95));
      add(entry(W.followerP50, followerWrites.execToCallback, 0.5, LATENCY_TARGET_MS));
      add(entry(W.followerP95, followerWrites.execToCallback, 0.95));
      add(entry(W.floor, [...ab, ...ba], 0.5));
      log(`reactivity latency: commit->callback median ${detail.latency.ownerWrites.commitToCallback.median} ms, ` +
        `exec->callback median ${detail.latency.ownerWrites.execToCallback.median} ms ` +
        `(${LAT_SAMPLES} samples per direction, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }

    const costSelected = [W.costMixed, W.costPlain].filter(selected);
    if (costSelected.length) {
      const t0 = Date.now();
      const kinds = ['none', ...(selected(W.costMixed) ? ['mixed'] : []), ...(selected(W.costPlain) ? ['plain'] : [])];
      const runs = Object.fromEntries(kinds.map((k) => [k, []]));
      const n = reps ?? COST_REPS;
      const expected = {
        none: { rows: COST_N, any: 0, range: 0, point: 0, live: 0, liveCount: null },
        mixed: { rows: COST_N, any: 5 * COST_N, range: 3 * COST_N, point: 5, liveCount: COST_N },
        plain: { rows: COST_N, any: 7 * COST_N, range: 4 * COST_N, point: 6, live: 0, liveCount: null },
      };
      await call(a, 'cost', kinds, 100, COST_BLOCK); // warm-up
      for (let rep = 0; rep < n; rep++) {
        const r = await call(a, 'cost', kinds, COST_N, COST_BLOCK);
        for (const k of kinds) {
          runs[k].push(r[k]);
          const c = r[k].check;
          const bad = Object.entries(expected[k]).filter(([key, v]) => c[key] !== v);
          if (bad.length) failures.push(`cost ${k}: got ${JSON.stringify(c)}, expected ${JSON.stringify(expected[k])}`);
        }
      }
      const ms = (k) => runs[k].map((r) => r.ms);
      detail.cost = Object.fromEntries(kinds.map((k) => [k, {
        ms: stats(ms(k)),
        liveRerunsPerCommit: k === 'mixed' ? round(median(runs[k].map((r) => r.check.live / COST_N)), 2) : 0,
        checks: runs[k].map((r) => r.check),
      }]));
      detail.costMethod = { n: COST_N, block: COST_BLOCK, reps: n };
      const none = median(ms('none'));
      for (const [k, workload] of [['mixed', W.costMixed], ['plain', W.costPlain]]) {
        if (!runs[k]) continue;
        const v = median(ms(k));
        entries.push({
          workload, unit: 'ms', synqlite: round(v), anchor: NO_SUBS, anchor_value: round(none), ratio: round(v / none),
          _min: { synqlite: round(Math.min(...ms(k))), anchor: round(Math.min(...ms('none'))) }, _reps: n,
        });
      }
      log(`reactivity cost: none ${round(none)} ms` +
        kinds.filter((k) => k !== 'none').map((k) => `, ${k} ${round(median(ms(k)))} ms`).join('') +
        ` (${n} reps, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { entries, detail, failures };
}
