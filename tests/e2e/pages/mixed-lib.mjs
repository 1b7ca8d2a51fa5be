// Mixed-engine convergence scenarios, run inside mixed.html (needs window.synqlite and
// window.vlcn). A scenario: 3-5 in-memory databases, each synqlite or crsqlite-wasm 0.16 (at
// least one of each), the same replicated tables with integer, text, real, blob, composite and
// pk-only keys. Each round every database makes random inserts, updates, deletes and
// re-inserts of deleted rows (resurrections), upserts and REPLACEs in small transactions, then
// the databases sync along one of the topologies of vlcn's merge-check (packages/node-tests in
// vlcn-io/js), each sync sending all of the sender's change rows (as merge-check does) or those
// since the previous sync between the two, applied in one batch, in chunks or row by row.
// After every round all databases must hold the same rows (typeof and value of every cell) and
// the same canonical change set: every (table, pk, cid, val, col_version, site_id, cl), without
// the db_version and seq each database numbers for itself.
//
// Two ways to carry change rows between the engines (see mixed-crsqlite-worker.mjs):
// - `typed`: exact. crsqlite-wasm's rows are read with typeof(val) and written with CAST, so
//   every value of every type is generated.
// - `plain`: as crsqlite-wasm apps exchange them (wa-sqlite's own type mapping both ways,
//   synqlite's rows fed to crsqlite-wasm as they come out of changes()). wa-sqlite itself changes
//   some values' types on the way: an INTEGER between 2^31 and 2^53 reads as a number that binds
//   as REAL, an integral REAL that fits in int32 reads as a number that binds as INTEGER, an empty
//   BLOB binds as NULL. Two crsqlite-wasm databases diverge on those values, so the plain runs
//   leave them out (and write each typed column only values of its type, so that affinity makes
//   none of them); everything else is generated.
//
// Not generated: primary-key updates (cr-sqlite 0.16 moves the row without its columns, so
// crsqlite-wasm databases do not converge either) and schema changes.

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
  return r;
}

export const TOPOLOGIES = ['round-trip', 'pairwise', 'hub', 'ring'];
export const BATCHINGS = ['one', 'chunks', 'rows'];
export const TRANSPORTS = ['typed', 'plain'];

// Values as [type, v]: int -> bigint, real -> number, text -> string, blob -> hex, null.
const isInt32 = (x) => x === (x | 0);
const INTS = [0n, 1n, -1n, 2n, 7n, 2147483647n, -2147483648n, 2147483648n, -2147483649n, 3000000000n,
  9007199254740993n, -9223372036854775808n, 9223372036854775807n];
const REALS = [0.5, -1.25, 2.5, 2.0, 3.0, -7.0, 0.0, 3e9, 1e300, -1e-300, Infinity, -Infinity];
const TEXTS = ['', 'a', 'b', 'é', '😀', '10', 'ｚ', "it's"];
const BLOBS = ['', '00', '01', 'ff', '0001'];
const DOMAINS = {
  typed: { int: INTS, real: REALS, text: TEXTS, blob: BLOBS },
  plain: {
    int: INTS.filter((v) => (v >= -2147483648n && v <= 2147483647n) || v > 2n ** 53n || v < -(2n ** 53n)),
    real: REALS.filter((v) => !isInt32(v)),
    text: TEXTS,
    blob: BLOBS.filter((b) => b !== ''),
  },
};
const TYPES = ['int', 'real', 'text', 'blob'];
const AFFINITY_TYPE = { INTEGER: 'int', REAL: 'real', TEXT: 'text' };

const I = (v) => ['int', v];
const R = (v) => ['real', v];
const T = (v) => ['text', v];
const B = (v) => ['blob', v];

