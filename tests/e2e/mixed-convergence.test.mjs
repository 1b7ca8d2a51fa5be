// synqlite and @vlcn.io/crsqlite-wasm 0.16 databases in one network, in the browser of this run
// (pages/mixed.html; crsqlite-wasm's databases live in pages/mixed-crsqlite-worker.mjs).
//
// First, JS numbers: crsqlite-wasm apps read `crsql_changes` through wa-sqlite, which hands out
// INTEGERs and REALs alike as numbers, and write them back with wa-sqlite's binding rule (a
// number that is an int32 binds as INTEGER, any other as REAL). synqlite's applyChanges must
// bind such rows the same way, or the same rows land with other SQL types and later tie-breaks
// (INTEGER > REAL) pick other winners. synqlite's own rows stay exact: INTEGER is a bigint,
// REAL a number, and an integral REAL that a number would turn into an INTEGER a one-element
// Float64Array.
//
// Then a randomized property test (pages/mixed-lib.mjs): 3-5 databases, each synqlite or
// crsqlite-wasm, random writes, synced over vlcn merge-check's topologies in several batchings,
// must end with the same rows and the same canonical change sets after every round. Fixed cases
// cover every topology x batching x way of carrying rows, full and incremental syncs; one
// more case uses a random seed, printed on failure. A failure prints the command that replays it:
// MIXED_SEED=<seed> plus MIXED_DBS, MIXED_TOPOLOGY, MIXED_BATCHING, MIXED_TRANSPORT,
// MIXED_INCREMENTAL, MIXED_ROUNDS, MIXED_MAX_TXS, MIXED_SHUFFLE (see pages/mixed-lib.mjs) to pin
// what the seed would otherwise draw or default.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage } from './harness.mjs';
import { ensureCrsqliteBundle } from '../../bench/crsqlite-bundle.mjs';

let server, browser, page;

