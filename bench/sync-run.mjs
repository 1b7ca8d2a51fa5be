// The sync workloads of `node bench/run.mjs` (see README.md, "Sync"), against the real server
// (target/server/synqlite-server: profile "server", built first) on loopback:
//   initial: a fresh OPFS database syncs a room of 50k rows x 5 columns (250k change rows) with
//            db.sync(): time to 'up-to-date', rows/s, progress events, peak wasm memory of the
//            worker; anchor: crsqlite-wasm 0.16 merging the same change rows in one transaction
//            (in its worker, IndexedDB), the seeds' baseline;
//   latency: two databases in sync with one room: exec() in A -> change listener in B, median.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { ensureCrsqliteBundle, crsqliteVersion } from './crsqlite-bundle.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const ROWS = 50_000;
const REPS = 3;
const LATENCY_SAMPLES = 50;
const TARGET = 1 / 5; // >= 5x faster than the anchor
// The crdt bench's 5-column table, so the anchor merges rows of the shape it is tuned for.
const SCHEMA = `CREATE TABLE IF NOT EXISTS m (id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER, c REAL, d TEXT, e BLOB);
SELECT crsql_as_crr('m');
`;
const W = {
  initial: 'sync: initial sync of 50k rows x 5 cols (250k change rows) from the server into a fresh OPFS db, db.sync() to up-to-date',
  latency: 'sync: exec() in client A -> change listener in client B through the server (median of 50)',
  live: 'sync: the same initial sync with 20 live queries open on the synced table / without (factor)',
  longTask: 'sync: longest main-thread task during that sync with 20 live queries',
};
// The scale workload (only with BENCH_ONLY matching "scale": about a minute of syncing).
const SCALE_ROWS = 1_000_000;
const SCALE = 'scale: initial sync of 1M rows x 5 cols (5M change rows) into a fresh OPFS db, a second client joining halfway';
const S = {
  ms: `${SCALE}: first client, db.sync() to up-to-date`,
  rate: `${SCALE}: first client, rows/s`,
  wasm: `${SCALE}: first client, peak worker wasm memory`,
  heap: `${SCALE}: peak main-thread JS heap (both clients' tab)`,
  events: `${SCALE}: first client, progress events`,
  second: `${SCALE}: second client, join to up-to-date`,
  secondFirst: `${SCALE}: second client, join to its first applied chunk`,
  rss: `${SCALE}: server RSS peak while serving`,
  cpu: `${SCALE}: server CPU while serving`,
};
export const SYNC_WORKLOADS = [...Object.values(W), ...Object.values(S)];
/** Whether `BENCH_ONLY` asks for the scale workload (matches "scale"); a plain `npm run bench` skips it. */
const scaleAsked = () => Boolean(process.env.BENCH_ONLY) && new RegExp(process.env.BENCH_ONLY, 'i').test('scale');

