// CRDT engine benchmark worker for synqlite: times the in-worker wasm `Database` class on OPFS
// (asCrr via `SELECT crsql_as_crr`, `changes(since)`, `applyChanges(rows)`). Every measured
// database is fresh (unique name -> its own OPFS pool `.synqlite/<name>`) and deleted afterwards.
// It also generates, once, the change rows both libraries merge (`genChanges`).
import { serve, removeOpfs } from './common.mjs';
import { CRDT_SQL as SQL, updateArgs, deleteArgs, num, pairWorkloads } from './crdt-common.mjs';

const WASM_JS = '/pkg/wasm/synqlite.js';
let mod = null;
let merge = null; // the generated change rows

async function load() {
  if (!mod) {
    const m = await import(WASM_JS);
    await m.default();
    mod = m;
  }
  return mod;
}

async function withDb(name, fn, storage = 'opfs') {
  const { Database } = await load();
  const db = await Database.open(name, storage);
  if (db.storage !== storage) throw new Error(`expected ${storage} storage, got ${db.storage}`);
  try {
    return await fn(db);
  } finally {
    db.close();
    if (storage === 'opfs') await removeOpfs(['.synqlite', name]);
  }
}

const cells = (db, sql) => db.query(sql).values.map(num);

/** Times `fn` (ms) and then until `readSql` returned (settledMs; as for the anchor). */
function timed(db, fn, readSql) {
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  const read = cells(db, readSql);
  return { ms, settledMs: performance.now() - t0, read };
}

function insert(db, rows, crr) {
  db.exec(SQL.createT);
  if (crr) db.exec(SQL.crrT);
  const r = timed(db, () => {
    db.exec('BEGIN');
    for (let i = 0; i < rows.length; i++) db.exec(SQL.insertT, rows[i]);
    db.exec('COMMIT');
  }, SQL.countT);
  const clocks = crr ? num(db.query('SELECT count(*) FROM t__crsql_clock').values[0]) : 0;
  return { ...r, clocks };
}

/** Runs `sql` once per bind argument list in one transaction. */
function perRow(db, sql, args) {
  db.exec('BEGIN');
  for (let i = 0; i < args.length; i++) db.exec(sql, args[i]);
  db.exec('COMMIT');
}

/** Inserts the rows (untimed), then times updating `v` of each, then deleting each. */
function updateDelete(db, rows, crr) {
  db.exec(SQL.createT);
  if (crr) db.exec(SQL.crrT);
  perRow(db, SQL.insertT, rows);
  const clocks = () => (crr ? num(db.query('SELECT count(*) FROM t__crsql_clock').values[0]) : 0);
  const update = timed(db, () => perRow(db, SQL.updateT, updateArgs(rows.length)), SQL.countT);
  const afterUpdate = clocks();
  const del = timed(db, () => perRow(db, SQL.deleteT, deleteArgs(rows.length)), SQL.countT);
  return { update, del, clocks: [afterUpdate, clocks()] };
}

serve({
  async info({ name }) {
    return withDb(name, (db) => ({
      sqlite: db.query('SELECT sqlite_version()').values[0],
      storage: db.storage === 'opfs' ? 'OPFS (SAH pool)' : db.storage,
      journal_mode: db.query('PRAGMA journal_mode').values[0],
      synchronous: db.query('PRAGMA synchronous').values[0],
    }));
  },

  ...pairWorkloads({ withDb, insert, updateDelete }),

  /** Generates the merge workload's change rows (in memory) and keeps them; returns them too. */
  async genChanges({ name, rows }) {
    return withDb(name, (db) => {
      db.exec(SQL.createM);
      db.exec(SQL.crrM);
      db.exec(SQL.fillM(rows));
      merge = db.changes(0);
      return { rows: merge, check: cells(db, SQL.checkM) };
    }, 'memory');
  },

  /**
   * Merges the generated rows (or the first `limit`) into a fresh db: one call, or `chunk`-row
   * calls; `via: 'vtab'`: one `INSERT INTO crsql_changes` per row in one transaction instead
   * (as crsqlite-wasm merges).
   */
  async merge({ name, chunk, limit, via }) {
    if (!merge) throw new Error('genChanges first');
    const rows = limit ? merge.slice(0, limit) : merge;
    const args = via === 'vtab'
      ? rows.map((c) => [c.table, c.pk, c.cid, c.val, c.col_version, c.db_version, c.site_id, c.cl, c.seq])
      : null;
    return withDb(name, (db) => {
      db.exec(SQL.createM);
      db.exec(SQL.crrM);
      let applied = 0;
      const r = timed(db, () => {
        if (args) {
          db.exec('BEGIN');
          for (const a of args) db.exec(SQL.insertChange, a);
          db.exec('COMMIT');
          applied = rows.length;
        } else if (!chunk) {
          applied = db.applyChanges(rows).applied;
        } else {
          for (let i = 0; i < rows.length; i += chunk) applied += db.applyChanges(rows.slice(i, i + chunk)).applied;
        }
      }, SQL.checkM);
      const clocks = num(db.query('SELECT count(*) FROM m__crsql_clock').values[0]);
      return { ms: r.ms, settledMs: r.settledMs, applied, check: [...r.read, rows.length, clocks] };
    });
  },

  /**
   * Every change row of a `rows`-row table of the merge workload (written locally in one
   * statement, untimed), read `reps` times (+1 warm-up): `via: 'vtab'` with `SELECT ... FROM
   * crsql_changes WHERE db_version > 0`, else with `changes(0)`.
   */
  async readAll({ name, rows, reps, via }) {
    return withDb(name, (db) => {
      db.exec(SQL.createM);
      db.exec(SQL.crrM);
      db.exec(SQL.fillM(rows));
      const ms = [];
      let n = 0;
      for (let r = -1; r < reps; r++) {
        const t0 = performance.now();
        if (via === 'vtab') {
          const { columns, values } = db.query(SQL.changesSince, [0]);
          n = values.length / columns.length;
        } else {
          n = db.changes(0).length;
        }
        const dt = performance.now() - t0;
        if (r >= 0) ms.push(dt);
      }
      return { ms, check: [n] };
    });
  },

  /**
   * `rows` rows written in `versions` transactions, then `changes(since)` for the last `last`
   * versions, timed `reps` times (+1 warm-up) on the same database (a read: nothing changes).
   */
  async changesSince({ name, rows, versions, last, reps }) {
    return withDb(name, (db) => {
      db.exec(SQL.createT);
      db.exec(SQL.crrT);
      const per = rows / versions;
      const s0 = performance.now();
      for (let v = 0; v < versions; v++) db.exec(SQL.fillRange(v * per + 1, (v + 1) * per));
      const setupMs = performance.now() - s0;
      const top = num(db.dbVersion);
      const since = top - last;
      const ms = [];
      let n = 0;
      for (let r = -1; r < reps; r++) {
        const t0 = performance.now();
        const out = db.changes(since);
        const dt = performance.now() - t0;
        if (r >= 0) ms.push(dt);
        n = out.length;
      }
      return { ms, setupMs, check: [top, n] };
    });
  },
});