/** The replicated tables: key columns, other columns with their declared type, key domain. */
export const TABLES = [
  {
    name: 'ti', pks: ['id'], cols: [['a', ''], ['n', 'INTEGER'], ['r', 'REAL'], ['t', 'TEXT'], ['b', 'BLOB']],
    sql: 'CREATE TABLE ti (id INTEGER PRIMARY KEY NOT NULL, a, n INTEGER, r REAL, t TEXT, b BLOB)',
    keys: [[I(1n)], [I(2n)], [I(3n)], [I(-7n)], [I(4294967296n)], [I(9007199254740993n)]],
  },
  {
    name: 'tt', pks: ['k'], cols: [['a', ''], ['n', 'INTEGER']],
    sql: 'CREATE TABLE tt (k TEXT PRIMARY KEY NOT NULL, a, n INTEGER)',
    keys: [[T('a')], [T('b')], [T('é')], [T('')], [T('😀')]],
  },
  {
    name: 'tr', pks: ['k'], cols: [['a', ''], ['t', 'TEXT']],
    sql: 'CREATE TABLE tr (k REAL PRIMARY KEY NOT NULL, a, t TEXT)',
    keys: [[R(0.5)], [R(2.0)], [R(-1.25)], [R(1e300)]],
  },
  {
    name: 'tb', pks: ['k'], cols: [['a', ''], ['r', 'REAL']],
    sql: 'CREATE TABLE tb (k BLOB PRIMARY KEY NOT NULL, a, r REAL)',
    keys: [[B('00')], [B('01ff')], [B('')], [B('7f')]],
  },
  {
    name: 'tc', pks: ['x', 'y', 'z'], cols: [['a', ''], ['b', '']],
    sql: 'CREATE TABLE tc (x INTEGER NOT NULL, y TEXT NOT NULL, z BLOB NOT NULL, a, b, PRIMARY KEY (x, y, z))',
    keys: [1n, 2n].flatMap((x) => ['a', 'b'].flatMap((y) => ['00', '01'].map((z) => [I(x), T(y), B(z)]))),
  },
  {
    name: 'tp', pks: ['x', 'y'], cols: [],
    sql: 'CREATE TABLE tp (x INTEGER NOT NULL, y TEXT NOT NULL, PRIMARY KEY (x, y))',
    keys: [1n, 2n, 3n].flatMap((x) => ['p', 'q'].map((y) => [I(x), T(y)])),
  },
];

/** The schema as single statements. */
export const SCHEMA = TABLES.flatMap((t) => [t.sql, `SELECT crsql_as_crr('${t.name}')`]);

/** A value as an SQL literal of exactly its type. */
export function literal([type, v]) {
  switch (type) {
    case 'null': return 'NULL';
    case 'int': return v === -9223372036854775808n ? '(-9223372036854775807 - 1)' : String(v);
    case 'real': {
      if (v === Infinity) return '9e999';
      if (v === -Infinity) return '-9e999';
      const s = String(v);
      return /^-?\d+$/.test(s) ? `${s}.0` : s;
    }
    case 'text': return `'${v.replaceAll("'", "''")}'`;
    case 'blob': return `x'${v}'`;
    default: throw new Error(`bad value type ${type}`);
  }
}

const q = (name) => `"${name}"`;
const where = (table, key) => table.pks.map((p, i) => `${q(p)} = ${literal(key[i])}`).join(' AND ');

function randomValue(r, transport, declared) {
  if (r.chance(0.12)) return ['null', null];
  const domain = DOMAINS[transport];
  const own = AFFINITY_TYPE[declared];
  // plain: a typed column only gets its own type (affinity would make the values wa-sqlite
  // alters, e.g. INTEGER 7 -> REAL 7.0); typed: mostly its own type.
  const type = own && (transport === 'plain' || r.chance(0.75)) ? own : r.pick(TYPES);
  return [type, r.pick(domain[type])];
}

/**
 * A random transaction (a list of statements) on a database whose live keys are `live` (per
 * table, indexes into `keys`), updated as the statements are drawn. Statements often stay on the
 * previous one's row, so that one transaction updates a cell twice, or deletes and re-inserts a
 * row. `counts` tallies the kinds of statements.
 */
