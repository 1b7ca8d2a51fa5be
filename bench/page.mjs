// The benchmark page: drives the engine workers (in-worker APIs) and the two main-thread APIs
// (synqlite's openDatabase client, sqlite-wasm's Worker1 promiser). bench/run.mjs calls
// `window.bench.*` one repetition at a time, so it can interleave the libraries.
import { openDatabase } from '/pkg/dist/index.js';
import { sqlite3Worker1Promiser } from '/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';
import { SQL, makeRows, makeIds, rpc, uniqueName, removeOpfs, opfsEntries } from './common.mjs';

// See engine-sqlite-wasm.mjs for why the anchor's workers get these URL parameters.
const NO_SAB_OPFS = '?opfs-disable&opfs-wl-disable';
const ENGINE_WORKER = {
  synqlite: '/bench/engine-synqlite.mjs',
  anchor: `/bench/engine-sqlite-wasm.mjs${NO_SAB_OPFS}`,
};
const WORKER1_WORKER = `/bench/worker1-sahpool.mjs${NO_SAB_OPFS}`;

const now = () => performance.now();

/** Deletes every database either library left in OPFS (handles may still be closing). */
async function wipeOpfs() {
  for (const entry of await opfsEntries()) await removeOpfs([entry]);
}

function spawnEngine(lib) {
  const worker = new Worker(ENGINE_WORKER[lib], { type: 'module', name: `bench-engine-${lib}` });
  return { worker, call: rpc(worker) };
}

// ---- engine: in-worker APIs -------------------------------------------------------------------
const engines = {};

async function engineOpen(lib) {
  const { worker, call } = spawnEngine(lib);
  try {
    return await call('open', { name: uniqueName('open') });
  } finally {
    worker.terminate();
  }
}

async function engineStart(lib) {
  engines[lib] = spawnEngine(lib);
  return engines[lib].call('info', { name: uniqueName('info') });
}

function engineRun(lib, op, args) {
  return engines[lib].call(op, { ...args, name: uniqueName(op) });
}

async function engineStop(lib) {
  const e = engines[lib];
  delete engines[lib];
  if (!e) return;
  if (lib === 'anchor') await e.call('shutdown');
  e.worker.terminate();
}

// ---- app: synqlite's main-thread client ---------------------------------------------------------
/**
 * Setup: fills the table and waits until this tab has received the fill's change announcement
 * (100k rows), so delivering it does not land inside the timed workload that follows.
 */
async function appFill(db, rows) {
  let off;
  const announced = new Promise((resolve) => {
    off = db.onAny(() => resolve());
  });
  await db.exec(SQL.fill(rows));
  await announced;
  off();
}

async function synqliteApp(op, { n, rows }) {
  const name = uniqueName(`app-${op}`);
  if (op === 'open') {
    const t0 = now();
    const db = await openDatabase({ name, storage: 'opfs' });
    const r = await db.query('SELECT 1 AS one');
    const ms = now() - t0;
    await db.close();
    return { ms, check: [r[0].one] };
  }
  const db = await openDatabase({ name, storage: 'opfs' });
  try {
    if (db.storage !== 'opfs') throw new Error(`expected opfs storage, got ${db.storage}`);
    await db.exec(SQL.create);
    let t0, ms, check;
    switch (op) {
      case 'insertTx': {
        const data = makeRows(n);
        t0 = now();
        await db.tx(async (tx) => {
          for (let i = 0; i < data.length; i++) await tx.exec(SQL.insert, data[i]);
        });
        ms = now() - t0;
        break;
      }
      case 'insertBatch': {
        const items = makeRows(n).map((r) => [SQL.insert, r]);
        t0 = now();
        await db.batch(items);
        ms = now() - t0;
        break;
      }
      case 'insertAutocommit': {
        const data = makeRows(n);
        t0 = now();
        for (let i = 0; i < data.length; i++) await db.exec(SQL.insert, data[i]);
        ms = now() - t0;
        break;
      }
      case 'pointReads': {
        await appFill(db, rows);
        const ids = makeIds(n, rows);
        let sum = 0;
        t0 = now();
        for (let i = 0; i < ids.length; i++) sum += (await db.query(SQL.pointRead, [ids[i]]))[0].id;
        ms = now() - t0;
        check = sum;
        break;
      }
      case 'groupBy': {
        await appFill(db, rows);
        t0 = now();
        const r = await db.query(SQL.groupBy);
        ms = now() - t0;
        check = [r.length, r.reduce((a, g) => a + g.n, 0)];
        break;
      }
      default:
        throw new Error(`unknown app op ${op}`);
    }
    if (check === undefined) {
      const [c] = await db.query(SQL.count);
      check = [c.n, c.total];
    }
    return { ms, check };
  } finally {
    await db.close();
  }
}

