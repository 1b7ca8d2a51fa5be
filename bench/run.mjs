#!/usr/bin/env node
// The benchmark command: `node bench/run.mjs` (or `npm run bench`).
//
// Runs the same workloads on synqlite and on the anchor, @sqlite.org/sqlite-wasm on its
// opfs-sahpool VFS, in one headless Chromium session, two ways:
//   engine: inside a dedicated worker, timing each library's in-worker API directly
//           (synqlite's wasm `Database`; sqlite-wasm's oo1 API with prepared statements);
//   app:    from the main thread through each library's main-thread API
//           (synqlite's `openDatabase` client; sqlite-wasm's Worker1 promiser).
// Then synqlite's reactivity (no anchor library; reactivity-run.mjs): cross-tab notification
// latency in two tabs, and the cost of subscriptions for a loop of one-row transactions.
// Then the CRDT workloads against @vlcn.io/crsqlite-wasm on IndexedDB (crdt-run.mjs).
// Repetitions alternate the order of the libraries; every repetition uses a fresh database file.
// Prints medians, minimums and ratios (synqlite / anchor, lower is better) beside the targets, and
// writes bench/results/latest.json (flat array; see README.md) and latest-detail.json (all samples),
// keeping the server load rows that bench/server.mjs wrote there.
// Numbers only: nothing is asserted except that both libraries computed the same results.
//
// Env: BENCH_REPS=n overrides every repetition count; BENCH_ONLY=regex selects workloads by name;
// either one makes it write results/partial*.json instead of latest*.json. SYNQLITE_BROWSER=firefox
// runs it all in Firefox ESR instead (same anchors) and writes results/latest-firefox*.json
// (partial-firefox*.json); `npm run bench` runs both browsers.
import { readFile, writeFile, mkdir, access } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { resolve, join } from 'node:path';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { startServer, launch, ENGINE as BROWSER } from '../tests/e2e/harness.mjs';
import { expect as expected, makeIds } from './common.mjs';
import { runReactivity, REACTIVITY_WORKLOADS } from './reactivity-run.mjs';
import { runCrdt, CRDT_WORKLOADS } from './crdt-run.mjs';
import { runSync, SYNC_WORKLOADS } from './sync-run.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const RESULTS = join(ROOT, 'bench', 'results');
const ANCHOR_PKG = join(ROOT, 'node_modules', '@sqlite.org', 'sqlite-wasm');

const N10K = 10_000;
const ROWS_GROUP = 100_000;
const ENGINE_TARGET = 1.1;
const WASM_GZIP_TARGET = 600 * 1024;

const ENGINE = [
  { op: 'open', name: 'engine: open to first query (wasm init + open + SELECT 1)', reps: 9, args: {} },
  { op: 'insertTx', name: 'engine: insert 10k rows in 1 tx', reps: 9, args: { n: N10K } },
  { op: 'insertAutocommit', name: 'engine: 500 autocommit inserts', reps: 5, args: { n: 500 } },
  { op: 'pointReads', name: 'engine: 10k point reads by pk', reps: 9, args: { n: N10K, rows: N10K } },
  { op: 'groupBy', name: 'engine: GROUP BY over 100k rows (100 groups)', reps: 9, args: { rows: ROWS_GROUP } },
];
const APP = [
  { op: 'open', name: 'app: open to first query (incl. worker start)', reps: 9, args: {} },
  { op: 'insertTx', name: 'app: insert 10k rows in 1 tx (await each row)', reps: 5, args: { n: N10K } },
  { op: 'insertBatch', name: 'app: insert 10k rows in 1 tx (one batch call; anchor: pipelined)', reps: 5, args: { n: N10K } },
  { op: 'insertAutocommit', name: 'app: 500 autocommit inserts', reps: 5, args: { n: 500 } },
  { op: 'pointReads', name: 'app: 10k point reads by pk', reps: 5, args: { n: N10K, rows: N10K } },
  { op: 'groupBy', name: 'app: GROUP BY over 100k rows (100 groups)', reps: 7, args: { rows: ROWS_GROUP } },
];

