// Engine benchmark worker for the anchor, @sqlite.org/sqlite-wasm: times its oo1 API directly on a
// database opened on the opfs-sahpool VFS. Started with `?opfs-disable&opfs-wl-disable` in its URL
// so sqlite3InitModule() does not also bring up the SharedArrayBuffer-based "opfs" VFSes (and their
// proxy worker) under cross-origin isolation: an app that uses opfs-sahpool does not need them.
// Each op uses a fresh database file (unique name) in the pool, closed and unlinked afterwards.
import { SQL, makeRows, makeIds, serve } from './common.mjs';

const SQLITE_ESM = '/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';
let sqlite3 = null;
let pool = null;

async function load() {
  if (!pool) {
    const m = await import(SQLITE_ESM);
    sqlite3 = await m.default();
    pool = await sqlite3.installOpfsSAHPoolVfs({});
  }
  return pool;
}

async function withDb(name, fn) {
  const p = await load();
  const file = `/${name}.sqlite3`;
  const db = new p.OpfsSAHPoolDb(file);
  try {
    return await fn(db);
  } finally {
    db.close();
    p.unlink(file);
  }
}

serve({
  /** Cold start in a fresh worker: module import + wasm init + VFS install + open + first query. */
  async open({ name }) {
    if (pool) throw new Error('open must run in a fresh worker');
    const t0 = performance.now();
    const m = await import(SQLITE_ESM);
    const t1 = performance.now();
    const s = await m.default();
    const t2 = performance.now();
    const p = await s.installOpfsSAHPoolVfs({});
    const db = new p.OpfsSAHPoolDb(`/${name}.sqlite3`);
    const t3 = performance.now();
    const one = db.selectValue('SELECT 1');
    const t4 = performance.now();
    db.close();
    await p.removeVfs(); // releases the pool's handles and deletes its directory
    return { ms: t4 - t0, check: [one], phases: { import: t1 - t0, init: t2 - t1, open: t3 - t2, query: t4 - t3 } };
  },

  async info({ name }) {
    return withDb(name, (db) => {
      const q = (sql) => db.selectValue(sql);
      return {
        sqlite: q('SELECT sqlite_version()'),
        journal_mode: q('PRAGMA journal_mode'),
        synchronous: q('PRAGMA synchronous'),
        page_size: q('PRAGMA page_size'),
        cache_size: q('PRAGMA cache_size'),
        locking_mode: q('PRAGMA locking_mode'),
        temp_store: q('PRAGMA temp_store'),
        crossOriginIsolated: self.crossOriginIsolated,
        vfsList: sqlite3.capi.sqlite3_js_vfs_list(),
        compile_options: db.selectValues('PRAGMA compile_options'),
      };
    });
  },

  async shutdown() {
    if (pool) await pool.removeVfs();
    pool = null;
    return true;
  },

  async insertTx({ name, n }) {
    const rows = makeRows(n);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      const stmt = db.prepare(SQL.insert);
      const t0 = performance.now();
      db.exec('BEGIN');
      for (let i = 0; i < rows.length; i++) stmt.bind(rows[i]).stepReset();
      db.exec('COMMIT');
      const ms = performance.now() - t0;
      stmt.finalize();
      return { ms, check: db.selectArray(SQL.count) };
    });
  },

  async insertAutocommit({ name, n }) {
    const rows = makeRows(n);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      const stmt = db.prepare(SQL.insert);
      const t0 = performance.now();
      for (let i = 0; i < rows.length; i++) stmt.bind(rows[i]).stepReset();
      const ms = performance.now() - t0;
      stmt.finalize();
      return { ms, check: db.selectArray(SQL.count) };
    });
  },

  async pointReads({ name, n, rows }) {
    const ids = makeIds(n, rows);
    return withDb(name, (db) => {
      db.exec(SQL.create);
      db.exec(SQL.fill(rows));
      const stmt = db.prepare(SQL.pointRead);
      let sum = 0;
      const t0 = performance.now();
      for (let i = 0; i < ids.length; i++) {
        stmt.bind(1, ids[i]);
        stmt.step();
        const row = stmt.get([]);
        stmt.reset();
        sum += row[0];
      }
      const ms = performance.now() - t0;
      stmt.finalize();
      return { ms, check: sum };
    });
  },

  async groupBy({ name, rows }) {
    return withDb(name, (db) => {
      db.exec(SQL.create);
      db.exec(SQL.fill(rows));
      const t0 = performance.now();
      const r = db.selectArrays(SQL.groupBy);
      const ms = performance.now() - t0;
      let count = 0;
      for (const row of r) count += row[1];
      return { ms, check: [r.length, count] };
    });
  },
});
