// The CRDT benchmark page: one engine worker per library (synqlite's wasm Database on OPFS,
// crsqlite-wasm on IndexedDB). crdt-run.mjs calls `window.crdt.*` one repetition at a time.
// The merge workload's change rows are generated once by synqlite and kept in both workers.
import { rpc, uniqueName, removeOpfs, opfsEntries } from './common.mjs';

const WORKER = {
  synqlite: '/bench/engine-crdt-synqlite.mjs',
  anchor: '/bench/engine-crdt-crsqlite.mjs',
};
const engines = {};

async function wipe() {
  for (const entry of await opfsEntries()) await removeOpfs([entry]);
  await new Promise((resolve) => {
    const r = indexedDB.deleteDatabase('idb-batch-atomic');
    r.onsuccess = r.onerror = r.onblocked = () => resolve();
  });
}

async function start(lib) {
  const worker = new Worker(WORKER[lib], { type: 'module', name: `bench-crdt-${lib}` });
  engines[lib] = { worker, call: rpc(worker) };
  return engines[lib].call('info', { name: uniqueName('crdt-info') });
}

function run(lib, op, args) {
  return engines[lib].call(op, { ...args, name: uniqueName(`crdt-${op}`) });
}

/** Generates the merge rows in synqlite's worker and hands them to crsqlite-wasm's. */
async function prepareMerge(rows) {
  const t0 = performance.now();
  const gen = await run('synqlite', 'genChanges', { rows });
  const t1 = performance.now();
  await engines.anchor.call('loadChanges', { rows: gen.rows });
  const t2 = performance.now();
  const cids = {};
  for (const c of gen.rows) cids[c.cid] = (cids[c.cid] ?? 0) + 1;
  return { changeRows: gen.rows.length, cids, check: gen.check, genMs: t1 - t0, transferMs: t2 - t1 };
}

function stop() {
  for (const lib of Object.keys(engines)) {
    engines[lib].worker.terminate();
    delete engines[lib];
  }
}

window.crdt = { wipe, start, run, prepareMerge, stop, opfsEntries };
window.crdtReady = true;
