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

/** A fresh OPFS database syncs the room: time from db.sync() to 'up-to-date'. */
async function initialSync({ url, room, migrations, table, chunkSize }) {
  if (kept) {
    await kept.db.close();
    await removeOpfs(['.synqlite', kept.name]);
  }
  const name = uniqueName('sync');
  const db = await openDatabase({ name, migrations, storage: 'opfs' });
  let progressEvents = 0;
  const t0 = performance.now();
  const s = db.sync({ url, room, ...(chunkSize && { chunkSize }) });
  s.onProgress(() => progressEvents++);
  await waitStatus(s, 'up-to-date');
  const ms = performance.now() - t0;
  const final = s.progress;
  await s.stop();
  const [{ n }] = await db.query(`SELECT count(*) AS n FROM ${table}`);
  const { wasmMemoryBytes, t } = await db.call({ op: 'stats' }); console.log('TIMING', ms, JSON.stringify(t));
  kept = { db, name };
  return { ms, progressEvents, rows: Number(n), changeRows: final.total, wasmMemoryBytes };
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

window.syncBench = { initialSync, prepareAnchor, anchorMerge, latencySetup, latency, stop };
window.syncReady = true;
