// Interop with the real @vlcn.io/crsqlite-wasm 0.16 (npm), in the browser of this run.
//
// synqlite runs through its main-thread client (openDatabase, OPFS, or IndexedDB where the
// browser has no OPFS); crsqlite-wasm runs in its
// own dedicated module worker on its default IndexedDB VFS (pages/crsqlite-worker.mjs), reading
// `crsql_changes` with typeof(val) and writing with `INSERT INTO crsql_changes` in one
// transaction. Change rows travel in synqlite's JS representation (INTEGER = bigint,
// REAL = number): see the worker's header for how they cross wa-sqlite's type mapping.
//
// Both ends must converge to the same rows (compared cell by cell with typeof()) and, since both
// follow cr-sqlite's rules, to the same change rows (compared without db_version and seq, which
// are local to each database: cr-sqlite stamps a merged clock max(local + 1, incoming) per row
// and keeps the incoming seq, synqlite gives all the rows of one applyChanges one db_version and
// renumbers seq; both serve every merged row to a `since` cursor, see the relay test). Where
// cr-sqlite itself does not converge, the tests pin down that synqlite behaves like a
// crsqlite-wasm peer: equal concurrent writes keep each end's site id; a primary-key change made
// in crsqlite-wasm reaches its peers without the row's columns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage } from './harness.mjs';
import { ensureCrsqliteBundle } from '../../bench/crsqlite-bundle.mjs';

let server, browser, page, storage;

const ITEMS = `CREATE TABLE IF NOT EXISTS items (
  list TEXT NOT NULL, pos INTEGER NOT NULL, n INTEGER, r REAL, t TEXT, b BLOB, z,
  PRIMARY KEY (list, pos));
SELECT crsql_as_crr('items');`;
// A primary key over every packable type, to compare pk packing byte for byte.
const KEYS = `CREATE TABLE IF NOT EXISTS keys (
  i INTEGER NOT NULL, f REAL NOT NULL, s TEXT NOT NULL, b BLOB NOT NULL, v,
  PRIMARY KEY (i, f, s, b));
SELECT crsql_as_crr('keys');`;
// pk-only table: its change rows are sentinels only.
const TAGS = `CREATE TABLE IF NOT EXISTS tags (name TEXT NOT NULL PRIMARY KEY);
SELECT crsql_as_crr('tags');`;