const LIBS = ['synqlite', 'anchor'];
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : null;
const repsOverride = process.env.BENCH_REPS ? Number(process.env.BENCH_REPS) : null;
const selected = (w) => !only || only.test(w.name);

const log = (...a) => console.error(...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 3) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---- sizes ------------------------------------------------------------------------------------
function gzipSize(file) {
  try {
    return execFileSync('gzip', ['-9c', file], { maxBuffer: 64 << 20 }).length;
  } catch {
    return gzipSync(readFileSync(file), { level: 9 }).length;
  }
}

function sizes() {
  const dist = join(ROOT, 'pkg', 'dist');
  const synqWasm = join(ROOT, 'pkg', 'wasm', 'synqlite_bg.wasm');
  // The JS snippets wasm-bindgen emits beside the module (pkg/wasm/snippets/<crate>/src/*.js).
  const snippets = readdirSync(join(ROOT, 'pkg', 'wasm', 'snippets'), { recursive: true })
    .filter((f) => f.endsWith('.js')).sort().map((f) => join(ROOT, 'pkg', 'wasm', 'snippets', f));
  const synqJs = [join(ROOT, 'pkg', 'wasm', 'synqlite.js'), ...snippets,
    ...readdirSync(dist).filter((f) => f.endsWith('.js')).sort().map((f) => join(dist, f))];
  const anchorWasm = join(ANCHOR_PKG, 'dist', 'sqlite3.wasm');
  // The anchor's JS an opfs-sahpool app loads: the ESM bundle (it also contains the promiser).
  const anchorJs = [join(ANCHOR_PKG, 'dist', 'index.mjs')];
  const sum = (files) => files.reduce((a, f) => a + gzipSize(f), 0);
  const files = (fs) => fs.map((f) => ({ file: f.slice(ROOT.length + 1), bytes: statSync(f).size, gzip: gzipSize(f) }));
  return {
    wasm: { synqlite: gzipSize(synqWasm), anchor: gzipSize(anchorWasm) },
    total: { synqlite: gzipSize(synqWasm) + sum(synqJs), anchor: gzipSize(anchorWasm) + sum(anchorJs) },
    files: { synqlite: files([synqWasm, ...synqJs]), anchor: files([anchorWasm, ...anchorJs]) },
  };
}