before(async () => {
  await ensureCrsqliteBundle();
  server = await startServer();
  browser = await launch();
  page = await openPage(browser.context, server.url, 'mixed.html');
  await page.evaluate(() => {
    window.hex = (u8) => [...u8].map((x) => x.toString(16).padStart(2, '0')).join('');
    window.PROBE = `CREATE TABLE probe (id INTEGER PRIMARY KEY NOT NULL, v, r REAL);
      SELECT crsql_as_crr('probe')`;
    window.DUMP = `SELECT id, typeof(v) AS tv, CASE typeof(v) WHEN 'integer' THEN CAST(v AS TEXT) ELSE v END AS v,
      typeof(r) AS tr, r FROM probe ORDER BY id`;
    /** A fresh crsqlite-wasm database with the probe table: { id }. */
    window.vlcnProbe = async () => {
      const { id } = await vlcn('open');
      await vlcn('exec', { id, sql: PROBE });
      return { id };
    };
    window.synqliteProbe = async (name) => {
      const db = await synqlite.openDatabase({ name: `${name}-${Math.random().toString(36).slice(2)}`, storage: 'memory' });
      await db.exec(PROBE);
      return db;
    };
    window.vlcnDump = (id) => vlcn('query', { id, sql: DUMP });
    window.synqliteDump = async (db) => (await db.query(DUMP)).map((o) => [o.id, o.tv, o.v, o.tr, o.r]);
    /** Canonical change rows (typed; without db_version and seq). */
    window.canon = (rows) => rows.map((c) => `${c[0]}|${hex(c[1])}|${c[2]}|${mixed.valKey(c[3])}|${c[4]}|${hex(c[6])}|${c[7]}`).sort();
    window.tuple = (c) => [c.table, c.pk, c.cid, c.val, c.col_version, c.db_version, c.site_id, c.cl, c.seq];
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('plain numbers from a crsqlite-wasm peer land with the same SQL types and tie-breaks on both engines', async () => {
  const r = await page.evaluate(async () => {
    // Two crsqlite-wasm peers write the same rows concurrently; their rows reach a third
    // crsqlite-wasm database and a synqlite database as plain wa-sqlite values.
    const origin = await vlcnProbe();
    const rival = await vlcnProbe();
    await vlcn('exec', { id: origin.id, sql: `INSERT INTO probe (id, v, r) VALUES
      (1, -531, 4.0), (2, 2.0, 1.5), (3, 3000000000, NULL), (4, 2.5, NULL), (5, 9007199254740993, NULL),
      (6, 2147483647, NULL), (7, -2147483648, NULL), (8, 2147483648, NULL), (9, 0.0, NULL), (10, 7, 7.0)` });
    // Equal col_versions: the greater value wins, INTEGER above REAL.
    await vlcn('exec', { id: rival.id, sql: `INSERT INTO probe (id, v, r) VALUES
      (1, 5.5, 4.5), (2, 100.5, NULL), (3, 3000000001, NULL), (10, 6.5, 8.5)` });
    const batches = [await vlcn('changes', { id: origin.id, mode: 'plain' }), await vlcn('changes', { id: rival.id, mode: 'plain' })];
    const kinds = [...new Set(batches.flat().map((c) => typeof c[3]))].sort();
    const v = await vlcnProbe();
    const s = await synqliteProbe('plain-numbers');
    for (const rows of batches) {
      await vlcn('apply', { id: v.id, rows, mode: 'plain' });
      await s.applyChanges(rows);
    }
    const out = {
      kinds,
      v: await vlcnDump(v.id),
      s: await synqliteDump(s),
      vChanges: canon(await vlcn('changes', { id: v.id, mode: 'typed' })),
      sChanges: canon((await s.changes()).map(tuple)),
    };
    await s.close();
    for (const db of [origin, rival, v]) await vlcn('close', { id: db.id });
    return out;
  });
  assert.deepEqual(r.kinds, ['bigint', 'number', 'object'], 'the rows hold plain numbers (and a bigint beyond 2^53)');
  assert.deepEqual(r.s, r.v, 'same rows, same SQL types');
  assert.deepEqual(r.s, [
    [1, 'integer', '-531', 'real', 4.5], // INTEGER -531 beats REAL 5.5; REAL 4.5 beats 4.0
    [2, 'integer', '2', 'real', 1.5], // REAL 2.0 read as the number 2: an INTEGER, beats 100.5
    [3, 'real', 3000000001, 'null', null], // INTEGERs beyond int32 read as numbers: REALs
    [4, 'real', 2.5, 'null', null],
    [5, 'integer', '9007199254740993', 'null', null], // a bigint: INTEGER
    [6, 'integer', '2147483647', 'null', null],
    [7, 'integer', '-2147483648', 'null', null],
    [8, 'real', 2147483648, 'null', null],
    [9, 'integer', '0', 'null', null],
    [10, 'integer', '7', 'real', 8.5], // INTEGER 7 (from the number 7) beats REAL 6.5
  ]);
  assert.deepEqual(r.sChanges, r.vChanges, 'same change rows');
});

test('numbers at the edges of the int32 rule bind alike on both engines', async () => {
  const r = await page.evaluate(async () => {
    const numbers = [-0, 2147483647, 2147483648, -2147483648, -2147483649, 0.5, Infinity, -Infinity, 2 ** 53, 1e-300];
    const site = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    // Column changes for rows 1..n (pk: one INTEGER column), as a peer would send them.
    const rows = numbers.map((v, i) => ['probe', Uint8Array.of(1, 0x09, i + 1), 'v', v, 1, 1, site, 1, 0]);
    const v = await vlcnProbe();
    await vlcn('apply', { id: v.id, rows, mode: 'plain' });
    const s = await synqliteProbe('edges');
    await s.applyChanges(rows);
    const out = { v: await vlcnDump(v.id), s: await synqliteDump(s) };
    await s.close();
    await vlcn('close', { id: v.id });
    return out;
  });
  assert.deepEqual(r.s, r.v);
  assert.deepEqual(r.s.map((x) => x[1]),
    ['integer', 'integer', 'real', 'integer', 'real', 'real', 'real', 'real', 'real', 'real']);
});

test('an integral REAL travels between synqlite databases as a one-element Float64Array, exactly', async () => {
  const r = await page.evaluate(async () => {
    const a = await synqliteProbe('real-a');
    const b = await synqliteProbe('real-b');
    // Concurrent writes with equal col_versions: REAL 2.5 beats REAL 2.0; had 2.0 travelled as
    // the number 2 (an INTEGER), it would beat 2.5 on b only.
    await a.exec('INSERT INTO probe (id, v, r) VALUES (1, 2.0, 3.0), (2, -7.0, NULL), (3, 7, 3000000000.0), (4, 0.5, NULL)');
    await b.exec('INSERT INTO probe (id, v) VALUES (1, 2.5)');
    const rows = await a.changes();
    const vals = Object.fromEntries(rows.filter((c) => c.cid !== '-1')
      .map((c) => [`${c.pk[c.pk.length - 1]}.${c.cid}`, c.val instanceof Float64Array ? `Float64Array[${c.val}]` : `${typeof c.val}:${c.val}`]));
    await b.applyChanges(rows.map(tuple)); // the tuple form too
    await a.applyChanges(await b.changes());
    // A Float64Array must hold exactly one number.
    const bad = { ...rows.find((c) => c.val instanceof Float64Array), val: Float64Array.of(1, 2) };
    const err = await b.applyChanges([bad]).then(() => null, (e) => ({ code: e.code, message: e.message }));
    const out = { vals, a: await synqliteDump(a), b: await synqliteDump(b), err };
    await a.close();
    await b.close();
    return out;
  });
  assert.deepEqual(r.vals, {
    '1.v': 'Float64Array[2]', '1.r': 'Float64Array[3]', '2.v': 'Float64Array[-7]',
    '2.r': 'object:null', '3.v': 'bigint:7', '3.r': 'number:3000000000', '4.v': 'number:0.5', '4.r': 'object:null',
  });
  assert.deepEqual(r.a, r.b);
  assert.deepEqual(r.b, [
    [1, 'real', 2.5, 'real', 3],
    [2, 'real', -7, 'null', null],
    [3, 'integer', '7', 'real', 3000000000],
    [4, 'real', 0.5, 'null', null],
  ]);
  assert.equal(r.err?.code, 'INVALID_CHANGE');
  assert.match(r.err.message, /Float64Array/);
});

// --- randomized convergence ---

const TOPOLOGIES = ['round-trip', 'pairwise', 'hub', 'ring'];
const BATCHINGS = ['one', 'chunks', 'rows'];
// Every topology x batching x transport once; full and incremental syncs alternate so that
// each pair of those runs with both.
const FIXED = TOPOLOGIES.flatMap((topology, t) => BATCHINGS.flatMap((batching, b) => ['typed', 'plain'].map((transport, x) => ({
  seed: 1000 + 7 * (6 * t + 2 * b + x),
  topology,
  batching,
  transport,
  incremental: (t + b + x) % 2 === 1,
}))));

/** MIXED_SEED (and the other MIXED_* variables) from the environment, or null. */
function replayCase() {
  const env = process.env;
  if (!env.MIXED_SEED) return null;
  const flag = (v) => (v === undefined ? undefined : v === '1' || v === 'true');
  const number = (v) => (v === undefined ? undefined : Number(v));
  return {
    seed: Number(env.MIXED_SEED) >>> 0,
    dbs: number(env.MIXED_DBS),
    topology: env.MIXED_TOPOLOGY,
    batching: env.MIXED_BATCHING,
    transport: env.MIXED_TRANSPORT,
    incremental: flag(env.MIXED_INCREMENTAL),
    rounds: number(env.MIXED_ROUNDS),
    maxTxs: number(env.MIXED_MAX_TXS),
    shuffle: flag(env.MIXED_SHUFFLE),
  };
}

async function runCase(config, label) {
  const r = await page.evaluate((c) => mixed.runScenario(c), config);
  if (!r.ok) {
    const c = r.config;
    const replay = `MIXED_SEED=${c.seed} MIXED_DBS=${c.dbs.length} MIXED_TOPOLOGY=${c.topology} ` +
      `MIXED_BATCHING=${c.batching} MIXED_TRANSPORT=${c.transport} MIXED_INCREMENTAL=${c.incremental ? 1 : 0} ` +
      `MIXED_ROUNDS=${c.rounds} MIXED_MAX_TXS=${c.maxTxs} MIXED_SHUFFLE=${c.shuffle ? 1 : 0} ` +
      'node --test --test-concurrency=1 tests/e2e/mixed-convergence.test.mjs';
    assert.fail([
      `${label}: databases diverged in round ${r.round} (${r.what}) between ${r.between.join(' and ')}`,
      `config: ${JSON.stringify(c)}`,
      `sites: ${r.sites.join(', ')}`,
      `only in ${r.between[0]}:`, ...r.diff.only.map((x) => `  ${x}`),
      `only in ${r.between[1]}:`, ...r.diff.other.map((x) => `  ${x}`),
      'history:', ...r.log.map((x) => `  ${x}`),
      `replay: ${replay}`,
    ].join('\n'));
  }
  if (process.env.DEBUG) console.error(label, JSON.stringify(r));
  return r;
}

const replay = replayCase();
if (replay) {
  test(`replay: seed ${replay.seed}`, { timeout: 120_000 }, async () => {
    const r = await runCase(replay, `seed ${replay.seed}`);
    console.error(JSON.stringify(r));
  });
} else {
  test('mixed networks converge: every topology x batching x transport (fixed seeds)', { timeout: 120_000 }, async () => {
    for (const c of FIXED) await runCase(c, `seed ${c.seed} (${c.topology}, ${c.batching}, ${c.transport})`);
  });

  test('mixed networks converge: a random seed', { timeout: 60_000 }, async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    await runCase({ seed }, `random seed ${seed}`);
  });
}
