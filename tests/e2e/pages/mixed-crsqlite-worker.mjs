// A dedicated module worker holding any number of in-memory @vlcn.io/crsqlite-wasm 0.16
// databases, for the mixed-engine convergence test (mixed-convergence.test.mjs). The package is
// bundled by bench/crsqlite-bundle.mjs (workers cannot map bare imports).
//
// Requests `{ id, op, args }` -> replies `{ id, ok, result | error }`.
//
// Change rows travel as 9-value tuples in one of two representations:
// - `plain`: what a crsqlite-wasm app exchanges. Read with `SELECT * FROM crsql_changes`, so
//   wa-sqlite hands out INTEGERs as numbers (bigints beyond 2^53) and REALs as numbers; written
//   with `INSERT INTO crsql_changes VALUES (?, ...)`, so wa-sqlite binds a number that is an int32
//   as INTEGER and any other number as REAL, a bigint as INTEGER, an empty Uint8Array as NULL.
//   synqlite's one-element Float64Array (an integral REAL) goes in as its plain number, the
//   conversion the README gives for feeding synqlite rows to crsqlite-wasm.
// - `typed`: exact both ways, synqlite's representation. Read with typeof(val): INTEGER ->
//   bigint, REAL -> number (a one-element Float64Array when the number is an int32), TEXT ->
//   string, BLOB -> Uint8Array. Written with the REAL forms through CAST(? AS REAL) and an empty
//   BLOB as x''.
import initWasm from '/node_modules/.cache/synqlite-vlcn/crsqlite-wasm.mjs';

const WASM = '/node_modules/@vlcn.io/crsqlite-wasm/dist/crsqlite.wasm';
let sqlite = null;
let nextDb = 1;
const dbs = new Map();

const db = (id) => {
  const d = dbs.get(id);
  if (!d) throw new Error(`database ${id} is not open`);
  return d;
};

const PLAIN_SQL = `SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM crsql_changes
  WHERE db_version > ?`;
const TYPED_SQL = `SELECT "table", pk, cid, val, typeof(val), CAST(val AS TEXT), col_version, db_version,
  site_id, cl, seq FROM crsql_changes WHERE db_version > ?`;
const PLAIN_INSERT = 'INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
// ?10: 1 = REAL (CAST), 2 = empty BLOB, 0 = as bound.
const TYPED_INSERT = `INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES (?1, ?2, ?3, CASE ?10 WHEN 1 THEN CAST(?4 AS REAL) WHEN 2 THEN x'' ELSE ?4 END, ?5, ?6, ?7, ?8, ?9)`;

const isInt32 = (x) => x === (x | 0);

function typedVal(value, type, text) {
  switch (type) {
    case 'integer': return BigInt(text);
    case 'real': return isInt32(value) ? Float64Array.of(value) : value;
    default: return value; // text: string, blob: Uint8Array, null: null
  }
}

/** Runs `rows` through `stmt` in transactions of `chunk` rows (Infinity: one). */
async function applyChunks(d, sql, rows, chunk, bindOf) {
  const stmt = await d.prepare(sql);
  try {
    for (let i = 0; i < rows.length; i += chunk) {
      await d.exec('BEGIN');
      try {
        for (const row of rows.slice(i, i + chunk)) await stmt.run(null, ...bindOf(row));
        await d.exec('COMMIT');
      } catch (e) {
        await d.exec('ROLLBACK').catch(() => undefined);
        throw e;
      }
    }
  } finally {
    await stmt.finalize(null);
  }
}

const ops = {
  async open() {
    sqlite ??= await initWasm(() => WASM);
    const d = await sqlite.open(); // no file name: an in-memory database
    const id = nextDb++;
    dbs.set(id, d);
    const [[siteId]] = await d.execA('SELECT crsql_site_id()');
    return { id, siteId };
  },

  async close({ id }) {
    await db(id).close();
    dbs.delete(id);
  },

  async exec({ id, sql, bind }) {
    await db(id).exec(sql, bind);
  },

  /** Rows as arrays of raw wa-sqlite values. */
  async query({ id, sql, bind }) {
    return db(id).execA(sql, bind);
  },

  /** Change rows since a db_version, as tuples, `plain` or `typed` (see the header). */
  async changes({ id, mode, since = 0 }) {
    if (mode === 'plain') return db(id).execA(PLAIN_SQL, [since]);
    const rows = await db(id).execA(TYPED_SQL, [since]);
    return rows.map(([table, pk, cid, val, type, text, cv, dbv, site, cl, seq]) =>
      [table, pk, cid, typedVal(val, type, text), cv, dbv, site, cl, seq]);
  },

  /** Merges tuples in transactions of `chunk` rows; `mode` as in `changes`. */
  async apply({ id, rows, mode, chunk = Infinity }) {
    const d = db(id);
    if (mode === 'plain') {
      await applyChunks(d, PLAIN_INSERT, rows, chunk, (r) =>
        r.map((v, i) => (i === 3 && v instanceof Float64Array ? v[0] : v)));
    } else {
      await applyChunks(d, TYPED_INSERT, rows, chunk, (r) => {
        const v = r[3];
        const kind = typeof v === 'number' || v instanceof Float64Array ? 1
          : v instanceof Uint8Array && v.length === 0 ? 2 : 0;
        const val = v instanceof Float64Array ? v[0] : kind === 2 ? null : v;
        return [...r.slice(0, 3), val, ...r.slice(4, 9), kind];
      });
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
