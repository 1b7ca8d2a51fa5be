// The main-thread API against the built package in the browser of this run: values, parameters,
// batch, tx and error codes (on OPFS, or on IndexedDB where the browser has no OPFS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage } from './harness.mjs';

let server, browser, page, storage;

before(async () => {
  server = await startServer();
  browser = await launch();
  page = await openPage(browser.context, server.url);
  storage = await durableStorage(page);
  await page.evaluate(async (storage) => {
    window.db = await synqlite.openDatabase({ name: 'api', storage });
    await db.exec(`CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, secs REAL, art BLOB, big INTEGER)`);
  }, storage);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('opens on OPFS (IndexedDB where OPFS is unavailable) and reports it', async () => {
  assert.equal(await page.evaluate(() => db.storage), storage);
  assert.equal(await page.evaluate(() => db.name), 'api');
});

test('values round-trip: null, integer, real, text, blob, bigint both ways', async () => {
  const rows = await page.evaluate(async () => {
    await db.exec('INSERT INTO songs (id, title, secs, art, big) VALUES (?, ?, ?, ?, ?)',
      [1, 'Intro é😀', 61.5, new Uint8Array([0, 1, 2, 255]), 2n ** 62n]);
    await db.exec('INSERT INTO songs (id, title, secs, art, big) VALUES (?, ?, ?, ?, ?)',
      [2, 'Outro', null, null, -(2n ** 63n)]);
    await db.exec('INSERT INTO songs (id, title, big) VALUES (?, ?, ?)', [3, 'Safe', Number.MAX_SAFE_INTEGER]);
    return plain(await db.query('SELECT id, title, secs, art, big, typeof(secs) AS t FROM songs ORDER BY id'));
  });
  assert.deepEqual(rows, [
    { id: 1, title: 'Intro é😀', secs: 61.5, art: { bytes: [0, 1, 2, 255] }, big: { bigint: (2n ** 62n).toString() }, t: 'real' },
    { id: 2, title: 'Outro', secs: null, art: null, big: { bigint: (-(2n ** 63n)).toString() }, t: 'null' },
    { id: 3, title: 'Safe', secs: null, art: null, big: Number.MAX_SAFE_INTEGER, t: 'null' },
  ]);
  const types = await page.evaluate(async () => plain(await db.query('SELECT typeof(?) a, typeof(?) b, typeof(?) c, typeof(?) d, ? + 0 e',
    [1.5, 2, true, 3n, 2n ** 53n + 1n])));
  assert.deepEqual(types, [{ a: 'real', b: 'integer', c: 'integer', d: 'integer', e: { bigint: (2n ** 53n + 1n).toString() } }]);
});

test('positional, numbered and named parameters', async () => {
  const rows = await page.evaluate(async () => [
    await db.query('SELECT ?2 AS a, ?1 AS b', ['x', 'y']),
    await db.query('SELECT :a AS a, @b AS b, $c AS c', { a: 1, b: 2, c: 3 }),
    await db.query('SELECT title FROM songs WHERE id = :id', { ':id': 2 }),
  ]);
  assert.deepEqual(rows, [[{ a: 'y', b: 'x' }], [{ a: 1, b: 2, c: 3 }], [{ title: 'Outro' }]]);
});

test('exec reports changes and lastInsertRowid; multiple statements run', async () => {
  const r = await page.evaluate(async () => [
    await db.exec("INSERT INTO songs (title) VALUES ('a'), ('b')"),
    await db.exec("UPDATE songs SET secs = 1 WHERE title IN ('a', 'b'); DELETE FROM songs WHERE title = 'a'"),
  ]);
  assert.equal(r[0].changes, 2);
  assert.equal(typeof r[0].lastInsertRowid, 'number');
  assert.equal(r[1].changes, 3);
});

test('bad SQL, constraint violations and bad params reject with stable codes', async () => {
  const errs = await page.evaluate(async () => ({
    syntax: await caught(db.exec('SELEC 1')),
    noTable: await caught(db.query('SELECT * FROM nope')),
    unique: await caught(db.exec("INSERT INTO songs (title) VALUES ('Outro')")),
    notNull: await caught(db.exec('INSERT INTO songs (title) VALUES (NULL)')),
    missing: await caught(db.exec('INSERT INTO songs (title) VALUES (:title)', { name: 'x' })),
    count: await caught(db.exec('INSERT INTO songs (title) VALUES (?)', [])),
    type: await caught(db.exec('INSERT INTO songs (title) VALUES (?)', [{ nested: true }])),
    uncloneable: await caught(db.exec('INSERT INTO songs (title) VALUES (?)', [() => 1])),
    range: await caught(db.exec('SELECT ?', [2n ** 64n])),
  }));
  for (const e of Object.values(errs)) {
    assert.ok(e, 'rejected');
    assert.ok(e.isError && e.isSynqliteError, 'is a SynqliteError');
  }
  assert.equal(errs.syntax.code, 'SQLITE_ERROR');
  assert.match(errs.syntax.message, /syntax error/);
  assert.equal(errs.noTable.code, 'SQLITE_ERROR');
  assert.match(errs.noTable.message, /no such table: nope/);
  assert.equal(errs.unique.code, 'SQLITE_CONSTRAINT');
  assert.equal(errs.unique.extendedCode, 'SQLITE_CONSTRAINT_UNIQUE');
  assert.equal(errs.notNull.extendedCode, 'SQLITE_CONSTRAINT_NOTNULL');
  for (const k of ['missing', 'count', 'type', 'uncloneable', 'range']) assert.equal(errs[k].code, 'BAD_PARAMS', k);
  assert.match(errs.missing.message, /:title/);
  // The worker survived all of it.
  assert.deepEqual(await page.evaluate(() => db.query('SELECT count(*) AS n FROM songs WHERE id <= 3')), [{ n: 3 }]);
});

test('batch is atomic and names the failing entry', async () => {
  const r = await page.evaluate(async () => {
    const ok = await db.batch([
      ['INSERT INTO songs (id, title) VALUES (?, ?)', [10, 'b1']],
      ['INSERT INTO songs (id, title) VALUES (:id, :t)', { id: 11, t: 'b2' }],
    ]);
    const err = await caught(db.batch([
      ['INSERT INTO songs (id, title) VALUES (12, ?)', ['b3']],
      ['INSERT INTO songs (id, title) VALUES (13, ?)', ['b1']],
    ]));
    const bad = await caught(db.batch([['INSERT INTO songs (id, title) VALUES (14, ?)', ['b4']], ['SELEC']]));
    const rows = await db.query('SELECT id FROM songs WHERE id >= 10 ORDER BY id');
    return { ok, err, bad, rows };
  });
  assert.equal(r.ok.length, 2);
  assert.equal(r.ok[1].lastInsertRowid, 11);
  assert.equal(r.err.code, 'SQLITE_CONSTRAINT');
  assert.match(r.err.message, /batch statement 1/);
  assert.equal(r.bad.code, 'SQLITE_ERROR');
  assert.deepEqual(r.rows, [{ id: 10 }, { id: 11 }]);
});

test('tx commits on resolve, rolls back on throw, and serializes other calls', async () => {
  const r = await page.evaluate(async () => {
    const value = await db.tx(async (tx) => {
      await tx.exec("INSERT INTO songs (id, title) VALUES (20, 't1')");
      const [row] = await tx.query('SELECT title FROM songs WHERE id = 20');
      return row.title;
    });
    const thrown = await caught(db.tx(async (tx) => {
      await tx.exec("INSERT INTO songs (id, title) VALUES (21, 't2')");
      throw new Error('app says no');
    }));
    const sqlFail = await caught(db.tx(async (tx) => {
      await tx.exec("INSERT INTO songs (id, title) VALUES (22, 't3')");
      await tx.exec("INSERT INTO songs (id, title) VALUES (23, 't1')");
    }));
    // A call from outside the transaction waits for it to end and sees the committed state.
    const order = [];
    let outside;
    const inside = db.tx(async (tx) => {
      outside = db.query('SELECT count(*) AS n FROM songs WHERE id = 24').then((r) => { order.push('outside'); return r; });
      await new Promise((r) => setTimeout(r, 50));
      await tx.exec("INSERT INTO songs (id, title) VALUES (24, 't4')");
      order.push('inside');
    });
    await inside;
    const seen = await outside;
    let leaked;
    await db.tx(async (tx) => { leaked = tx; });
    const late = await caught(leaked.exec('SELECT 1'));
    const rows = await db.query('SELECT id FROM songs WHERE id BETWEEN 20 AND 24 ORDER BY id');
    return { value, thrown, sqlFail, order, seen, late, rows };
  });
  assert.equal(r.value, 't1');
  assert.equal(r.thrown.message, 'app says no');
  assert.equal(r.sqlFail.code, 'SQLITE_CONSTRAINT');
  assert.deepEqual(r.order, ['inside', 'outside']);
  assert.deepEqual(r.seen, [{ n: 1 }]);
  assert.equal(r.late.code, 'TX_FINISHED');
  assert.deepEqual(r.rows, [{ id: 20 }, { id: 24 }]);
});

test('invalid names and storages are rejected up front', async () => {
  const r = await page.evaluate(async () => ({
    name: await caught(synqlite.openDatabase({ name: '../x' })),
    storage: await caught(synqlite.openDatabase({ name: 'x', storage: 'floppy' })),
  }));
  assert.equal(r.name.code, 'INVALID_ARGUMENT');
  assert.equal(r.storage.code, 'INVALID_ARGUMENT');
});

test('close rejects later calls with CLOSED and frees the database for a new open', async () => {
  const r = await page.evaluate(async (storage) => {
    const pending = db.query('SELECT count(*) AS n FROM songs');
    await db.close();
    const first = await pending.then((x) => x, (e) => e.code);
    const after = await caught(db.exec('SELECT 1'));
    const again = await synqlite.openDatabase({ name: 'api', storage });
    const rows = await again.query('SELECT count(*) AS n FROM songs WHERE id IN (1, 2, 3)');
    await again.close();
    return { first, after, rows };
  }, storage);
  assert.ok(Array.isArray(r.first) || r.first === 'CLOSED');
  assert.equal(r.after.code, 'CLOSED');
  assert.deepEqual(r.rows, [{ n: 3 }]);
});