before(async () => {
  await ensureCrsqliteBundle();
  server = await startServer();
  browser = await launch();
  page = await openPage(browser.context, server.url, 'interop.html');
  storage = await durableStorage(page);
  await page.evaluate(async ([schema, storage]) => {
    // Helpers shared by the tests (all in the page).
    window.hex = (u8) => [...u8].map((x) => x.toString(16).padStart(2, '0')).join('');
    /** A change row as a canonical string, without the local db_version and seq. */
    window.changeKey = (c) => {
      const v = c.val;
      const val = v === null ? 'null'
        : typeof v === 'bigint' ? `int:${v}`
          : typeof v === 'number' || v instanceof Float64Array ? `real:${Object.is(+v, -0) ? '-0' : +v}`
            : typeof v === 'string' ? `text:${JSON.stringify(v)}`
              : v instanceof Uint8Array ? `blob:${hex(v)}` : `?:${String(v)}`;
      const clock = `${c.table}|${hex(c.pk)}|${c.cid}`;
      const site = equalWrites.has(clock) ? '(either)' : hex(c.site_id).slice(0, 8);
      return `${clock}|${val}|cv=${c.col_version}|site=${site}|cl=${c.cl}`;
    };
    // Clocks both ends wrote with the same col_version and value: merging them is a no-op under
    // cr-sqlite 0.16's rules, so each end keeps its own site id there (see the test below).
    window.equalWrites = new Set();
    window.changeSet = (rows) => rows.map(changeKey).sort();
    window.dumpSql = (table, columns, orderBy) => `SELECT ${columns.map((c, i) =>
      `typeof("${c}") AS t${i}, CASE typeof("${c}") WHEN 'integer' THEN CAST("${c}" AS TEXT) ` +
      `WHEN 'blob' THEN hex("${c}") ELSE "${c}" END AS v${i}`).join(', ')} FROM "${table}" ORDER BY ${orderBy}`;
    const TABLES = {
      items: [['list', 'pos', 'n', 'r', 't', 'b', 'z'], 'list, pos'],
      keys: [['i', 'f', 's', 'b', 'v'], 'i, f, s, b'],
      tags: [['name'], 'name'],
    };
    /** Full contents of a table on both ends: rows of [typeof, value] per column. */
    window.dumps = async (table) => {
      const [cols, order] = TABLES[table];
      const sql = dumpSql(table, cols, order);
      const s = (await S.query(sql)).map((r) => cols.map((_, i) => [r[`t${i}`], r[`v${i}`]]));
      const v = (await vlcn('raw', { name: V, sql })).map((r) => cols.map((_, i) => [r[2 * i], r[2 * i + 1]]));
      return { s, v };
    };
    /** Both ends' change rows as canonical sets. */
    window.changeSets = async () => ({
      s: changeSet(await S.changes({ since: 0 })),
      v: changeSet(await vlcn('changes', { name: V, since: 0 })),
    });
    // Each end remembers how far it has sent its changes to the other.
    window.cursor = { s: 0, v: 0 };
    /** Sends crsqlite-wasm's new changes to synqlite. */
    window.vToS = async () => {
      const rows = await vlcn('changes', { name: V, since: cursor.v });
      if (rows.length) cursor.v = Math.max(...rows.map((r) => r.db_version));
      return { rows: rows.length, ...(await S.applyChanges(rows)) };
    };
    /** Sends synqlite's new changes to crsqlite-wasm. */
    window.sToV = async () => {
      const rows = await S.changes({ since: cursor.s });
      if (rows.length) cursor.s = Math.max(...rows.map((r) => Number(r.db_version)));
      await vlcn('applyChanges', { name: V, rows });
      return { rows: rows.length };
    };
    window.V = 'interop-vlcn';
    const info = await vlcn('open', { name: V });
    window.vSite = info.siteId;
    window.S = await synqlite.openDatabase({ name: 'interop-synqlite', storage });
    for (const sql of schema) {
      await S.exec(sql);
      await vlcn('exec', { name: V, sql });
    }
  }, [[ITEMS, KEYS, TAGS], storage]);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Asserts both ends hold the same rows (typeof and value of every cell). */
async function assertSameRows(table, message) {
  const d = await page.evaluate((t) => dumps(t), table);
  assert.deepEqual(d.s, d.v, `${table}: ${message}`);
  return d.s;
}

async function assertSameChanges(message) {
  const c = await page.evaluate(() => changeSets());
  assert.deepEqual(c.s, c.v, message);
  return c.s;
}

test('environment: crsqlite-wasm 0.16 on IndexedDB, synqlite on OPFS (else IndexedDB), distinct 16-byte site ids', async () => {
  const r = await page.evaluate(async () => ({
    storage: S.storage,
    s: hex(S.siteId),
    v: hex(vSite),
    sqlite: (await vlcn('raw', { name: V, sql: 'SELECT sqlite_version(), crsql_db_version()' }))[0],
  }));
  assert.equal(r.storage, storage);
  assert.equal(r.s.length, 32);
  assert.equal(r.v.length, 32);
  assert.notEqual(r.s, r.v);
});

test('wa-sqlite type mapping (why the worker reads typeof and casts REALs)', async () => {
  const r = await page.evaluate(async () => {
    await vlcn('exec', { name: V, sql: 'CREATE TEMP TABLE probe (x)' });
    await vlcn('exec', { name: V, sql: 'INSERT INTO probe VALUES (?), (?), (?), (?), (?)',
      bind: [2, 2.5, 3_000_000_000, 7n, new Uint8Array(0)] });
    const raw = await vlcn('raw', { name: V, sql: 'SELECT typeof(x), x, typeof(2.0), 2.0, 9007199254740993 FROM probe' });
    await vlcn('exec', { name: V, sql: 'DROP TABLE probe' });
    return raw.map((r) => r.map((x) => (typeof x === 'bigint' ? `${x}n` : x)));
  });
  // A number binds as INTEGER when it fits in int32, else as REAL; INTEGERs read back as numbers
  // (REAL 2.0 reads as 2), bigints only beyond 2^53; an empty Uint8Array binds as NULL.
  assert.deepEqual(r.map((x) => [x[0], x[1]]),
    [['integer', 2], ['real', 2.5], ['real', 3_000_000_000], ['integer', 7], ['null', null]]);
  assert.deepEqual(r[0].slice(2), ['real', 2, '9007199254740993n']);
});

test('pk packing is byte-identical for every pk type (rows inserted on each side independently)', async () => {
  const r = await page.evaluate(async () => {
    const rows = [
      [0n, 0.5, '', new Uint8Array([])],
      [1n, -1.25, 'a', new Uint8Array([0])],
      [-1n, 1e300, 'é😀', new Uint8Array([1, 2, 3])],
      [127n, 2.0, 'x'.repeat(300), new Uint8Array(256).fill(7)],
      [128n, -0.1, 'b', new Uint8Array([255])],
      [-129n, 3.0, 'c', new Uint8Array([9])],
      [9007199254740993n, 1.5, 'd', new Uint8Array([8])],
      [-9223372036854775808n, 4.0, 'e', new Uint8Array([6])],
      [9223372036854775807n, 5.0, 'f', new Uint8Array([5])],
      [65536n, 6.0, 'g', new Uint8Array([4])],
    ];
    // Same SQL on both: REALs through CAST so an integral REAL stays REAL on crsqlite-wasm, and
    // the empty blob through coalesce (wa-sqlite binds it as NULL).
    const sql = "INSERT INTO keys (i, f, s, b, v) VALUES (?, CAST(? AS REAL), ?, coalesce(?, x''), NULL)";
    for (const row of rows) {
      await S.exec(sql, row);
      await vlcn('exec', { name: V, sql, bind: row });
    }
    const pks = async (list) => list.filter((c) => c.table === 'keys').map((c) => hex(c.pk)).sort();
    for (const c of await S.changes({ since: 0 })) equalWrites.add(`${c.table}|${hex(c.pk)}|${c.cid}`);
    return {
      s: await pks(await S.changes({ since: 0 })),
      v: await pks(await vlcn('changes', { name: V, since: 0 })),
      // crsqlite-wasm's own packing function, against DESIGN.md's vectors.
      packed: (await vlcn('raw', { name: V, sql: "SELECT hex(crsql_pack_columns(1, 'a'))" }))[0][0],
    };
  });
  assert.equal(r.packed, '0209010B0161');
  assert.equal(r.s.length, 10);
  assert.deepEqual(r.s, r.v);
  // Both sides made their own rows: after an exchange, each clock has two writers with equal
  // col_version and equal (NULL) values; nothing changes and both ends agree.
  await page.evaluate(async () => { await vToS(); await sToV(); });
  await assertSameRows('keys', 'after exchanging independently inserted rows');
  await assertSameChanges('keys: same change rows (site ids aside)');
});

test('crsqlite-wasm -> synqlite: inserts with every type, updates, deletes', async () => {
  const r = await page.evaluate(async () => {
    const ins = 'INSERT INTO items VALUES (?, ?, ?, CAST(? AS REAL), ?, ?, ?)';
    const data = [
      ['v', 1, 7n, 2.0, 'seven', new Uint8Array([7]), null],
      ['v', 2, -3n, 0.5, 'é😀', null, 'text in z'],
      ['v', 3, 9007199254740993n, -1e-300, '', new Uint8Array([]), 42n],
      ['v', 4, 0n, 1.5, null, new Uint8Array([0, 255]), 2.5],
      ['v', 5, null, null, null, null, new Uint8Array([1, 2])],
      ['v', 6, -9223372036854775808n, 1e300, 'six', null, null],
    ];
    for (const row of data) await vlcn('exec', { name: V, sql: ins, bind: row });
    await vlcn('exec', { name: V, sql: "UPDATE items SET t = 'SEVEN', z = CAST(3 AS REAL) WHERE list = 'v' AND pos = 1" });
    await vlcn('exec', { name: V, sql: "UPDATE items SET n = n + 1 WHERE list = 'v' AND pos = 1" });
    await vlcn('exec', { name: V, sql: "DELETE FROM items WHERE list = 'v' AND pos = 5" });
    await vlcn('exec', { name: V, sql: "UPDATE items SET b = x'' WHERE list = 'v' AND pos = 3" });
    const first = await vToS();
    const again = await S.applyChanges(await vlcn('changes', { name: V, since: 0 }));
    return { first, again };
  });
  assert.ok(r.first.rows > 0);
  assert.ok(r.first.applied > 0);
  assert.equal(r.again.applied, 0, 'applying the same rows twice is a no-op');
  const rows = await assertSameRows('items', 'after crsqlite-wasm -> synqlite');
  assert.equal(rows.length, 5);
  assert.deepEqual(rows[0], [['text', 'v'], ['integer', '1'], ['integer', '8'], ['real', 2], ['text', 'SEVEN'], ['blob', '07'], ['real', 3]]);
  assert.deepEqual(rows[2][2], ['integer', '9007199254740993']);
  assert.deepEqual(rows[2][5], ['blob', ''], 'empty BLOB');
  await assertSameChanges('change rows after crsqlite-wasm -> synqlite');
});

test('synqlite -> crsqlite-wasm: inserts with every type, updates, deletes, re-insert after delete', async () => {
  const r = await page.evaluate(async () => {
    const ins = 'INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)';
    await S.batch([
      [ins, ['s', 1, 1n, 2.0, 'one', new Uint8Array([1]), null]],
      [ins, ['s', 2, -9007199254740993n, 0.25, 'two', null, 1n]],
      [ins, ['s', 3, 3n, 3.0, 'three', new Uint8Array([3, 3]), 'z']],
      [ins, ['s', 4, 4n, null, null, null, 4.0]],
      [ins, ['s', 5, 5n, 5.0, '', new Uint8Array(0), new Uint8Array(0)]],
    ]);
    await S.exec("UPDATE items SET r = 10.0, z = x'ff' WHERE list = 's' AND pos = 1");
    await S.exec("DELETE FROM items WHERE list = 's' AND pos = 3");
    await S.exec("DELETE FROM items WHERE list = 's' AND pos = 4");
    await S.exec("INSERT INTO items VALUES ('s', 4, 40, 4.5, 'back', NULL, NULL)"); // cl 3
    // A row crsqlite-wasm made, updated and deleted here.
    await S.exec("UPDATE items SET t = 'from synqlite' WHERE list = 'v' AND pos = 2");
    await S.exec("DELETE FROM items WHERE list = 'v' AND pos = 4");
    await S.exec("INSERT INTO tags VALUES ('red'), ('blue')");
    await S.exec("DELETE FROM tags WHERE name = 'blue'");
    const first = await sToV();
    const clOf4 = (await S.changes({ since: 0 })).find((c) => c.table === 'items' && c.cid === '-1' &&
      hex(c.pk) === hex(new Uint8Array([2, 0x0b, 1, 0x73, 0x09, 4])));
    return { first, cl: clOf4?.cl };
  });
  assert.ok(r.first.rows > 0);
  assert.equal(r.cl, 3, 're-insert after delete: causal length 3');
  const rows = await assertSameRows('items', 'after synqlite -> crsqlite-wasm');
  assert.deepEqual(rows.find((x) => x[0][1] === 's' && x[1][1] === '1'),
    [['text', 's'], ['integer', '1'], ['integer', '1'], ['real', 10], ['text', 'one'], ['blob', '01'], ['blob', 'FF']]);
  assert.deepEqual(rows.find((x) => x[0][1] === 's' && x[1][1] === '4')[3], ['real', 4.5]);
  assert.ok(!rows.some((x) => x[0][1] === 's' && x[1][1] === '3'));
  assert.deepEqual(rows.find((x) => x[0][1] === 's' && x[1][1] === '5').slice(4), [['text', ''], ['blob', ''], ['blob', '']]);
  assert.deepEqual(await assertSameRows('tags', 'pk-only table'), [[['text', 'red']]]);
  await assertSameChanges('change rows after synqlite -> crsqlite-wasm');
});

test('concurrent edits on both sides converge (col_version, value tie-breaks across types, deletes, resurrection)', async () => {
  await page.evaluate(async () => {
    const both = async (sqlS, sqlV) => {
      await S.exec(sqlS);
      await vlcn('exec', { name: V, sql: sqlV ?? sqlS });
    };
    // Same column, one write each side: equal col_version -> the greater value wins, across
    // types INTEGER > REAL > TEXT > BLOB > NULL.
    await both("UPDATE items SET z = 5 WHERE list = 'v' AND pos = 1", "UPDATE items SET z = 5.5 WHERE list = 'v' AND pos = 1");
    await both("UPDATE items SET z = 'text' WHERE list = 'v' AND pos = 2", "UPDATE items SET z = x'00' WHERE list = 'v' AND pos = 2");
    await both("UPDATE items SET z = NULL WHERE list = 's' AND pos = 1", "UPDATE items SET z = 'any text' WHERE list = 's' AND pos = 1");
    await both("UPDATE items SET r = 1.0 WHERE list = 's' AND pos = 2", "UPDATE items SET r = 1 WHERE list = 's' AND pos = 2");
    await both("UPDATE items SET t = 'abc' WHERE list = 'v' AND pos = 6", "UPDATE items SET t = 'abd' WHERE list = 'v' AND pos = 6");
    await both("UPDATE items SET b = x'0102' WHERE list = 'v' AND pos = 3", "UPDATE items SET b = x'01' WHERE list = 'v' AND pos = 3");
    // TEXT compares by UTF-8 bytes (U+1F600 > U+FF5A), not UTF-16 code units (the other way round).
    await both("UPDATE items SET t = '😀' WHERE list = 'v' AND pos = 2", "UPDATE items SET t = 'ｚ' WHERE list = 'v' AND pos = 2");
    // INTEGERs compare numerically (3 > -5), not by their bytes.
    await both("UPDATE items SET n = -5 WHERE list = 'v' AND pos = 2", "UPDATE items SET n = 3 WHERE list = 'v' AND pos = 2");
    await both("UPDATE items SET r = -0.5 WHERE list = 'v' AND pos = 2", "UPDATE items SET r = -2.5 WHERE list = 'v' AND pos = 2");
    // Higher col_version wins over a greater value.
    await S.exec("UPDATE items SET n = 1 WHERE list = 's' AND pos = 4");
    await S.exec("UPDATE items SET n = 2 WHERE list = 's' AND pos = 4");
    await vlcn('exec', { name: V, sql: "UPDATE items SET n = 999 WHERE list = 's' AND pos = 4" });
    // Update on one side, delete on the other: the delete (greater causal length) wins.
    await S.exec("UPDATE items SET t = 'edited' WHERE list = 'v' AND pos = 3");
    await vlcn('exec', { name: V, sql: "DELETE FROM items WHERE list = 'v' AND pos = 3" });
    // Delete + re-insert on one side (cl 3) beats a plain update on the other (cl 1).
    await vlcn('exec', { name: V, sql: "DELETE FROM items WHERE list = 's' AND pos = 2" });
    await vlcn('exec', { name: V, sql: "INSERT INTO items VALUES ('s', 2, 22, 2.25, 'again', NULL, NULL)" });
    await S.exec("UPDATE items SET t = 'lost' WHERE list = 's' AND pos = 2");
    // Both insert the same new row with different values.
    await S.exec("INSERT INTO items VALUES ('both', 1, 1, 1.5, 'from s', x'aa', NULL)");
    await vlcn('exec', { name: V, sql: "INSERT INTO items VALUES ('both', 1, 2, 0.5, 'from v', x'bb', 7)" });
    // Both delete the same row; both insert the same pk-only row: equal writes.
    await both("DELETE FROM items WHERE list = 'v' AND pos = 6");
    await both("INSERT INTO tags VALUES ('green')");
    for (const c of await S.changes({ since: 0 })) {
      if (c.cid === '-1' && (c.table === 'tags' ? c.pk.length === 8 : hex(c.pk) === '020b01760906')) {
        equalWrites.add(`${c.table}|${hex(c.pk)}|${c.cid}`);
      }
    }
    await vToS();
    await sToV();
  });
  const rows = await assertSameRows('items', 'after concurrent edits');
  const get = (list, pos) => rows.find((x) => x[0][1] === list && x[1][1] === String(pos));
  assert.deepEqual(get('v', 1)[6], ['integer', '5'], 'INTEGER > REAL');
  assert.deepEqual(get('v', 2)[6], ['text', 'text'], 'TEXT > BLOB');
  assert.deepEqual(get('s', 1)[6], ['text', 'any text'], 'TEXT > NULL');
  assert.deepEqual(get('s', 4)[2], ['integer', '2'], 'higher col_version wins');
  assert.deepEqual(get('v', 2).slice(2, 5), [['integer', '3'], ['real', -0.5], ['text', '😀']], 'numeric and UTF-8 order');
  assert.equal(get('v', 3), undefined, 'delete beats a concurrent update');
  assert.equal(get('v', 6), undefined);
  assert.deepEqual(get('s', 2).slice(2, 5), [['integer', '22'], ['real', 2.25], ['text', 'again']], 'resurrected row wins');
  assert.deepEqual(get('both', 1).slice(2), [['integer', '2'], ['real', 1.5], ['text', 'from v'], ['blob', 'BB'], ['integer', '7']]);
  await assertSameRows('tags', 'tags after concurrent edits');
  await assertSameChanges('change rows after concurrent edits');
});

test('REAL values that are integral stay REAL through crsqlite-wasm and back (tie-break sees REAL < INTEGER)', async () => {
  await page.evaluate(async () => {
    await vlcn('exec', { name: V, sql: "INSERT INTO items VALUES ('real', 1, 1, 1.0, NULL, NULL, 2.0)" });
    await vToS();
    await S.exec("UPDATE items SET z = 16.0 WHERE list = 'real' AND pos = 1");
    await sToV();
    // Concurrent: REAL 100.0 (synqlite) vs INTEGER 3 (crsqlite-wasm): INTEGER wins on both.
    await S.exec("UPDATE items SET z = 100.0 WHERE list = 'real' AND pos = 1");
    await vlcn('exec', { name: V, sql: "UPDATE items SET z = 3 WHERE list = 'real' AND pos = 1" });
    await sToV();
    await vToS();
  });
  const rows = await assertSameRows('items', 'integral REALs');
  const row = rows.find((x) => x[0][1] === 'real');
  assert.deepEqual(row[3], ['real', 1]);
  assert.deepEqual(row[6], ['integer', '3']);
  await assertSameChanges('change rows with integral REALs');
});

test('excludeSite leaves out the peer\'s own rows; a second exchange moves nothing', async () => {
  const r = await page.evaluate(async () => {
    const all = await S.changes({ since: 0 });
    const noV = await S.changes({ since: 0, excludeSite: vSite });
    const fromV = all.filter((c) => hex(c.site_id) === hex(vSite)).length;
    const before = await changeSets();
    await vlcn('applyChanges', { name: V, rows: all });
    await S.applyChanges(await vlcn('changes', { name: V, since: 0 }));
    const after = await changeSets();
    return { all: all.length, noV: noV.length, fromV, same: JSON.stringify(before) === JSON.stringify(after) };
  });
  assert.ok(r.fromV > 0);
  assert.equal(r.noV, r.all - r.fromV);
  assert.ok(r.same, 're-sending everything changes nothing on either end');
});

test('equal concurrent writes keep each end\'s own site id, as between two crsqlite-wasm databases', async () => {
  const r = await page.evaluate(async () => {
    // The reference: two crsqlite-wasm databases doing the same (both insert one pk-only row).
    const sites = {};
    for (const name of ['ref-1', 'ref-2']) {
      sites[name] = hex((await vlcn('open', { name })).siteId);
      await vlcn('exec', { name, sql: "CREATE TABLE tags (name TEXT NOT NULL PRIMARY KEY); SELECT crsql_as_crr('tags')" });
      await vlcn('exec', { name, sql: "INSERT INTO tags VALUES ('green')" });
    }
    await vlcn('applyChanges', { name: 'ref-2', rows: await vlcn('changes', { name: 'ref-1' }) });
    await vlcn('applyChanges', { name: 'ref-1', rows: await vlcn('changes', { name: 'ref-2' }) });
    const site = async (name) => hex((await vlcn('changes', { name }))[0].site_id);
    const ref = { one: await site('ref-1') === sites['ref-1'], two: await site('ref-2') === sites['ref-2'] };
    // synqlite and crsqlite-wasm after the concurrent test above ('green' inserted on both).
    const green = (rows) => hex(rows.find((c) => c.table === 'tags' && c.pk.length === 8).site_id);
    return {
      ref,
      s: green(await S.changes({ since: 0 })) === hex(S.siteId),
      v: green(await vlcn('changes', { name: V })) === hex(vSite),
    };
  });
  assert.deepEqual(r.ref, { one: true, two: true }, 'crsqlite-wasm keeps its own site id on an equal write');
  assert.deepEqual({ s: r.s, v: r.v }, { s: true, v: true }, 'so do synqlite and crsqlite-wasm with each other');
});

test('relays: rows merged from the other library are served again by changes since a cursor', async () => {
  const r = await page.evaluate(async (schema) => {
    // A third peer of each kind that only talks to the other library's database, incrementally.
    const V2 = 'relay-vlcn';
    await vlcn('open', { name: V2 });
    const S2 = await synqlite.openDatabase({ name: 'relay-synqlite', storage: 'memory' });
    for (const sql of schema) {
      await vlcn('exec', { name: V2, sql });
      await S2.exec(sql);
    }
    const cur = { v2: 0, s2: 0 };
    const pull = async () => {
      // V2 <- S (synqlite), S2 <- V (crsqlite-wasm), each from its cursor.
      const fromS = await S.changes({ since: cur.v2 });
      if (fromS.length) cur.v2 = Math.max(...fromS.map((c) => Number(c.db_version)));
      await vlcn('applyChanges', { name: V2, rows: fromS });
      const fromV = await vlcn('changes', { name: V, since: cur.s2 });
      if (fromV.length) cur.s2 = Math.max(...fromV.map((c) => c.db_version));
      await S2.applyChanges(fromV);
      return [fromS.length, fromV.length];
    };
    const counts = [await pull()];
    // New writes on both main peers, exchanged between them, then pulled by the relays.
    await vlcn('exec', { name: V, sql: "INSERT INTO items VALUES ('relay', 1, 1, 0.5, 'from v', NULL, NULL)" });
    await vlcn('exec', { name: V, sql: "UPDATE items SET t = 'v again' WHERE list = 'v' AND pos = 1" });
    await S.exec("INSERT INTO items VALUES ('relay', 2, 2, 1.5, 'from s', NULL, NULL)");
    await S.exec("DELETE FROM items WHERE list = 's' AND pos = 1");
    await vToS();
    await sToV();
    counts.push(await pull());
    const sql = dumpSql('items', ['list', 'pos', 'n', 'r', 't', 'b', 'z'], 'list, pos');
    const out = {
      counts,
      s: JSON.stringify((await S.query(sql)).map(Object.values)),
      v2: JSON.stringify(await vlcn('raw', { name: V2, sql })),
      s2: JSON.stringify((await S2.query(sql)).map(Object.values)),
    };
    await S2.close();
    return out;
  }, [ITEMS, KEYS, TAGS]);
  assert.ok(r.counts[1][0] > 0 && r.counts[1][1] > 0, 'the second pull moved rows both ways');
  assert.equal(r.v2, r.s, 'crsqlite-wasm relay peer (pulling from synqlite) has the same rows');
  assert.equal(r.s2, r.s, 'synqlite relay peer (pulling from crsqlite-wasm) has the same rows');
  await assertSameRows('items', 'main peers after the relay writes');
  await assertSameChanges('main peers\' change rows after the relay writes');
});

test('edge-case change rows (partial rows, tombstones for unknown rows, bad rows) merge the same on both', async () => {
  const r = await page.evaluate(async () => {
    const schema = "CREATE TABLE edge (id INTEGER PRIMARY KEY NOT NULL, a, b DEFAULT 'dflt'); SELECT crsql_as_crr('edge')";
    await S.exec(schema);
    await vlcn('exec', { name: V, sql: schema });
    const site = new Uint8Array(16).fill(9);
    const row = (id, cid, val, col_version, cl) =>
      ({ table: 'edge', pk: new Uint8Array([1, 9, id]), cid, val, col_version, db_version: id, site_id: site, cl, seq: 0 });
    const cases = {
      columnOfUnknownRow: [row(1, 'a', 5n, 1, 1)],
      columnOfUnknownRowCl3: [row(2, 'a', 6n, 1, 3)],
      tombstoneOfUnknownRow: [row(3, '-1', null, 2, 2)],
      columnWithEvenCl: [row(4, 'a', 7n, 1, 2)],
      sentinelOnly: [row(5, '-1', null, 1, 1)],
      sentinelCl3: [row(7, '-1', null, 3, 3)],
      unknownColumn: [row(6, 'nope', 1n, 1, 1)],
      badPk: [{ ...row(8, 'a', 1n, 1, 1), pk: new Uint8Array([1, 11, 1, 97]) }],
    };
    const results = {};
    for (const [k, rows] of Object.entries(cases)) {
      const s = await S.applyChanges(rows).then(() => 'ok', (e) => `rejected (${e.code})`);
      const v = await vlcn('applyChanges', { name: V, rows }).then(() => 'ok', () => 'rejected');
      results[k] = [s.startsWith('rejected') ? 'rejected' : s, v];
      results[k + 'Code'] = s;
    }
    const sql = dumpSql('edge', ['id', 'a', 'b'], 'id');
    const only = (rows) => rows.filter((c) => c.table === 'edge').map(changeKey).sort();
    return {
      results,
      s: (await S.query(sql)).map(Object.values),
      v: await vlcn('raw', { name: V, sql }),
      sc: only(await S.changes({ since: 0 })),
      vc: only(await vlcn('changes', { name: V, since: 0 })),
    };
  });
  for (const k of ['columnOfUnknownRow', 'columnOfUnknownRowCl3', 'tombstoneOfUnknownRow', 'columnWithEvenCl', 'sentinelOnly', 'sentinelCl3']) {
    assert.deepEqual(r.results[k], ['ok', 'ok'], k);
  }
  assert.deepEqual(r.results.unknownColumn, ['rejected', 'rejected']);
  assert.equal(r.results.unknownColumnCode, 'rejected (INVALID_CHANGE)');
  assert.deepEqual(r.results.badPk, ['rejected', 'rejected']);
  assert.deepEqual(r.s, r.v);
  assert.deepEqual(r.s.map((x) => x[1]), ['1', '2', '5', '7']);
  assert.deepEqual(r.sc, r.vc);
});

test('primary-key changes: synqlite re-sends the columns; crsqlite-wasm does not (its peers, of either kind, get NULLs)', async () => {
  const r = await page.evaluate(async () => {
    const schema = "CREATE TABLE pkc (id INTEGER PRIMARY KEY NOT NULL, a, b); SELECT crsql_as_crr('pkc')";
    const names = ['pkc-v', 'pkc-v-peer'];
    for (const name of names) {
      await vlcn('open', { name });
      await vlcn('exec', { name, sql: schema });
    }
    const s = await synqlite.openDatabase({ name: 'pkc-s', storage: 'memory' });
    await s.exec(schema);
    await vlcn('exec', { name: 'pkc-v', sql: "INSERT INTO pkc VALUES (1, 'one', 1.5), (2, 'two', 2.5)" });
    // Initial full sync: pkc-v -> s and pkc-v -> pkc-v-peer.
    const all = await vlcn('changes', { name: 'pkc-v', since: 0 });
    const cursor = { v: Math.max(...all.map((c) => c.db_version)), s: 0 };
    await s.applyChanges(all);
    await vlcn('applyChanges', { name: 'pkc-v-peer', rows: all });
    cursor.s = Number((await s.query('SELECT crsql_db_version() AS v'))[0].v);
    // crsqlite-wasm moves row 1 to id 10; both peers pull the changes since their cursor.
    await vlcn('exec', { name: 'pkc-v', sql: 'UPDATE pkc SET id = 10 WHERE id = 1' });
    const fromV = await vlcn('changes', { name: 'pkc-v', since: cursor.v });
    await s.applyChanges(fromV);
    await vlcn('applyChanges', { name: 'pkc-v-peer', rows: fromV });
    // synqlite moves row 2 to id 20; crsqlite-wasm pulls.
    await s.exec('UPDATE pkc SET id = 20 WHERE id = 2');
    const fromS = await s.changes({ since: cursor.s });
    await vlcn('applyChanges', { name: 'pkc-v', rows: fromS });
    const sql = 'SELECT id, a, b FROM pkc ORDER BY id';
    const out = {
      fromV: fromV.map((c) => c.cid),
      fromS: fromS.filter((c) => hex(c.site_id) === hex(s.siteId)).map((c) => c.cid).sort(),
      v: await vlcn('raw', { name: 'pkc-v', sql }),
      vPeer: await vlcn('raw', { name: 'pkc-v-peer', sql }),
      s: (await s.query(sql)).map(Object.values),
    };
    await s.close();
    return out;
  });
  // cr-sqlite 0.16 moves the column clocks to the new key without re-stamping them, so only the
  // two sentinels go out: every incremental peer (crsqlite-wasm too) ends with NULL columns.
  assert.deepEqual(r.fromV, ['-1', '-1']);
  assert.deepEqual(r.vPeer.find((x) => x[0] === 10), [10, null, null], 'crsqlite-wasm peer');
  assert.deepEqual(r.s.find((x) => x[0] === 10), [10, null, null], 'synqlite peer: same as a crsqlite-wasm peer');
  assert.deepEqual(r.v.find((x) => x[0] === 10), [10, 'one', 1.5], 'the writer itself');
  // synqlite re-records the moved row's columns, so crsqlite-wasm gets the whole row.
  assert.deepEqual(r.fromS, ['-1', '-1', 'a', 'b']);
  assert.deepEqual(r.v.find((x) => x[0] === 20), [20, 'two', 2.5]);
  assert.deepEqual(r.s.find((x) => x[0] === 20), [20, 'two', 2.5]);
});
