// The sync benchmark page (see sync-run.mjs): synqlite's public API (openDatabase + db.sync, the
// worker on OPFS) against the real server, and crsqlite-wasm merging the same change rows.
import { openDatabase } from '/pkg/dist/index.js';
import { rpc, uniqueName, removeOpfs } from './common.mjs';

const waitStatus = (s, want) =>
  new Promise((resolve, reject) => {
    if (s.status === want) return resolve();
    s.onStatus((st, state) => {
      if (st === want) resolve();
      else if (st === 'error') reject(new Error(`sync error ${state.error?.code}: ${state.error?.message}`));
    });
  });

let kept = null; // the last synced database, for the change rows handed to crsqlite-wasm

/** The 20 live queries of the "with live queries" run: each re-runs on every sync commit. */
const LIVE = [
  'SELECT count(*) AS n FROM m',
  'SELECT id, a FROM m ORDER BY id DESC LIMIT 20',
  'SELECT max(id) AS x FROM m',
  'SELECT sum(b) AS s FROM m',
];

/** Main-thread tasks over 50 ms (Chromium's 'longtask' entries), until stopped: the longest. */
function longTasks() {
  let longest = 0;
  let count = 0;
  let observer = null;
  try {
    observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        count++;
        longest = Math.max(longest, e.duration);
      }
    });
    observer.observe({ type: 'longtask', buffered: false });
  } catch {
    observer = null; // not supported by this engine
  }
  return () => {
    observer?.disconnect();
    return observer ? { longestMs: longest, count } : null;
  };
}

/** A fresh OPFS database syncs the room: time from db.sync() to 'up-to-date' (`live`: with 20 live queries open). */
async function initialSync({ url, room, migrations, table, chunkSize, live = 0 }) {
  if (kept) {
    await kept.db.close();
    await removeOpfs(['.synqlite', kept.name]);
  }
  const name = uniqueName('sync');
  const db = await openDatabase({ name, migrations, storage: 'opfs' });
  let progressEvents = 0;
  let liveRuns = 0;
  const stops = [];
  for (let i = 0; i < live; i++) {
    const ready = new Promise((resolve) => {
      stops.push(db.liveQuery(LIVE[i % LIVE.length], [], () => {
        liveRuns++;
        resolve();
      }));
    });
    await ready;
  }
  liveRuns = 0;
  const stopLong = longTasks();
  const t0 = performance.now();
  const s = db.sync({ url, room, ...(chunkSize && { chunkSize }) });
  s.onProgress(() => progressEvents++);
  await waitStatus(s, 'up-to-date');
  const ms = performance.now() - t0;
  const long = stopLong();
  for (const stop of stops) stop();
  const final = s.progress;
  await s.stop();
  const [{ n }] = await db.query(`SELECT count(*) AS n FROM ${table}`);
  const { wasmMemoryBytes, t } = await db.call({ op: 'stats' }); console.log('TIMING', ms, JSON.stringify(t));
  kept = { db, name };
  return { ms, progressEvents, rows: Number(n), changeRows: final.total, wasmMemoryBytes, liveRuns, longTasks: long };
}

