// Several tabs on one database: one owner, the others forward; ownership moves when the owner's
// tab closes, without losing committed data or leaving calls hanging. On OPFS, or on IndexedDB
// where the browser has no OPFS (the hand-over is the same: Web Locks and BroadcastChannel).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage, record } from './harness.mjs';

let server, browser, storage;

before(async () => {
  server = await startServer();
  browser = await launch();
  const probe = await openPage(browser.context, server.url);
  storage = await durableStorage(probe);
  await probe.close();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function open(page, name) {
  return page.evaluate(async ({ name, storage }) => {
    window.db = await synqlite.openDatabase({ name, storage });
    return db.storage;
  }, { name, storage });
}

test('two tabs read and write; closing the owner tab hands over', async () => {
  const a = await openPage(browser.context, server.url);
  const b = await openPage(browser.context, server.url);
  assert.equal(await open(a, 'shared'), storage);
  assert.equal(await open(b, 'shared'), storage);
  await a.evaluate(() => db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)'));
  await b.evaluate(() => db.exec("INSERT INTO t (who) VALUES ('b')"));
  await a.evaluate(() => db.exec("INSERT INTO t (who) VALUES ('a')"));
  assert.deepEqual(await a.evaluate(() => db.query('SELECT who FROM t ORDER BY id')), [{ who: 'b' }, { who: 'a' }]);
  assert.deepEqual(await b.evaluate(() => db.query('SELECT who FROM t ORDER BY id')), [{ who: 'b' }, { who: 'a' }]);

  // A transaction from the forwarding tab: rollback and commit both work.
  const tx = await b.evaluate(async () => {
    const rolled = await caught(db.tx(async (tx) => {
      await tx.exec("INSERT INTO t (who) VALUES ('b-rolled-back')");
      throw new Error('no');
    }));
    await db.tx(async (tx) => { await tx.exec("INSERT INTO t (who) VALUES ('b-tx')"); });
    return rolled.message;
  });
  assert.equal(tx, 'no');

  // Close the owner's tab while B has calls in flight: each settles, none hangs, none is lost.
  const inflight = b.evaluate(async () => {
    const calls = [];
    for (let i = 0; i < 40; i++) {
      calls.push(db.exec('INSERT INTO t (who) VALUES (?)', [`b${i}`]).then(() => ({ i, ok: true }), (e) => ({ i, ok: false, code: e.code })));
      await new Promise((r) => setTimeout(r, 2));
    }
    return Promise.all(calls);
  });
  await new Promise((r) => setTimeout(r, 20));
  await a.close();
  const results = await inflight;
  for (const r of results) assert.ok(r.ok || r.code === 'OWNER_CHANGED', JSON.stringify(r));
  const present = new Set((await b.evaluate(() => db.query("SELECT who FROM t WHERE who GLOB 'b[0-9]*'"))).map((r) => r.who));
  for (const r of results) if (r.ok) assert.ok(present.has(`b${r.i}`), `resolved write b${r.i} is present`);
  // Calls made after the hand-over all go through.
  const later = await b.evaluate(async () => {
    const out = [];
    for (let i = 0; i < 10; i++) out.push((await db.exec('INSERT INTO t (who) VALUES (?)', [`late${i}`])).changes);
    return out;
  });
  assert.deepEqual(later, Array(10).fill(1));

  // B now owns the database; a new tab joins it and sees everything.
  const c = await openPage(browser.context, server.url);
  assert.equal(await open(c, 'shared'), storage);
  const rows = await c.evaluate(() => db.query("SELECT who FROM t WHERE who IN ('a', 'b', 'b-tx', 'b-rolled-back') ORDER BY id"));
  assert.equal((await c.evaluate(() => db.query("SELECT count(*) AS n FROM t WHERE who GLOB 'late*'")))[0].n, 10);
  assert.deepEqual(rows, [{ who: 'b' }, { who: 'a' }, { who: 'b-tx' }]);
  await c.evaluate(() => db.exec("INSERT INTO t (who) VALUES ('c')"));
  assert.equal((await b.evaluate(() => db.query("SELECT count(*) AS n FROM t WHERE who = 'c'")))[0].n, 1);
  record('handover-close-tab', 'yes');
  await b.close();
  await c.close();
});

test('db.close() in the owner tab hands over to the other tab', async () => {
  const a = await openPage(browser.context, server.url);
  const b = await openPage(browser.context, server.url);
  await open(a, 'handover');
  await open(b, 'handover');
  await a.evaluate(() => db.exec('CREATE TABLE t (x)'));
  const queued = b.evaluate(async () => {
    const calls = [];
    for (let i = 0; i < 30; i++) calls.push(db.exec('INSERT INTO t VALUES (?)', [i]).then(() => 'ok', (e) => e.code));
    return Promise.all(calls);
  });
  await a.evaluate(() => db.close());
  const results = await queued;
  // A graceful close finishes what it accepted; the rest goes to the next owner.
  assert.deepEqual(results, Array(30).fill('ok'));
  const n = (await b.evaluate(() => db.query('SELECT count(*) AS n FROM t')))[0].n;
  assert.equal(n, 30);
  assert.equal(await b.evaluate(async () => (await db.exec('INSERT INTO t VALUES (1)')).changes), 1);
  // A's closed handle rejects, and A can open again (now as a follower of B).
  assert.equal((await a.evaluate(() => caught(db.exec('SELECT 1')))).code, 'CLOSED');
  assert.equal(await open(a, 'handover'), storage);
  assert.equal((await a.evaluate(() => db.query('SELECT count(*) AS n FROM t')))[0].n, n + 1);
  record('handover-close-db', 'yes');
  await a.close();
  await b.close();
});

test('a tab that dies inside a transaction does not block the others', async () => {
  const a = await openPage(browser.context, server.url);
  const b = await openPage(browser.context, server.url);
  await open(a, 'deadtx');
  await open(b, 'deadtx');
  await a.evaluate(() => db.exec('CREATE TABLE t (x)'));
  await b.evaluate(() => {
    // Begin, write, and never finish.
    void db.tx(async (tx) => {
      await tx.exec("INSERT INTO t VALUES ('from-dead-tab')");
      window.txStarted = true;
      await new Promise(() => {});
    });
  });
  await b.waitForFunction(() => window.txStarted === true);
  // A's write waits behind B's transaction...
  const write = a.evaluate(() => db.exec("INSERT INTO t VALUES ('from-a')").then((r) => r.changes));
  await new Promise((r) => setTimeout(r, 100));
  await b.close();
  // ...and goes through once B's tab is gone and its transaction rolled back.
  assert.equal(await write, 1);
  assert.deepEqual(await a.evaluate(() => db.query('SELECT x FROM t')), [{ x: 'from-a' }]);
  await a.close();
});