// ---- app: sqlite-wasm's Worker1 promiser on opfs-sahpool ----------------------------------------
async function worker1Open() {
  const worker = new Worker(WORKER1_WORKER, { type: 'module', name: 'bench-worker1' });
  const failed = new Promise((_, reject) =>
    worker.addEventListener('error', (e) => reject(new Error(`Worker1 worker failed: ${e.message ?? e}`))),
  );
  const promiser = await Promise.race([sqlite3Worker1Promiser({ worker }), failed]);
  // Rejections are Worker1 error messages, not Errors.
  const p = (type, args) =>
    promiser(type, args).catch((ev) => {
      throw new Error(`Worker1 ${type}: ${ev?.result?.message ?? ev?.message ?? JSON.stringify(ev)}`);
    });
  return { worker, p };
}

async function anchorApp(op, { n, rows }) {
  const filename = `/${uniqueName(`app-${op}`)}.sqlite3`;
  if (op === 'open') {
    const t0 = now();
    const { worker, p } = await worker1Open();
    await p('open', { filename, vfs: 'opfs-sahpool' });
    const r = await p('exec', { sql: 'SELECT 1 AS one', rowMode: 'object', resultRows: [] });
    const ms = now() - t0;
    await p('close', { unlink: true });
    worker.terminate();
    return { ms, check: [r.result.resultRows[0].one] };
  }
  const { worker, p } = await worker1Open();
  try {
    const opened = await p('open', { filename, vfs: 'opfs-sahpool' });
    if (opened.result.vfs !== 'opfs-sahpool') throw new Error(`expected opfs-sahpool, got ${opened.result.vfs}`);
    await p('exec', { sql: SQL.create });
    let t0, ms, check;
    switch (op) {
      case 'insertTx': {
        const data = makeRows(n);
        t0 = now();
        await p('exec', { sql: 'BEGIN' });
        for (let i = 0; i < data.length; i++) await p('exec', { sql: SQL.insert, bind: data[i] });
        await p('exec', { sql: 'COMMIT' });
        ms = now() - t0;
        break;
      }
      case 'insertBatch': {
        // Worker1 has no batch call: its best is to post every statement without waiting
        // (the worker runs messages in order) and await them all.
        const data = makeRows(n);
        t0 = now();
        const all = [p('exec', { sql: 'BEGIN' })];
        for (let i = 0; i < data.length; i++) all.push(p('exec', { sql: SQL.insert, bind: data[i] }));
        all.push(p('exec', { sql: 'COMMIT' }));
        await Promise.all(all);
        ms = now() - t0;
        break;
      }
      case 'insertAutocommit': {
        const data = makeRows(n);
        t0 = now();
        for (let i = 0; i < data.length; i++) await p('exec', { sql: SQL.insert, bind: data[i] });
        ms = now() - t0;
        break;
      }
      case 'pointReads': {
        await p('exec', { sql: SQL.fill(rows) });
        const ids = makeIds(n, rows);
        let sum = 0;
        t0 = now();
        for (let i = 0; i < ids.length; i++) {
          const m = await p('exec', { sql: SQL.pointRead, bind: [ids[i]], rowMode: 'object', resultRows: [] });
          sum += m.result.resultRows[0].id;
        }
        ms = now() - t0;
        check = sum;
        break;
      }
      case 'groupBy': {
        await p('exec', { sql: SQL.fill(rows) });
        t0 = now();
        const m = await p('exec', { sql: SQL.groupBy, rowMode: 'object', resultRows: [] });
        ms = now() - t0;
        const r = m.result.resultRows;
        check = [r.length, r.reduce((a, g) => a + g.n, 0)];
        break;
      }
      default:
        throw new Error(`unknown app op ${op}`);
    }
    if (check === undefined) {
      const m = await p('exec', { sql: SQL.count, rowMode: 'array', resultRows: [] });
      check = m.result.resultRows[0];
    }
    return { ms, check };
  } finally {
    await p('close', { unlink: true }).catch(() => undefined);
    worker.terminate();
  }
}

async function app(lib, op, args) {
  try {
    return await (lib === 'synqlite' ? synqliteApp(op, args) : anchorApp(op, args));
  } finally {
    await wipeOpfs();
  }
}

/** Environment facts for the report. */
function info() {
  // Smallest observable step of performance.now() (100 µs unless cross-origin isolated).
  let step = Infinity;
  for (let i = 0; i < 50 && step > 0.001; i++) {
    const a = performance.now();
    let b = a;
    while (b === a) b = performance.now();
    step = Math.min(step, b - a);
  }
  return { crossOriginIsolated: self.crossOriginIsolated, timerStepMs: step, userAgent: navigator.userAgent };
}

window.bench = { info, wipeOpfs, opfsEntries, engineOpen, engineStart, engineRun, engineStop, app };
window.benchReady = true;