/** The main thread's JS heap (Chromium's performance.memory), sampled every 50 ms until stopped. */
function heapSampler() {
  const read = () => performance.memory?.usedJSHeapSize ?? null;
  let peak = read();
  const timer = setInterval(() => {
    const v = read();
    if (v !== null && (peak === null || v > peak)) peak = v;
  }, 50);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

/**
 * The scale workload: a fresh OPFS database syncs a large room; when it has applied `secondAt`
 * of the rows, a second fresh database starts syncing the same room. Both are timed to
 * 'up-to-date'; the second's first progress event shows whether the server served it while the
 * first was still syncing.
 */
async function scaleSync({ url, room, migrations, table, secondAt }) {
  const opened = [];
  const open = async (tag) => {
    const name = uniqueName(tag);
    const db = await openDatabase({ name, migrations, storage: 'opfs' });
    opened.push({ db, name });
    return db;
  };
  const a = await open('scale-a');
  const b = await open('scale-b');
  const stopHeap = heapSampler();
  let events = 0;
  let second = null;
  const t0 = performance.now();
  const sa = a.sync({ url, room });
  const startSecond = () => {
    const s = { t0: performance.now(), firstProgress: null, done: null };
    second = s;
    const sb = b.sync({ url, room });
    sb.onProgress((p) => {
      if (s.firstProgress === null && p.applied > 0) s.firstProgress = performance.now();
    });
    s.wait = waitStatus(sb, 'up-to-date').then(() => {
      s.done = performance.now();
      s.progress = sb.progress;
      return sb.stop();
    });
  };
  sa.onProgress((p) => {
    events++;
    if (!second && p.total > 0 && p.applied >= p.total * secondAt) startSecond();
  });
  await waitStatus(sa, 'up-to-date');
  const aDone = performance.now();
  const final = sa.progress;
  await sa.stop();
  if (!second) startSecond();
  await second.wait;
  const heapPeak = stopHeap();
  const count = async (db) => Number((await db.query(`SELECT count(*) AS n FROM ${table}`))[0].n);
  const wasm = async (db) => (await db.call({ op: 'stats' })).wasmMemoryBytes;
  const out = {
    ms: aDone - t0,
    rows: await count(a),
    changeRows: final.total,
    progressEvents: events,
    wasmMemoryBytes: await wasm(a),
    heapPeakBytes: heapPeak,
    second: {
      startedAtMs: second.t0 - t0,
      firstProgressAtMs: second.firstProgress === null ? null : second.firstProgress - t0,
      doneAtMs: second.done - t0,
      ms: second.done - second.t0,
      rows: await count(b),
      changeRows: second.progress.total,
      wasmMemoryBytes: await wasm(b),
    },
  };
  for (const { db, name } of opened) {
    await db.close();
    await removeOpfs(['.synqlite', name]);
  }
  return out;
}

let anchor = null;

/** Hands the kept database's change rows to crsqlite-wasm's worker. */
async function prepareAnchor() {
  const rows = await kept.db.changes({ since: 0 });
  const worker = new Worker('/bench/engine-crdt-crsqlite.mjs', { type: 'module', name: 'bench-sync-crsqlite' });
  anchor = { worker, call: rpc(worker) };
  await anchor.call('loadChanges', { rows });
  return { changeRows: rows.length };
}

/** crsqlite-wasm merges them into a fresh database in one transaction (`limit`: warm-up). */
function anchorMerge({ limit } = {}) {
  return anchor.call('merge', { name: uniqueName('sync-crsqlite'), chunk: 0, ...(limit && { limit }) });
}

let pair = null;

/** Two databases of this tab sync one room: A writes, B's listener fires (one-way latency). */
async function latencySetup({ url, room, migrations }) {
  const a = await openDatabase({ name: uniqueName('lat-a'), migrations, storage: 'opfs' });
  const b = await openDatabase({ name: uniqueName('lat-b'), migrations, storage: 'opfs' });
  const sa = a.sync({ url, room });
  const sb = b.sync({ url, room });
  await waitStatus(sa, 'up-to-date');
  await waitStatus(sb, 'up-to-date');
  pair = { a, b, sa, sb };
}

async function latency({ samples }) {
  const { a, b } = pair;
  const ms = [];
  for (let i = 0; i < samples; i++) {
    const id = 1_000_000_000 + i + Math.floor(Math.random() * 1e6) * 1000;
    const seen = new Promise((resolve) => {
      const off = b.onRange(['m'], () => {
        off();
        resolve(performance.now());
      });
    });
    const t0 = performance.now();
    await a.exec('INSERT INTO m (id, a) VALUES (?, ?)', [id, `t${i}`]);
    ms.push((await seen) - t0);
  }
  return { ms };
}

async function stop() {
  anchor?.worker.terminate();
  for (const d of [pair?.a, pair?.b, kept?.db]) await d?.close();
}

window.syncBench = { initialSync, scaleSync, prepareAnchor, anchorMerge, latencySetup, latency, stop };
window.syncReady = true;