function randomTx(r, transport, live, deletedHere, counts) {
  const stmts = [];
  const n = 1 + r.int(3);
  let ti = r.int(TABLES.length);
  let k = -1;
  for (let i = 0; i < n; i++) {
    if (i > 0 && r.chance(0.4)) {
      ti = r.int(TABLES.length);
      k = -1;
    }
    const table = TABLES[ti];
    const present = live[ti];
    const absent = table.keys.map((_, x) => x).filter((x) => !present.has(x));
    const values = (cols) => cols.map(([, d]) => literal(randomValue(r, transport, d)));
    const roll = r.next();
    if (absent.length && (roll < 0.3 || !present.size)) {
      // Insert; now and then the key of a row deleted here (a resurrection).
      const again = absent.filter((x) => deletedHere[ti].has(x));
      k = absent.includes(k) ? k : again.length && r.chance(0.5) ? r.pick(again) : r.pick(absent);
      if (deletedHere[ti].has(k)) counts.resurrections++;
      const cols = table.cols.filter(() => r.chance(0.7));
      const names = [...table.pks, ...cols.map(([c]) => c)].map(q).join(', ');
      stmts.push(`INSERT INTO ${q(table.name)} (${names}) VALUES (${[...table.keys[k].map(literal), ...values(cols)].join(', ')})`);
      present.add(k);
      counts.inserts++;
      continue;
    }
    if (!present.size) continue;
    if (!present.has(k)) k = r.pick([...present]);
    const cols = table.cols.filter(() => r.chance(0.5));
    if (!cols.length && table.cols.length) cols.push(r.pick(table.cols));
    const row = where(table, table.keys[k]);
    if (roll < 0.65 && cols.length) {
      const sets = cols.map(([c], x) => `${q(c)} = ${values(cols)[x]}`);
      stmts.push(`UPDATE ${q(table.name)} SET ${sets.join(', ')} WHERE ${row}`);
      counts.updates++;
    } else if (roll < 0.82) {
      // An insert that finds the row: an upsert (an update; nothing without columns) or a
      // REPLACE (SQLite deletes the row and inserts the new one, unlisted columns NULL).
      const names = [...table.pks, ...cols.map(([c]) => c)].map(q).join(', ');
      const vals = [...table.keys[k].map(literal), ...values(cols)].join(', ');
      if (roll < 0.75) {
        const action = cols.length ? `UPDATE SET ${cols.map(([c]) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : 'NOTHING';
        stmts.push(`INSERT INTO ${q(table.name)} (${names}) VALUES (${vals}) ON CONFLICT DO ${action}`);
        counts.upserts++;
      } else {
        stmts.push(`INSERT OR REPLACE INTO ${q(table.name)} (${names}) VALUES (${vals})`);
        counts.replaces++;
      }
    } else {
      stmts.push(`DELETE FROM ${q(table.name)} WHERE ${row}`);
      present.delete(k);
      deletedHere[ti].add(k);
      counts.deletes++;
    }
  }
  return stmts;
}

const hex = (u8) => [...u8].map((x) => x.toString(16).padStart(2, '0')).join('');
const num = (x) => (Object.is(x, -0) ? '-0' : String(x));

/** A change value (synqlite's typed representation) as a canonical string. */
export function valKey(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return `int:${v}`;
  if (typeof v === 'number') return `real:${num(v)}`;
  if (v instanceof Float64Array) return `real:${num(v[0])}`;
  if (typeof v === 'string') return `text:${JSON.stringify(v)}`;
  if (v instanceof Uint8Array) return `blob:${hex(v)}`;
  return `?:${String(v)}`;
}

/** The clock state a change row describes, without its site id and local numbering. */
const stateKey = (c) => `${c[0]}|${hex(c[1])}|${c[2]}|${valKey(c[3])}|cv=${c[4]}|cl=${c[7]}`;

const toTuple = (c) => [c.table, c.pk, c.cid, c.val, c.col_version, c.db_version, c.site_id, c.cl, c.seq];

/** A synqlite database (main-thread client, memory storage). */
async function openSynqlite(name) {
  const db = await window.synqlite.openDatabase({ name, storage: 'memory' });
  return {
    kind: 'synqlite',
    site: hex(db.siteId),
    exec: (stmts) => (stmts.length === 1 ? db.exec(stmts[0]) : db.batch(stmts.map((s) => [s]))),
    rows: async (sql) => (await db.query(sql)).map((o) => Object.values(o)),
    // synqlite's rows are exact as they come (INTEGER bigint, REAL number or Float64Array).
    changes: async (_mode, since = 0) => (await db.changes({ since })).map(toTuple),
    apply: async (rows, _mode, chunk) => {
      for (let i = 0; i < rows.length; i += chunk) await db.applyChanges(rows.slice(i, i + chunk));
    },
    close: () => db.close(),
  };
}

/** A crsqlite-wasm database in the worker. */
async function openCrsqlite() {
  const { id, siteId } = await window.vlcn('open');
  return {
    kind: 'crsqlite',
    site: hex(siteId),
    exec: (stmts) => window.vlcn('exec', { id, sql: `BEGIN;\n${stmts.join(';\n')};\nCOMMIT;` }),
    rows: (sql) => window.vlcn('query', { id, sql }),
    changes: (mode = 'typed', since = 0) => window.vlcn('changes', { id, mode, since }),
    apply: (rows, mode, chunk) => window.vlcn('apply', { id, rows, mode, chunk }),
    close: () => window.vlcn('close', { id }),
  };
}

/** Pairs (from, to) of one sync pass over `n` databases, as vlcn's merge-check orders them. */
export function syncPlan(topology, n, hub = 1) {
  const plan = [];
  switch (topology) {
    case 'round-trip': // a -> b -> c, then back c -> b -> a
      for (let i = 0; i + 1 < n; i++) plan.push([i, i + 1]);
      for (let i = n - 1; i > 0; i--) plan.push([i, i - 1]);
      break;
    case 'pairwise': // every database sends to every other one
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) plan.push([i, j]);
      break;
    case 'hub': // everyone sends to the hub, then the hub to everyone ("centralized")
      for (let i = 0; i < n; i++) if (i !== hub) plan.push([i, hub]);
      for (let i = 0; i < n; i++) if (i !== hub) plan.push([hub, i]);
      break;
    case 'ring': // around the circle until everyone has everything ("loop": a -> b -> c -> a -> b)
      for (let k = 0; k < 2 * n - 2; k++) plan.push([k % n, (k + 1) % n]);
      break;
    default:
      throw new Error(`unknown topology ${topology}`);
  }
  return plan;
}

const dumpSql = (t) => {
  const cols = [...t.pks, ...t.cols.map(([c]) => c)];
  const cells = cols.map((c, i) => `typeof(${q(c)}) AS t${i}, CASE typeof(${q(c)}) WHEN 'integer' ` +
    `THEN CAST(${q(c)} AS TEXT) WHEN 'blob' THEN hex(${q(c)}) ELSE ${q(c)} END AS v${i}`);
  return `SELECT ${cells.join(', ')} FROM ${q(t.name)} ORDER BY ${t.pks.map(q).join(', ')}`;
};

/** Every row of every table, one string per row: typeof and value of each cell. */
async function dump(db) {
  const out = [];
  for (const t of TABLES) {
    for (const row of await db.rows(dumpSql(t))) {
      const cells = [];
      for (let i = 0; i < row.length; i += 2) {
        const v = row[i + 1];
        cells.push(`${row[i]}:${row[i] === 'real' ? num(v) : row[i] === 'text' ? JSON.stringify(v) : v}`);
      }
      out.push(`${t.name}(${cells.join(', ')})`);
    }
  }
  return out;
}

const definedOnly = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Lines only in `a`, lines only in `b` (both sorted). */
function diff(a, b, max = 12) {
  const sa = new Set(a);
  const sb = new Set(b);
  return {
    only: a.filter((x) => !sb.has(x)).slice(0, max),
    other: b.filter((x) => !sa.has(x)).slice(0, max),
  };
}

/**
 * Runs one scenario. `config`: { seed, dbs?, topology?, batching?, transport?, incremental?,
 * rounds?, maxTxs?, shuffle? }. The seed draws whatever is not given (always drawn, so pinning a
 * drawn value replays the same scenario): the number of databases (3-5) and their engines, the
 * topology, batching, transport, and whether syncs send everything (as merge-check does) or only
 * the rows since the last sync between the two (`incremental`). `rounds` (default 4) and `maxTxs`
 * (transactions per database per round, default 6) size the run; `shuffle` applies each sync's
 * rows in random order. Returns { ok: true, config, ...figures } or { ok: false, config, round,
 * what, between, diff, sites, log }.
 */
export async function runScenario(config) {
  const r = rng(config.seed);
  const drawn = {
    dbs: 3 + r.int(3),
    topology: r.pick(TOPOLOGIES),
    batching: r.pick(BATCHINGS),
    transport: r.pick(TRANSPORTS),
    incremental: r.chance(0.5),
  };
  const { dbs: n, topology, batching, transport, incremental } = { ...drawn, ...definedOnly(config) };
  const rounds = config.rounds ?? 4;
  const maxTxs = config.maxTxs ?? 6;
  const shuffle = config.shuffle ?? false;
  // At least one database of each engine, the rest at random, in random order.
  const kinds = ['synqlite', 'crsqlite'];
  for (let i = 2; i < n; i++) kinds.push(r.pick(['synqlite', 'crsqlite']));
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  const hub = r.int(n);
  const resolved = { seed: config.seed, dbs: kinds, topology, hub, batching, transport, incremental, rounds, maxTxs, shuffle };
  const started = performance.now();
  const dbs = [];
  const log = [];
  const stats = { txs: 0, inserts: 0, resurrections: 0, updates: 0, upserts: 0, replaces: 0, deletes: 0, equalWrites: 0, rowsSent: 0, applyCalls: 0 };
  try {
    for (let i = 0; i < n; i++) {
      dbs.push(kinds[i] === 'synqlite'
        ? await openSynqlite(`mixed-${config.seed}-${i}-${Math.random().toString(36).slice(2)}`)
        : await openCrsqlite());
    }
    for (const db of dbs) await db.exec(SCHEMA);
    // Clock states each site wrote itself: where two sites wrote the same state (same value and
    // versions), cr-sqlite 0.16 keeps whichever site id a database saw first, so the canonical
    // change set compares the site id only where a single site wrote the state.
    const authored = new Map();
    const deletedHere = dbs.map(() => TABLES.map(() => new Set()));
    const cursors = new Map();
    for (let round = 1; round <= rounds; round++) {
      for (let d = 0; d < n; d++) {
        const db = dbs[d];
        const flags = (await db.rows(`SELECT ${TABLES.flatMap((t) => t.keys.map((k) =>
          `EXISTS (SELECT 1 FROM ${q(t.name)} WHERE ${where(t, k)})`)).map((e, i) => `${e} AS f${i}`).join(', ')}`))[0];
        let f = 0;
        const live = TABLES.map((t) => new Set(t.keys.map((_, k) => k).filter(() => Number(flags[f++]) === 1)));
        const txs = r.int(maxTxs + 1);
        for (let x = 0; x < txs; x++) {
          const stmts = randomTx(r, transport, live, deletedHere[d], stats);
          if (!stmts.length) continue;
          log.push(`round ${round} db${d} (${db.kind}): ${stmts.join('; ')}`);
          await db.exec(stmts);
          stats.txs++;
        }
        for (const c of await db.changes('typed')) {
          if (hex(c[6]) !== db.site) continue;
          const key = stateKey(c);
          if (!authored.has(key)) authored.set(key, new Set());
          authored.get(key).add(db.site);
        }
      }
      for (const [from, to] of syncPlan(topology, n, hub)) {
        const since = incremental ? cursors.get(`${from}>${to}`) ?? 0 : 0;
        const rows = await dbs[from].changes(transport, since);
        if (rows.length) cursors.set(`${from}>${to}`, Math.max(...rows.map((c) => Number(c[5]))));
        if (shuffle) {
          for (let i = rows.length - 1; i > 0; i--) {
            const j = r.int(i + 1);
            [rows[i], rows[j]] = [rows[j], rows[i]];
          }
        }
        const chunk = batching === 'one' ? Infinity : batching === 'rows' ? 1 : 2 + r.int(7);
        log.push(`round ${round} sync db${from} -> db${to}: ${rows.length} rows, chunk ${chunk}`);
        await dbs[to].apply(rows, transport, chunk);
        stats.rowsSent += rows.length;
        stats.applyCalls += batching === 'one' ? 1 : Math.ceil(rows.length / chunk);
      }
      // Convergence: same rows, same canonical change sets.
      const views = [];
      for (const db of dbs) {
        const changes = (await db.changes('typed')).map((c) => {
          const key = stateKey(c);
          const site = (authored.get(key)?.size ?? 0) > 1 ? '(equal writes)' : hex(c[6]);
          return `${key}|site=${site}`;
        }).sort();
        views.push({ rows: await dump(db), changes });
      }
      for (let d = 1; d < n; d++) {
        for (const what of ['rows', 'changes']) {
          const a = views[0][what];
          const b = views[d][what];
          if (JSON.stringify(a) !== JSON.stringify(b)) {
            return {
              ok: false, config: resolved, round, what,
              between: [`db0 (${kinds[0]})`, `db${d} (${kinds[d]})`],
              diff: diff(a, b),
              sites: dbs.map((db, i) => `db${i} ${db.kind} ${db.site.slice(0, 12)}`),
              log,
            };
          }
        }
      }
      stats.rows = views[0].rows.length;
      stats.changeRows = views[0].changes.length;
    }
    stats.equalWrites = [...authored.values()].filter((sites) => sites.size > 1).length;
    return { ok: true, config: resolved, ...stats, ms: Math.round(performance.now() - started) };
  } finally {
    for (const db of dbs) await db.close().catch(() => undefined);
  }
}
