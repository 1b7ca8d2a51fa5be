// Engine benchmark worker for synqlite: times the in-worker wasm `Database` class directly.
// Every op opens a fresh database (unique name -> its own OPFS pool `.synqlite/<name>`), times only
// the workload, checks the result, closes, and deletes the pool directory.
import { SQL, makeRows, makeIds, serve, removeOpfs } from './common.mjs';

const WASM_JS = '/pkg/wasm/synqlite.js';
let mod = null;

async function load() {
  if (!mod) {
    const m = await import(WASM_JS);
    await m.default();
    mod = m;
  }
  return mod;
}

async function withDb(name, fn) {
  const { Database } = await load();
  const db = await Database.open(name, 'opfs');
  if (db.storage !== 'opfs') throw new Error(`expected opfs storage, got ${db.storage}`);
  try {
    return await fn(db);
  } finally {
    db.close();
    await removeOpfs(['.synqlite', name]);
  }
}

const first = (r) => r.values;

serve({
  /** Cold start in a fresh worker: module import + wasm init + open + first query. */
  async open({ name }) {
    if (mod) throw new Error('open must run in a fresh worker');
    const t0 = performance.now();
    const m = await import(WASM_JS);
    const t1 = performance.now();
    await m.default();
    const t2 = performance.now();
    const db = await m.Database.open(name, 'opfs');
    const t3 = performance.now();
    const r = db.query('SELECT 1');
    const t4 = performance.now();
    mod = m;
    db.close();
    await removeOpfs(['.synqlite', name]);
    return { ms: t4 - t0, check: r.values, phases: { import: t1 - t0, init: t2 - t1, open: t3 - t2, query: t4 - t3 } };
  },

  async info({ name }) {
    return withDb(name, (db) => {
      const q = (sql) => db.query(sql).values[0];
      return {
        sqlite: q('SELECT sqlite_version()'),
        journal_mode: q('PRAGMA journal_mode'),
        synchronous: q('PRAGMA synchronous'),
        page_size: q('PRAGMA page_size'),
        cache_size: q('PRAGMA cache_size'),
        locking_mode: q('PRAGMA locking_mode'),
        temp_store: q('PRAGMA temp_store'),
        crossOriginIsolated: self.crossOriginIsolated,
        compile_options: db.query('PRAGMA compile_options').values,
      };
    });
  },

  async insertTx({ name, n }) {
    const rows = makeRows(n);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      const t0 = performance.now();
      db.exec('BEGIN');
      for (let i = 0; i < rows.length; i++) db.exec(SQL.insert, rows[i]);
      db.exec('COMMIT');
      const ms = performance.now() - t0;
      return { ms, check: first(db.query(SQL.count)) };
    });
  },

  async insertAutocommit({ name, n }) {
    const rows = makeRows(n);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      const t0 = performance.now();
      for (let i = 0; i < rows.length; i++) db.exec(SQL.insert, rows[i]);
      const ms = performance.now() - t0;
      return { ms, check: first(db.query(SQL.count)) };
    });
  },

  async pointReads({ name, n, rows }) {
    const ids = makeIds(n, rows);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      db.exec(SQL.fill(rows));
      let sum = 0;
      const t0 = performance.now();
      for (let i = 0; i < ids.length; i++) {
        const r = db.query(SQL.pointRead, [ids[i]]);
        sum += r.values[0];
      }
      const ms = performance.now() - t0;
      return { ms, check: sum };
    });
  },

  async groupBy({ name, rows }) {
    return withDb(name, (db) => {
      db.exec(SQL.create);
      db.exec(SQL.fill(rows));
      const t0 = performance.now();
      const r = db.query(SQL.groupBy);
      const ms = performance.now() - t0;
      let groups = 0, count = 0;
      for (let i = 0; i < r.values.length; i += 3) { groups++; count += r.values[i + 1]; }
      return { ms, check: [groups, count] };
    });
  },
});