// ---- result checks ------------------------------------------------------------------------------
function expectedCheck(op, args) {
  switch (op) {
    case 'open': return [1];
    case 'insertTx': case 'insertBatch': case 'insertAutocommit': {
      const e = expected.rows(args.n);
      return [e.n, e.total];
    }
    case 'pointReads': return expected.pointReads(makeIds(args.n, args.rows));
    case 'groupBy': return [100, args.rows];
    default: return undefined;
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---- run ----------------------------------------------------------------------------------------
async function main() {
  for (const f of ['pkg/wasm/synqlite.js', 'pkg/wasm/synqlite_bg.wasm', 'pkg/dist/index.js', 'pkg/dist/worker.js',
    'node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs']) {
    try {
      await access(join(ROOT, f));
    } catch {
      log(`bench: missing ${f}: run scripts/build (and npm install) first`);
      process.exit(2);
    }
  }
  const anchorVersion = JSON.parse(await readFile(join(ANCHOR_PKG, 'package.json'), 'utf8')).version;
  const anchorName = `sqlite-wasm ${anchorVersion.replace(/-build\d+$/, '')} opfs-sahpool`;
  const started = Date.now();

  // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs; both
  // libraries run under the same headers.
  const server = await startServer({
    root: ROOT,
    headers: { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
  });
  const browser = await launch();
  const browserVersion = browser.version;
  log(`bench: ${browserVersion}`);
  const samples = []; // { workload, lib, ms, check }
  const failures = [];
  let env;
  const results = [];
  try {
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => log(`[page error] ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning' || process.env.DEBUG) log(`[console.${m.type()}] ${m.text()}`);
    });
    await page.goto(`${server.url}/bench/page.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
    const call = (fn, ...args) => page.evaluate(([fn, args]) => window.bench[fn](...args), [fn, args]);
    await call('wipeOpfs');
    env = { page: await call('info') };
    if (!env.page.crossOriginIsolated) log('bench: warning: page is not cross-origin isolated (timer resolution 100 µs)');

    const runWorkload = async (w, kind, runOne) => {
      const reps = repsOverride ?? w.reps;
      const ms = { synqlite: [], anchor: [] };
      const checks = { synqlite: [], anchor: [] };
      const t0 = Date.now();
      for (let rep = -1; rep < reps; rep++) {
        // rep -1 is an unmeasured warm-up (page and worker JIT, HTTP, OPFS); then alternate order.
        const order = rep % 2 === 0 ? LIBS : [...LIBS].reverse();
        for (const lib of order) {
          const r = await runOne(lib);
          if (rep < 0) continue;
          ms[lib].push(r.ms);
          checks[lib].push(r.check);
          samples.push({ workload: w.name, lib, rep, ms: r.ms, check: r.check, ...(r.phases && { phases: r.phases }) });
        }
      }
      const want = expectedCheck(w.op, w.args);
      for (const lib of LIBS) {
        const bad = checks[lib].find((c) => !same(c, want));
        if (bad !== undefined) failures.push(`${w.name}: ${lib} returned ${JSON.stringify(bad)}, expected ${JSON.stringify(want)}`);
      }
      const entry = {
        workload: w.name,
        unit: 'ms',
        synqlite: round(median(ms.synqlite)),
        anchor: anchorName,
        anchor_value: round(median(ms.anchor)),
        ratio: round(median(ms.synqlite) / median(ms.anchor)),
        _min: { synqlite: round(Math.min(...ms.synqlite)), anchor: round(Math.min(...ms.anchor)) },
        _reps: reps,
        _target: kind === 'engine' ? ENGINE_TARGET : null,
      };
      results.push(entry);
      log(`${w.name}: synqlite ${entry.synqlite} ms, anchor ${entry.anchor_value} ms, ratio ${entry.ratio}` +
        ` (${reps} reps, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    };

    // Engine, cold start: a fresh worker per repetition.
    for (const w of ENGINE.filter((w) => w.op === 'open' && selected(w))) {
      await runWorkload(w, 'engine', (lib) => call('engineOpen', lib));
    }
    // Engine, the rest: one long-lived worker per library.
    const engineRest = ENGINE.filter((w) => w.op !== 'open' && selected(w));
    if (engineRest.length) {
      env.engine = {};
      for (const lib of LIBS) env.engine[lib] = await call('engineStart', lib);
      for (const w of engineRest) await runWorkload(w, 'engine', (lib) => call('engineRun', lib, w.op, w.args));
      for (const lib of LIBS) await call('engineStop', lib);
    }
    await call('wipeOpfs');
    // App: each repetition opens (and closes) its own database, and so its own worker.
    for (const w of APP.filter(selected)) await runWorkload(w, 'app', (lib) => call('app', lib, w.op, w.args));
    const left = await call('opfsEntries');
    if (left.length) log(`bench: warning: OPFS not empty at the end: ${left.join(', ')}`);
    // Reactivity: two more tabs on one database.
    if (REACTIVITY_WORKLOADS.some((n) => selected({ name: n }))) {
      const rx = await runReactivity({
        context: browser.context, url: server.url, log, reps: repsOverride, selected: (n) => selected({ name: n }),
      });
      results.push(...rx.entries);
      env.reactivity = rx.detail;
      failures.push(...rx.failures);
    }
    // CRDT (crdt-run.mjs): synqlite against crsqlite-wasm in one more tab.
    if (CRDT_WORKLOADS.some((n) => selected({ name: n }))) {
      const cr = await runCrdt({
        context: browser.context, url: server.url, log, reps: repsOverride, selected: (n) => selected({ name: n }),
      });
      results.push(...cr.entries);
      env.crdt = cr.detail;
      failures.push(...cr.failures);
    }
    // Sync (sync-run.mjs): the real server on loopback, one more tab.
    if (SYNC_WORKLOADS.some((n) => selected({ name: n }))) {
      const sy = await runSync({
        context: browser.context, url: server.url, log, reps: repsOverride, selected: (n) => selected({ name: n }),
      });
      results.push(...sy.entries);
      env.sync = sy.detail;
      failures.push(...sy.failures);
    }
  } finally {
    await browser.close();
    await server.close();
  }

  // Sizes.
  const sz = sizes();
  const sizeEntries = [
    { workload: 'size: wasm (gzip -9)', unit: 'bytes', synqlite: sz.wasm.synqlite, anchor: anchorName,
      anchor_value: sz.wasm.anchor, ratio: round(sz.wasm.synqlite / sz.wasm.anchor), _target: `< ${WASM_GZIP_TARGET} B (600 KiB)`,
      _ok: sz.wasm.synqlite < WASM_GZIP_TARGET },
    { workload: 'size: wasm + JS shipped (gzip -9, per file)', unit: 'bytes', synqlite: sz.total.synqlite, anchor: anchorName,
      anchor_value: sz.total.anchor, ratio: round(sz.total.synqlite / sz.total.anchor), _target: null },
  ];
  const all = [...results, ...sizeEntries];

  // Table.
  const fmt = (v, unit) => (v == null ? '-' : unit === 'bytes' ? `${(v / 1024).toFixed(1)} KiB`
    : unit === 'x' ? `${v.toFixed(2)}x` : unit === 'ms' ? `${v.toFixed(2)} ms` : `${v.toFixed(2)} ${unit}`);
  const rows = all.map((e) => {
    let target = '';
    let ok = '';
    if (e.unit === 'ms' && e._target) { target = `<= ${e._target}x`; ok = e.ratio <= e._target ? 'ok' : 'MISS'; }
    if (e.unit === 'ms' && e._targetMs) { target = `< ${e._targetMs} ms`; ok = e.synqlite < e._targetMs ? 'ok' : 'MISS'; }
    if (e.unit === 'bytes' && e._target) { target = '< 600 KiB'; ok = e._ok ? 'ok' : 'MISS'; }
    if (e._targetText) { target = e._targetText; ok = e._ok ? 'ok' : 'MISS'; }
    return [
      e.workload,
      fmt(e.synqlite, e.unit) + (e._min?.synqlite != null ? ` (min ${e._min.synqlite.toFixed(2)})` : ''),
      fmt(e.anchor_value, e.unit) + (e._min?.anchor != null ? ` (min ${e._min.anchor.toFixed(2)})` : ''),
      e.ratio == null ? '-' : `${e.ratio.toFixed(2)}x`,
      target,
      ok,
    ];
  });
  const head = ['workload', 'synqlite median', `anchor median (${anchorName}${env?.crdt ? `; crdt: ${env.crdt.anchor}` : ''}; reactivity cost: no subscriptions)`, 'ratio', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log('');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  console.log('');
  console.log(`ratio = synqlite / anchor (lower is better); medians, min in parentheses; ` +
    `timer step ${round(env?.page?.timerStepMs * 1000, 1)} µs, crossOriginIsolated=${env?.page?.crossOriginIsolated}; ` +
    `total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const rx = env?.reactivity;
  if (rx?.latency) {
    const o = rx.latency.ownerWrites;
    const f = rx.latency.followerWrites;
    console.log(`reactivity latency (ms, median / p95 of ${rx.latency.samples} per direction; clocks: timeOrigin + now() in every ` +
      `tab and worker, estimated tab clock offset ${rx.ping.clockOffsetEstimateMs} ms):`);
    const q = (s) => `${s.median} / ${s.p95}`;
    console.log(`  owner tab A writes: exec() -> commit announced ${q(o.execToCommit)}, commit -> callback in B ${q(o.commitToCallback)}, ` +
      `exec() -> callback in B ${q(o.execToCallback)}, exec() -> callback in A ${q(o.sameTab)}, exec() round trip ${q(o.execRoundTrip)}, ` +
      `exec() resolved -> callback in B ${q(o.resolvedToCallback)}`);
    console.log(`  follower tab B writes: exec() -> commit announced ${q(f.execToCommit)}, commit -> callback in A ${q(f.commitToCallback)}, ` +
      `exec() -> callback in A ${q(f.execToCallback)}, exec() round trip ${q(f.execRoundTrip)}`);
    console.log(`  bare BroadcastChannel hop: A->B ${q(rx.ping.aToB)}, B->A ${q(rx.ping.bToA)}`);
  }
  if (rx?.cost) {
    console.log(`reactivity cost (1,000 awaited one-row transactions, ms, median): ` +
      Object.entries(rx.cost).map(([k, c]) => `${k} ${c.ms.median}` + (k === 'mixed' ? ` (${c.liveRerunsPerCommit} live-query re-runs per commit)` : '')).join(', ') +
      `; the kinds take turns in blocks of ${rx.costMethod.block}`);
  }
  const cr = env?.crdt;
  if (cr) {
    const en = cr.engines;
    console.log(`crdt rows: anchor = ${cr.anchor} (${en.anchor.storage}, sqlite ${en.anchor.sqlite}, ${en.anchor.tuning}), ` +
      `synqlite on ${en.synqlite.storage} (sqlite ${en.synqlite.sqlite}); in-worker APIs, timed until the call resolved; ` +
      `ratio < 1: synqlite faster`);
    if (cr.insertSettledMs) {
      const s = cr.insertSettledMs;
      const d = cr.anchorDefaultTempStore;
      console.log(`  anchor's IndexedDB write-back: its COMMIT resolves before the queued writes are done; until a read returns, ` +
        `10k-row insert: plain ${round(s.anchor.plain, 1)} ms, replicated ${round(s.anchor.crr, 1)} ms ` +
        `(synqlite ${round(s.synqlite.plain, 1)} / ${round(s.synqlite.crr, 1)}); ` +
        `with SQLite's default temp_store a ${d.rows}-row replicated insert returns after ${round(d.ms, 1)} ms ` +
        `but settles after ${round(d.settledMs, 1)} ms (${d.puts} IndexedDB puts)`);
    }
    const settled = all.filter((e) => e._settled);
    if (settled.length) {
      console.log(`  merges until a read returns: ` + settled.map((e) => `${e.workload.replace(/^.*fresh db, /, '')}: ` +
        `synqlite ${round(e._settled.synqlite, 1)} ms, anchor ${round(e._settled.anchor, 1)} ms`).join('; '));
    }
    if (cr.mergeInput) {
      console.log(`  merge input: ${cr.mergeInput.changeRows} change rows generated once by synqlite (${JSON.stringify(cr.mergeInput.cids)})`);
    }
    if (cr.sinceSetupMs) {
      console.log(`  changes-since setup (100k rows in 1,000 txs, not timed): synqlite ${round(cr.sinceSetupMs.synqlite, 0)} ms, ` +
        `anchor ${round(cr.sinceSetupMs.anchor, 0)} ms`);
    }
  }
  const sy = env?.sync;
  if (sy?.initial) {
    const i = sy.initial;
    console.log(`sync: anchor = ${sy.anchor} (the same ${i.changeRows} change rows, in its worker); synqlite: ` +
      `${i.rowsPerSecond} rows/s (${i.changeRowsPerSecond} change rows/s) end to end, progress events per run ` +
      `${i.progressEvents.join('/')}, peak worker wasm memory ${(i.peakWasmMemoryBytes / 2 ** 20).toFixed(1)} MiB; ` +
      `anchor writes settled after ${i.anchorSettledMs.join('/')} ms`);
  }
  if (sy?.latency) console.log(`sync latency A -> server -> B: p95 ${sy.latency.p95} ms over ${sy.latency.samples} writes`);
  if (env?.engine) {
    for (const lib of LIBS) {
      const e = env.engine[lib];
      console.log(`${lib === 'anchor' ? anchorName : 'synqlite'}: sqlite ${e.sqlite}, journal_mode=${e.journal_mode}, ` +
        `synchronous=${e.synchronous}, page_size=${e.page_size}, cache_size=${e.cache_size}, locking_mode=${e.locking_mode}`);
    }
    const opts = (lib) => new Set(env.engine[lib].compile_options ?? []);
    const [a, b] = [opts('synqlite'), opts('anchor')];
    console.log(`compile options only in synqlite: ${[...a].filter((o) => !b.has(o)).join(' ') || '-'}`);
    console.log(`compile options only in anchor:   ${[...b].filter((o) => !a.has(o)).join(' ') || '-'}`);
  }

  // Files.
  // A filtered or shortened run must not replace the full results.
  const suffix = BROWSER === 'chromium' ? '' : `-${BROWSER}`;
  const stem = `${only || repsOverride ? 'partial' : 'latest'}${suffix}`;
  await mkdir(RESULTS, { recursive: true });
  const flat = all.map(({ workload, unit, synqlite, anchor, anchor_value, ratio }) => ({ workload, unit, synqlite, anchor, anchor_value, ratio }));
  // The server load rows come from bench/server.mjs (`npm run bench:server`): kept as they are.
  const previous = async (f) => JSON.parse(await readFile(join(RESULTS, f), 'utf8').catch(() => 'null'));
  const serverRows = ((await previous(`${stem}.json`)) ?? []).filter((r) => r.workload?.startsWith('server: '));
  // The scale rows come from `BENCH_ONLY=scale` runs: a run without them keeps the previous ones,
  // and a scale run also puts its rows into latest.json (they are never part of a plain run).
  const isScale = (r) => r.workload?.startsWith('scale: ');
  const scaleRows = flat.filter(isScale);
  if (scaleRows.length === 0) flat.push(...((await previous(`${stem}.json`)) ?? []).filter(isScale));
  else if (stem.startsWith('partial')) {
    const latest = (await previous(`latest${suffix}.json`)) ?? [];
    const server = latest.filter((r) => r.workload?.startsWith('server: '));
    const rest = latest.filter((r) => !isScale(r) && !r.workload?.startsWith('server: '));
    await writeFile(join(RESULTS, `latest${suffix}.json`), JSON.stringify([...rest, ...scaleRows, ...server], null, 2) + '\n');
    console.log(`bench: the scale rows also went into bench/results/latest${suffix}.json`);
  }
  const serverEnv = (await previous(`${stem}-detail.json`))?.env?.server;
  await writeFile(join(RESULTS, `${stem}.json`), JSON.stringify([...flat, ...serverRows], null, 2) + '\n');
  await writeFile(join(RESULTS, `${stem}-detail.json`), JSON.stringify({
    date: new Date().toISOString(), browser: browserVersion, anchor: anchorName, env: { ...env, ...(serverEnv ? { server: serverEnv } : {}) },
    results: [...all, ...serverRows], sizes: sz, samples, failures,
  }, null, 2) + '\n');
  console.log(`wrote bench/results/${stem}.json and ${stem}-detail.json`);

  if (failures.length) {
    console.error('\nbench: RESULT MISMATCH (the numbers above are not comparable):');
    for (const f of failures) console.error(`  ${f}`);
    process.exitCode = 1;
  }
}

// A stuck run ends instead of hanging; on a busy shared machine a full run can pass 15 minutes
// (it did on 2026-12-07, while building the sync server), so the limit is 40 by default.
const LIMIT_MIN = Number(process.env.BENCH_TIMEOUT_MIN ?? 40);
const watchdog = setTimeout(() => {
  log(`bench: gave up after ${LIMIT_MIN} minutes (BENCH_TIMEOUT_MIN)`);
  process.exit(3);
}, LIMIT_MIN * 60_000);
watchdog.unref();

main().catch((e) => {
  log(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