/** `/proc` figures of a process: CPU seconds so far (user + system) and peak RSS in bytes. */
async function procStats(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  return { cpuSeconds: ticks / 100, peakRssBytes: hwm };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function startServer(log) {
  const bin = join(ROOT, 'target/server/synqlite-server');
  // Up to date with the sources (a no-op when it is).
  if (!existsSync(bin)) log('sync: building target/server/synqlite-server (profile server)');
  execFileSync('cargo', ['build', '--profile', 'server', '-q', '-p', 'synqlite-server'], { cwd: ROOT, stdio: 'inherit' });
  const dir = await mkdtemp(join(tmpdir(), 'synqlite-bench-sync-'));
  await mkdir(join(dir, 'schema'));
  await writeFile(join(dir, 'schema', '1700000000_m.sql'), SCHEMA);
  const port = await freePort();
  const child = spawn(bin, ['--data', join(dir, 'data'), '--schema', join(dir, 'schema'), '--listen', `127.0.0.1:${port}`, '--dev'], {
    stdio: 'ignore',
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  const http = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${http}/healthz`)).ok) break;
    } catch {
      // starting
    }
    if (i > 300) throw new Error('the sync server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `ws://127.0.0.1:${port}/sync`,
    http,
    migrations: [{ name: '1700000000_m.sql', sql: SCHEMA }],
    pid: child.pid,
    async close() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the selected sync workloads in a new tab of `context`; returns `{ entries, detail, failures }`. */
export async function runSync({ context, url, log, selected, reps: repsOverride }) {
  const entries = [];
  const failures = [];
  const version = await ensureCrsqliteBundle();
  const anchorName = `crsqlite-wasm ${version ?? (await crsqliteVersion())} IndexedDB, merge in 1 tx`;
  const detail = { anchor: anchorName };
  const server = await startServer(log);
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[sync page error] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || process.env.DEBUG) log(`[sync console.${m.type()}] ${m.text()}`);
  });
  try {
    await page.goto(`${url}/bench/sync.html`);
    await page.waitForFunction(() => window.syncReady === true, null, { timeout: 30_000 });
    const call = (fn, ...args) => page.evaluate(([fn, args]) => window.syncBench[fn](...args), [fn, args]);

    if (selected(W.initial)) {
      const seeded = await (await fetch(`${server.http}/rooms/bench/seed?rows=${ROWS}&table=m`, { method: 'POST' })).json();
      // BENCH_SYNC_CHUNK=n tries another chunk size (default: the library's, 4096).
      const chunkSize = Number(process.env.BENCH_SYNC_CHUNK) || undefined;
      const args = { url: server.url, room: 'bench', migrations: server.migrations, table: 'm', chunkSize };
      const reps = repsOverride ?? REPS;
      const runs = [];
      await call('initialSync', args); // warm-up
      for (let i = 0; i < reps; i++) runs.push(await call('initialSync', args));
      for (const r of runs) {
        if (r.rows !== ROWS || r.changeRows !== seeded.changes) {
          failures.push(`${W.initial}: synced ${r.rows} rows / ${r.changeRows} change rows, expected ${ROWS} / ${seeded.changes}`);
        }
      }
      const prep = await call('prepareAnchor');
      await call('anchorMerge', { limit: Math.round(prep.changeRows / 10) }); // warm-up
      const anchorRuns = [];
      for (let i = 0; i < Math.min(reps, 2); i++) anchorRuns.push(await call('anchorMerge'));
      const ms = runs.map((r) => r.ms);
      const ams = anchorRuns.map((r) => r.ms);
      const e = {
        workload: W.initial,
        unit: 'ms',
        synqlite: round(median(ms)),
        anchor: anchorName,
        anchor_value: round(median(ams)),
        ratio: round(median(ms) / median(ams)),
        _min: { synqlite: round(Math.min(...ms)), anchor: round(Math.min(...ams)) },
        _reps: reps,
        _targetText: '>= 5x faster',
        _ok: median(ms) / median(ams) <= TARGET,
      };
      entries.push(e);
      detail.initial = {
        changeRows: seeded.changes,
        rowsPerSecond: round(ROWS / (median(ms) / 1000), 0),
        changeRowsPerSecond: round(seeded.changes / (median(ms) / 1000), 0),
        progressEvents: runs.map((r) => r.progressEvents),
        peakWasmMemoryBytes: Math.max(...runs.map((r) => r.wasmMemoryBytes)),
        anchorSettledMs: anchorRuns.map((r) => round(r.settledMs, 1)),
      };
      log(`${W.initial}: synqlite ${e.synqlite} ms, anchor ${e.anchor_value} ms, ratio ${e.ratio}; ` +
        `${detail.initial.rowsPerSecond} rows/s, progress events ${detail.initial.progressEvents.join('/')}, ` +
        `peak wasm memory ${(detail.initial.peakWasmMemoryBytes / 2 ** 20).toFixed(1)} MiB`);
    }

    if (selected(W.live) || selected(W.longTask)) {
      const seeded = await (await fetch(`${server.http}/rooms/live/seed?rows=${ROWS}&table=m`, { method: 'POST' })).json();
      const args = { url: server.url, room: 'live', migrations: server.migrations, table: 'm' };
      const reps = repsOverride ?? REPS;
      await call('initialSync', { ...args, live: 20 }); // warm-up
      const none = [];
      const live = [];
      for (let i = 0; i < reps; i++) {
        // Alternate the order: neither kind always runs on a warmer machine.
        const pair = i % 2 ? [20, 0] : [0, 20];
        for (const n of pair) (n ? live : none).push(await call('initialSync', { ...args, live: n }));
      }
      for (const r of [...none, ...live]) {
        if (r.rows !== ROWS || r.changeRows !== seeded.changes) failures.push(`${W.live}: synced ${r.rows} rows / ${r.changeRows} change rows`);
      }
      const factor = median(live.map((r) => r.ms)) / median(none.map((r) => r.ms));
      entries.push({
        workload: W.live, unit: 'x', synqlite: round(factor), anchor: null, anchor_value: null, ratio: null,
        _reps: reps, _targetText: '<= 1.2x', _ok: factor <= 1.2,
      });
      const longest = live.map((r) => r.longTasks?.longestMs ?? null);
      if (longest.every((v) => v !== null)) {
        const worst = Math.max(...longest);
        entries.push({
          workload: W.longTask, unit: 'ms', synqlite: round(worst), anchor: null, anchor_value: null, ratio: null,
          _reps: reps, _targetMs: 50,
        });
      }
      detail.live = {
        msNone: none.map((r) => round(r.ms)), msLive: live.map((r) => round(r.ms)),
        liveRuns: live.map((r) => r.liveRuns), longTasks: live.map((r) => r.longTasks),
      };
      log(`${W.live}: ${round(factor)}x (${detail.live.msLive.join('/')} vs ${detail.live.msNone.join('/')} ms), ` +
        `live-query runs ${detail.live.liveRuns.join('/')}, main-thread long tasks ${JSON.stringify(detail.live.longTasks)}`);
    }

    if (scaleAsked()) {
      const t = Date.now();
      const seeded = await (await fetch(`${server.http}/rooms/scale/seed?rows=${SCALE_ROWS}&table=m`, { method: 'POST' })).json();
      log(`${SCALE}: seeded ${seeded.rows} rows (${seeded.changes} change rows) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      // Serving only: forget the seeding's peak RSS (Linux: 5 > clear_refs resets VmHWM).
      await writeFile(`/proc/${server.pid}/clear_refs`, '5');
      const before = await procStats(server.pid);
      const r = await call('scaleSync', { url: server.url, room: 'scale', migrations: server.migrations, table: 'm', secondAt: 0.5 });
      const after = await procStats(server.pid);
      const servingSeconds = Math.max(r.ms, r.second.doneAtMs) / 1000;
      for (const [who, got] of [['first', r], ['second', r.second]]) {
        if (got.rows !== SCALE_ROWS || got.changeRows !== seeded.changes) {
          failures.push(`${SCALE}: the ${who} client synced ${got.rows} rows / ${got.changeRows} change rows, expected ${SCALE_ROWS} / ${seeded.changes}`);
        }
      }
      const row = (workload, unit, value, extra = {}) =>
        entries.push({ workload, unit, synqlite: round(value), anchor: null, anchor_value: null, ratio: null, _reps: 1, ...extra });
      const MiB = 2 ** 20;
      row(S.ms, 'ms', r.ms);
      row(S.rate, 'rows/s', SCALE_ROWS / (r.ms / 1000));
      row(S.wasm, 'MiB', r.wasmMemoryBytes / MiB, { _targetText: '< 64 MiB', _ok: r.wasmMemoryBytes < 64 * MiB });
      if (r.heapPeakBytes !== null) row(S.heap, 'MiB', r.heapPeakBytes / MiB);
      row(S.events, 'events', r.progressEvents);
      row(S.second, 'ms', r.second.ms);
      if (r.second.firstProgressAtMs !== null) row(S.secondFirst, 'ms', r.second.firstProgressAtMs - r.second.startedAtMs);
      row(S.rss, 'MiB', after.peakRssBytes / MiB);
      row(S.cpu, 'cores', (after.cpuSeconds - before.cpuSeconds) / servingSeconds);
      detail.scale = { seeded, ...r, server: { before, after, servingSeconds } };
      log(`${SCALE}: first ${round(r.ms / 1000, 1)} s (${Math.round(SCALE_ROWS / (r.ms / 1000))} rows/s, ${r.progressEvents} progress events, ` +
        `wasm ${(r.wasmMemoryBytes / MiB).toFixed(1)} MiB, tab heap ${r.heapPeakBytes === null ? '?' : (r.heapPeakBytes / MiB).toFixed(1)} MiB); ` +
        `second joined at ${round(r.second.startedAtMs / 1000, 1)} s, first chunk after ${round((r.second.firstProgressAtMs - r.second.startedAtMs) / 1000, 2)} s, ` +
        `up to date after ${round(r.second.ms / 1000, 1)} s; server ${(after.peakRssBytes / MiB).toFixed(0)} MiB peak RSS, ` +
        `${((after.cpuSeconds - before.cpuSeconds) / servingSeconds).toFixed(2)} cores`);
    }

    if (selected(W.latency)) {
      await call('latencySetup', { url: server.url, room: 'latency', migrations: server.migrations });
      await call('latency', { samples: 5 }); // warm-up
      const { ms } = await call('latency', { samples: repsOverride ?? LATENCY_SAMPLES });
      const s = [...ms].sort((a, b) => a - b);
      const e = {
        workload: W.latency,
        unit: 'ms',
        synqlite: round(median(ms)),
        anchor: null,
        anchor_value: null,
        ratio: null,
        _min: { synqlite: round(s[0]) },
        _reps: ms.length,
      };
      entries.push(e);
      detail.latency = { p95: round(s[Math.floor(s.length * 0.95)] ?? s[s.length - 1]), samples: ms.length };
      log(`${W.latency}: median ${e.synqlite} ms, p95 ${detail.latency.p95} ms`);
    }
    await call('stop');
  } finally {
    await page.close();
    await server.close();
  }
  return { entries, detail, failures };
}
