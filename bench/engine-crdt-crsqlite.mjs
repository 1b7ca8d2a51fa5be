// CRDT engine benchmark worker for the anchor, @vlcn.io/crsqlite-wasm 0.16 (npm), on its default
// IndexedDB VFS ("idb-batch-atomic", relaxed durability: what vlcn apps get from `initWasm()` +
// `sqlite.open(name)`). Times its in-worker async API: prepared statements inside BEGIN/COMMIT,
// `SELECT crsql_as_crr`, `SELECT ... FROM crsql_changes WHERE db_version > ?`, and
// `INSERT INTO crsql_changes` for merges. Every measured database is a fresh file, whose blocks
// are deleted from IndexedDB afterwards. The package is bundled by crsqlite-bundle.mjs.
//
// Two things about that VFS shape the measurement (see README.md, "CRDT"):
// - It queues every page write as an IndexedDB put and returns at once; COMMIT resolves before
//   the puts are done, and the next statement that reads the file waits for all of them. So each
//   workload reports `ms` (until the API call resolved: the headline figure, as for synqlite) and
//   `settledMs` (until a read of the table returned, i.e. the queued writes were done).
// - With SQLite's default temp_store, temporary files are files of that VFS too, and writes to a
//   replicated table go through one (`null_<id>`: a statement journal or temp b-tree): a 10k-row
//   insert into a replicated table queues ~137k IndexedDB puts (~1 min of write-back). The workloads therefore run with
//   `PRAGMA temp_store = MEMORY` (the anchor's best case); `tempStoreProbe` measures the default.
import initWasm from '/node_modules/.cache/synqlite-vlcn/crsqlite-wasm.mjs';
import { serve } from './common.mjs';
import { CRDT_SQL as SQL, makeRows, updateArgs, deleteArgs, num, pairWorkloads } from './crdt-common.mjs';

const WASM = '/node_modules/@vlcn.io/crsqlite-wasm/dist/crsqlite.wasm';
const IDB_NAME = 'idb-batch-atomic'; // the VFS's IndexedDB database (all files' blocks)
const TUNING = 'PRAGMA temp_store = MEMORY';
let sqlite = null;
let merge = null; // the change rows to merge, as bind arguments

// Counts IndexedDB puts (the VFS's page writes), for the report.
let puts = 0;
const put = IDBObjectStore.prototype.put;
IDBObjectStore.prototype.put = function (...args) {
  puts++;
  return put.apply(this, args);
};

/** Deletes a closed database file's blocks (the VFS keys them by [path, offset, version]). */
function deleteFile(name) {
  const path = new URL(name, 'http://localhost/').pathname;
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(IDB_NAME);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const idb = open.result;
      const tx = idb.transaction('blocks', 'readwrite');
      tx.objectStore('blocks').delete(IDBKeyRange.bound([path], [path, []]));
      tx.oncomplete = () => { idb.close(); resolve(); };
      tx.onerror = () => { idb.close(); reject(tx.error); };
    };
  });
}

async function withDb(name, fn, { tuned = true } = {}) {
  sqlite ??= await initWasm(() => WASM);
  const db = await sqlite.open(name);
  try {
    if (tuned) await db.exec(TUNING);
    return await fn(db);
  } finally {
    await db.close();
    await deleteFile(name);
  }
}

const cells = async (db, sql, bind) => (await db.execA(sql, bind))[0].map(num);

/** Runs `bindings[from..to)` through one prepared statement inside BEGIN/COMMIT. */
async function runTx(db, sql, bindings, from = 0, to = bindings.length) {
  const stmt = await db.prepare(sql);
  try {
    await db.exec('BEGIN');
    for (let i = from; i < to; i++) await stmt.run(null, ...bindings[i]);
    await db.exec('COMMIT');
  } finally {
    await stmt.finalize(null);
  }
}

/** Times `fn` (ms, until it resolved) and then until `readSql` returned (settledMs). */
async function timed(db, fn, readSql) {
  const p0 = puts;
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const read = await cells(db, readSql);
  return { ms, settledMs: performance.now() - t0, puts: puts - p0, read };
}

async function insert(db, rows, crr) {
  await db.exec(SQL.createT);
  if (crr) await db.exec(SQL.crrT);
  const r = await timed(db, () => runTx(db, SQL.insertT, rows), SQL.countT);
  const clocks = crr ? (await db.execA('SELECT count(*) FROM t__crsql_clock'))[0][0] : 0;
  return { ...r, clocks };
}

