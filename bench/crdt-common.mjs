// Shared by the CRDT benchmark workers (engine-crdt-synqlite.mjs, engine-crdt-crsqlite.mjs) and
// crdt-page.mjs: the SQL of every CRDT workload (identical for both libraries) and the checks.

export const CRDT_SQL = {
  /** The insert workload's table (common.mjs's `t`, with the NOT NULL pk cr-sqlite wants). */
  createT: 'CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, grp TEXT, v REAL)',
  crrT: "SELECT crsql_as_crr('t')",
  insertT: 'INSERT INTO t (id, grp, v) VALUES (?, ?, ?)',
  countT: 'SELECT count(*), total(v) FROM t',
  /** The update and delete workloads: one statement per row (`[v, id]`, `[id]`). */
  updateT: 'UPDATE t SET v = ? WHERE id = ?',
  deleteT: 'DELETE FROM t WHERE id = ?',
  /** The merge workload's table: 5 non-pk columns of every type. */
  createM: 'CREATE TABLE m (id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER, c REAL, d TEXT, e BLOB)',
  crrM: "SELECT crsql_as_crr('m')",
  /** Generation only (synqlite, once): `n` rows; REALs are never integral, INTEGERs < 2^31. */
  fillM: (n) =>
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) ` +
    `INSERT INTO m (id, a, b, c, d, e) SELECT x, 'name ' || x, (x * 7919) % 1000003, x * 0.5 + 0.25, ` +
    `printf('%08d: a description', x), CAST(printf('%016x', (x * 2654435761) % 4294967296) AS BLOB) FROM c`,
  /** Checksum of the merged table (same on both libraries when the merge did the same). */
  checkM: 'SELECT count(*), sum(b), total(c), sum(length(a) + length(d) + length(e)) FROM m',
  /** Setup of the changes-since workload: rows `lo..hi` in one statement (= one transaction). */
  fillRange: (lo, hi) =>
    `WITH RECURSIVE c(x) AS (SELECT ${lo} UNION ALL SELECT x + 1 FROM c WHERE x < ${hi}) ` +
    `INSERT INTO t (id, grp, v) SELECT x, 'g' || (x % 100), x * 0.5 FROM c`,
  /** crsqlite-wasm's read of the change rows (synqlite: `db.changes(since)`). */
  changesSince: 'SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM crsql_changes WHERE db_version > ?',
  /** crsqlite-wasm's merge statement (synqlite: `db.applyChanges(rows)`). */
  insertChange: 'INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
};

/** Rows `[id, text, real]` for the insert workload (same as common.mjs's makeRows). */
export function makeRows(n, start = 1) {
  const rows = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = start + i;
    rows[i] = [id, `row ${id} of the benchmark`, id + 0.25];
  }
  return rows;
}

/** Bind arguments `[v, id]` of the update workload for rows `1..=n` (v = id + 0.5). */
export function updateArgs(n) {
  const args = new Array(n);
  for (let i = 0; i < n; i++) args[i] = [i + 1.5, i + 1];
  return args;
}

/** Bind arguments `[id]` of the delete workload for rows `1..=n`. */
export function deleteArgs(n) {
  const args = new Array(n);
  for (let i = 0; i < n; i++) args[i] = [i + 1];
  return args;
}

/** A JS number from a bigint/number result cell. */
export const num = (v) => (typeof v === 'bigint' ? Number(v) : v);

/**
 * The plain-vs-replicated workloads, the same for both engines: each runs on two fresh
 * databases (`<name>-plain`, `<name>-crr`) through the engine's `withDb(name, fn)`, `insert(db,
 * rows, crr)` (one transaction) and `updateDelete(db, rows, crr)` (one statement per row).
 * `puts` (IndexedDB writes) is reported where the engine counts them.
 */
export function pairWorkloads({ withDb, insert, updateDelete }) {
  return {
    /** 10k-row insert in one transaction into a plain table, then into a replicated one. */
    async insertPair({ name, n }) {
      const rows = makeRows(n);
      const plain = await withDb(`${name}-plain`, (db) => insert(db, rows, false));
      const crr = await withDb(`${name}-crr`, (db) => insert(db, rows, true));
      return {
        plain: plain.ms, crr: crr.ms,
        settled: { plain: plain.settledMs, crr: crr.settledMs },
        ...(plain.puts === undefined ? {} : { puts: { plain: plain.puts, crr: crr.puts } }),
        check: [plain.read, crr.read, crr.clocks],
      };
    },

    /** Update and delete of every row of a 10k-row table, one statement per row, 1 tx each. */
    async updateDeletePair({ name, n }) {
      const rows = makeRows(n);
      const plain = await withDb(`${name}-plain`, (db) => updateDelete(db, rows, false));
      const crr = await withDb(`${name}-crr`, (db) => updateDelete(db, rows, true));
      return {
        update: { plain: plain.update.ms, crr: crr.update.ms },
        del: { plain: plain.del.ms, crr: crr.del.ms },
        settled: {
          update: { plain: plain.update.settledMs, crr: crr.update.settledMs },
          del: { plain: plain.del.settledMs, crr: crr.del.settledMs },
        },
        check: [plain.update.read, crr.update.read, plain.del.read, crr.del.read, crr.clocks],
      };
    },
  };
}
