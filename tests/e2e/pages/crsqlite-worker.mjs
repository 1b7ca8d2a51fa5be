// A dedicated module worker running the real @vlcn.io/crsqlite-wasm (npm) on its default
// IndexedDB VFS ("idb-batch-atomic"), for the interop test. The package is bundled by
// bench/crsqlite-bundle.mjs (its dependencies use bare imports, which workers cannot map).
//
// Requests `{ id, op, args }` -> replies `{ id, ok, result | error }`.
//
// Value types across the JS boundary (crsqlite-wasm 0.16 / wa-sqlite 0.22):
// - out: wa-sqlite returns INTEGER as a JS number when it is a safe integer (else a bigint), and
//   REAL as a number, so 2 and 2.0 look alike. Every read here therefore also selects typeof()
//   and converts to synqlite's representation: INTEGER -> bigint (read as text, so exact beyond
//   2^53), REAL -> number (a one-element Float64Array when the number is an int32, as synqlite
//   hands out such REALs: a plain int32 number binds as INTEGER), BLOB -> Uint8Array.
// - in: wa-sqlite binds a number that fits in int32 with sqlite3_bind_int (an integral REAL like
//   2.0 would become INTEGER 2) and other numbers with bind_double (an INTEGER beyond int32
//   passed as a number would become REAL). So INTEGERs are bound as bigints (bind_int64) and
//   REALs (numbers and synqlite's one-element Float64Arrays) go through CAST(? AS REAL).
// - in: an empty Uint8Array binds as NULL (wa-sqlite mallocs 0 bytes, gets a null pointer), so an
//   empty BLOB value is written as x''.
import initWasm from '/node_modules/.cache/synqlite-vlcn/crsqlite-wasm.mjs';

const WASM = '/node_modules/@vlcn.io/crsqlite-wasm/dist/crsqlite.wasm';
let sqlite = null;
const dbs = new Map();

const db = (name) => {
  const d = dbs.get(name);
  if (!d) throw new Error(`database ${name} is not open`);
  return d;
};

const CHANGES_SQL = `SELECT "table", pk, cid, val, typeof(val), CAST(val AS TEXT), col_version, db_version,
  site_id, cl, seq FROM crsql_changes WHERE db_version > ? ORDER BY db_version, seq`;
const INSERT_SQL = `INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES (?1, ?2, ?3, CASE ?10 WHEN 1 THEN CAST(?4 AS REAL) WHEN 2 THEN x'' ELSE ?4 END, ?5, ?6, ?7, ?8, ?9)`;

/** A cell read as [value, typeof] -> synqlite's JS representation. */
function typed(value, type, text) {
  switch (type) {
    case 'integer': return BigInt(text);
    case 'real': {
      const x = Number(value);
      return x === (x | 0) ? Float64Array.of(x) : x;
    }
    default: return value; // text: string, blob: Uint8Array, null: null
  }
}

const int = (v) => (typeof v === 'bigint' ? Number(v) : v);

const ops = {
  async open({ name }) {
    sqlite ??= await initWasm(() => WASM);
    const d = await sqlite.open(name);
    dbs.set(name, d);
    const [[siteId]] = await d.execA('SELECT crsql_site_id()');
    const [[version]] = await d.execA('SELECT sqlite_version()');
    return { siteId, siteidHex: d.siteid, sqlite: version };
  },

  async close({ name }) {
    await db(name).close();
    dbs.delete(name);
  },

  async exec({ name, sql, bind }) {
    await db(name).exec(sql, bind);
  },

  /** Rows as arrays of raw wa-sqlite values (to observe its type mapping). */
  async raw({ name, sql, bind }) {
    return db(name).execA(sql, bind);
  },

  /** `crsql_changes` rows since `since`, as synqlite-shaped objects (see the header). */
  async changes({ name, since = 0 }) {
    const rows = await db(name).execA(CHANGES_SQL, [BigInt(since)]);
    return rows.map(([table, pk, cid, val, vtype, vtext, col_version, db_version, site_id, cl, seq]) => ({
      table, pk, cid, val: typed(val, vtype, vtext), col_version, db_version, site_id, cl, seq,
    }));
  },

  /** Merges synqlite-shaped change rows (objects) in one transaction, like db.applyChanges. */
  async applyChanges({ name, rows }) {
    const d = db(name);
    const stmt = await d.prepare(INSERT_SQL);
    try {
      await d.exec('BEGIN');
      try {
        for (const c of rows) {
          const v = c.val instanceof Float64Array ? c.val[0] : c.val;
          const kind = typeof v === 'number' ? 1 : v instanceof Uint8Array && v.length === 0 ? 2 : 0;
          await stmt.run(null, c.table, c.pk, c.cid, kind === 2 ? null : v ?? null, int(c.col_version),
            int(c.db_version), c.site_id, int(c.cl), int(c.seq), kind);
        }
        await d.exec('COMMIT');
      } catch (e) {
        await d.exec('ROLLBACK').catch(() => undefined);
        throw e;
      }
    } finally {
      await stmt.finalize(null);
    }
    return { received: rows.length };
  },
};

self.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op ${op}`);
    self.postMessage({ id, ok: true, result: await fn(args ?? {}) });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.stack ?? err?.message ?? err) });
  }
};
self.postMessage({ ready: true });
