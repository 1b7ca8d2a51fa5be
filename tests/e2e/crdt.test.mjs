// CRDT through the main-thread API: asCrr, changes, applyChanges between two databases,
// value types kept apart, merges announced with source 'sync', rejections with CRR_UNSUPPORTED.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage } from './harness.mjs';

let server, browser, page;

before(async () => {
  server = await startServer();
  browser = await launch();
  page = await openPage(browser.context, server.url);
  await page.evaluate(async (storage) => {
    const schema = `CREATE TABLE IF NOT EXISTS items (
      list TEXT NOT NULL, pos INTEGER NOT NULL, n INTEGER, r REAL, t TEXT, b BLOB, z,
      PRIMARY KEY (list, pos));
      SELECT crsql_as_crr('items');`;
    window.a = await synqlite.openDatabase({ name: 'crdt-a', storage });
    window.b = await synqlite.openDatabase({ name: 'crdt-b', storage: 'memory' });
    await a.exec(schema);
    await b.exec('CREATE TABLE IF NOT EXISTS items (list TEXT NOT NULL, pos INTEGER NOT NULL, n INTEGER, r REAL, t TEXT, b BLOB, z, PRIMARY KEY (list, pos))');
    await b.asCrr('items');
    await b.asCrr('items'); // idempotent
  }, await durableStorage(page));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('site ids are 16 bytes and differ per database', async () => {
  const ids = await page.evaluate(() => [[...a.siteId], [...b.siteId]]);
  assert.equal(ids[0].length, 16);
  assert.equal(ids[1].length, 16);
  assert.notDeepEqual(ids[0], ids[1]);
});

test('changes from one database merge into another; both converge, types intact', async () => {
  const r = await page.evaluate(async () => {
    await a.exec('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)', ['x', 1, 7, 2.0, 'seven', new Uint8Array([7]), null]);
    await a.exec("INSERT INTO items VALUES ('x', 2, -3, 0.5, 'é', NULL, 'any')");
    await a.exec("UPDATE items SET t = 'SEVEN' WHERE list = 'x' AND pos = 1");
    const events = [];
    const off = b.onRange(['items'], (changes, source) => events.push({ source, n: changes.length }));
    const rows = await a.changes({ since: 0 });
    const stats = await b.applyChanges(rows);
    const again = await b.applyChanges(rows); // idempotent
    await new Promise((res) => setTimeout(res, 100));
    off();
    const q = "SELECT list, pos, n, r, typeof(r) AS tr, t, hex(b) AS b, z FROM items ORDER BY list, pos";
    return {
      first: rows[0],
      nrows: rows.length,
      stats, again, events,
      a: await a.query(q),
      b: await b.query(q),
      // Merged rows keep the original site id when read back from b.
      sites: [...new Set((await b.changes({ since: 0 })).map((c) => c.site_id.join(',')))],
      aSite: [...a.siteId].join(','),
      excluded: (await b.changes({ since: 0, excludeSite: a.siteId })).length,
    };
  });
  assert.equal(r.first.table, 'items');
  assert.ok(r.first.pk instanceof Object && r.first.site_id);
  assert.equal(r.stats.received, r.nrows);
  assert.ok(r.stats.applied > 0);
  assert.equal(r.again.applied, 0);
  assert.deepEqual(r.events, [{ source: 'sync', n: 2 }]);
  assert.deepEqual(r.b, r.a);
  assert.equal(r.b[0].tr, 'real', 'REAL 2.0 stayed REAL through the change rows');
  assert.deepEqual(r.sites, [r.aSite]);
  assert.equal(r.excluded, 0);
});

test('change values keep INTEGER and REAL apart in JS', async () => {
  const vals = await page.evaluate(async () => {
    const rows = await a.changes({ since: 0 });
    return rows.filter((c) => c.cid === 'n' || c.cid === 'r').map((c) => [c.cid, typeof c.val]);
  });
  assert.ok(vals.some(([cid, t]) => cid === 'n' && t === 'bigint'));
  assert.ok(vals.some(([cid, t]) => cid === 'r' && t === 'number'));
});

test('concurrent edits converge both ways; deletes win by causal length', async () => {
  const r = await page.evaluate(async () => {
    const sync = async () => {
      await b.applyChanges(await a.changes({ since: 0 }));
      await a.applyChanges(await b.changes({ since: 0 }));
    };
    await a.exec("UPDATE items SET t = 'from-a' WHERE pos = 2");
    await b.exec("UPDATE items SET n = 100 WHERE pos = 2");
    await b.exec("DELETE FROM items WHERE pos = 1");
    await sync();
    const q = 'SELECT pos, n, t FROM items ORDER BY pos';
    return { a: await a.query(q), b: await b.query(q) };
  });
  assert.deepEqual(r.a, r.b);
  assert.deepEqual(r.a, [{ pos: 2, n: 100, t: 'from-a' }]);
});

test('tables cr-sqlite cannot replicate are rejected with CRR_UNSUPPORTED; bad rows with INVALID_CHANGE', async () => {
  const r = await page.evaluate(async () => {
    await a.exec('CREATE TABLE nopk (x); CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT); CREATE TABLE uniq (id INTEGER PRIMARY KEY NOT NULL, u TEXT UNIQUE)');
    return {
      nopk: await caught(a.asCrr('nopk')),
      auto: await caught(a.asCrr('auto')),
      uniq: await caught(a.asCrr('uniq')),
      missing: await caught(a.asCrr('missing')),
      badRow: await caught(a.applyChanges([{ table: 'items' }])),
      badTable: await caught(a.applyChanges([['nope', new Uint8Array([1, 9, 1]), 'x', 1n, 1, 1, new Uint8Array(16), 1, 0]])),
    };
  });
  for (const k of ['nopk', 'auto', 'uniq', 'missing']) assert.equal(r[k].code, 'CRR_UNSUPPORTED', `${k}: ${r[k].message}`);
  assert.equal(r.badRow.code, 'INVALID_CHANGE');
  assert.equal(r.badTable.code, 'INVALID_CHANGE');
});