/** Inserts the rows (untimed), then times updating `v` of each, then deleting each. */
async function updateDelete(db, rows, crr) {
  await db.exec(SQL.createT);
  if (crr) await db.exec(SQL.crrT);
  await runTx(db, SQL.insertT, rows);
  await cells(db, SQL.countT); // waits for the queued writes
  const clocks = async () => (crr ? num((await db.execA('SELECT count(*) FROM t__crsql_clock'))[0][0]) : 0);
  const update = await timed(db, () => runTx(db, SQL.updateT, updateArgs(rows.length)), SQL.countT);
  const afterUpdate = await clocks();
  const del = await timed(db, () => runTx(db, SQL.deleteT, deleteArgs(rows.length)), SQL.countT);
  return { update, del, clocks: [afterUpdate, await clocks()] };
}

/** A synqlite-shaped value as the argument that binds to the same SQLite type in wa-sqlite. */
function bindable(v) {
  if (typeof v === 'bigint') {
    // wa-sqlite binds an int32 number with bind_int, other numbers with bind_double: only small
    // INTEGERs may travel as numbers (what crsqlite-wasm itself returns), the rest as bigints.
    return v >= -2147483648n && v <= 2147483647n ? Number(v) : v;
  }
  if (typeof v === 'number' && Number.isInteger(v)) {
    throw new Error('an integral REAL would bind as INTEGER; the workload never generates one');
  }
  return v;
}

serve({
  async info({ name }) {
    return withDb(name, async (db) => ({
      sqlite: (await db.execA('SELECT sqlite_version()'))[0][0],
      storage: `${IDB_NAME} VFS, relaxed durability`,
      tuning: TUNING,
      journal_mode: (await db.execA('PRAGMA journal_mode'))[0][0],
      synchronous: (await db.execA('PRAGMA synchronous'))[0][0],
      page_size: (await db.execA('PRAGMA page_size'))[0][0],
      cache_size: (await db.execA('PRAGMA cache_size'))[0][0],
    }));
  },

  ...pairWorkloads({ withDb, insert, updateDelete }),

  /** The replicated-table insert with SQLite's default temp_store (what an untuned app gets). */
  async tempStoreProbe({ name, n }) {
    const rows = makeRows(n);
    return withDb(name, (db) => insert(db, rows, true), { tuned: false });
  },

  /** Keeps the change rows (synqlite-shaped objects) as bind arguments (not timed). */
  async loadChanges({ rows }) {
    merge = rows.map((c) => [c.table, c.pk, c.cid, bindable(c.val), num(c.col_version), num(c.db_version),
      c.site_id, num(c.cl), num(c.seq)]);
    return { rows: merge.length };
  },

  async merge({ name, chunk, limit }) {
    if (!merge) throw new Error('loadChanges first');
    const n = limit ?? merge.length;
    return withDb(name, async (db) => {
      await db.exec(SQL.createM);
      await db.exec(SQL.crrM);
      const r = await timed(db, async () => {
        if (!chunk) {
          await runTx(db, SQL.insertChange, merge, 0, n);
        } else {
          for (let i = 0; i < n; i += chunk) await runTx(db, SQL.insertChange, merge, i, Math.min(i + chunk, n));
        }
      }, SQL.checkM);
      const clocks = (await db.execA('SELECT count(*) FROM m__crsql_clock'))[0][0];
      return { ms: r.ms, settledMs: r.settledMs, puts: r.puts, check: [...r.read, n, clocks] };
    });
  },

  /** Every change row of a `rows`-row merge table (filled untimed), read `reps` times (+1 warm-up). */
  async readAll({ name, rows, reps }) {
    return withDb(name, async (db) => {
      await db.exec(SQL.createM);
      await db.exec(SQL.crrM);
      await db.exec(SQL.fillM(rows));
      await cells(db, SQL.checkM); // waits for the queued writes
      const ms = [];
      let n = 0;
      for (let r = -1; r < reps; r++) {
        const t0 = performance.now();
        n = (await db.execA(SQL.changesSince, [0])).length;
        const dt = performance.now() - t0;
        if (r >= 0) ms.push(dt);
      }
      return { ms, check: [n] };
    });
  },

  async changesSince({ name, rows, versions, last, reps }) {
    return withDb(name, async (db) => {
      await db.exec(SQL.createT);
      await db.exec(SQL.crrT);
      const per = rows / versions;
      const s0 = performance.now();
      for (let v = 0; v < versions; v++) await db.exec(SQL.fillRange(v * per + 1, (v + 1) * per));
      await cells(db, SQL.countT); // waits for the queued writes
      const setupMs = performance.now() - s0;
      const top = num((await db.execA('SELECT crsql_db_version()'))[0][0]);
      const since = top - last;
      const ms = [];
      let n = 0;
      for (let r = -1; r < reps; r++) {
        const t0 = performance.now();
        const out = await db.execA(SQL.changesSince, [since]);
        const dt = performance.now() - t0;
        if (r >= 0) ms.push(dt);
        n = out.length;
      }
      return { ms, setupMs, check: [top, n] };
    });
  },
});
