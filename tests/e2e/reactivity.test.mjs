// Reactivity across real tabs: onAny / onRange / onPoint with sources, rollback silence,
// unsubscribe, live queries that follow other tabs' writes and coalesce bursts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage, record } from './harness.mjs';

let server, browser, a, b;

before(async () => {
  server = await startServer();
  browser = await launch();
  a = await openPage(browser.context, server.url);
  b = await openPage(browser.context, server.url);
  const storage = await durableStorage(a);
  for (const page of [a, b]) {
    await page.evaluate(async (storage) => {
      window.db = await synqlite.openDatabase({ name: 'react', storage });
      window.events = [];
      window.record = (kind) => (changes, source) => events.push({ kind, source, changes: changes.map((c) => [c.op, c.table, Number(c.rowid)]) });
    }, storage);
  }
  await a.evaluate(() => db.exec('CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE other (x)'));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const settle = () => new Promise((r) => setTimeout(r, 150));
const take = (page) => page.evaluate(() => events.splice(0));

test('a write in one tab reaches both tabs with the right rows and source', async () => {
  await Promise.all([a, b].map((p) => p.evaluate(() => {
    window.offRange = db.onRange(['songs'], record('range'));
    window.offPoint = db.onPoint('songs', 2, record('point'));
    window.offAny = db.onAny(record('any'));
  })));
  await take(a);
  await take(b);
  await a.evaluate(() => db.exec("INSERT INTO songs (id, title) VALUES (1, 'one'), (2, 'two')"));
  await a.evaluate(() => db.exec('INSERT INTO other VALUES (1)'));
  await b.evaluate(() => db.exec("UPDATE songs SET title = 'TWO' WHERE id = 2"));
  await settle();
  const ea = await take(a);
  const eb = await take(b);
  const pick = (events, kind) => events.filter((e) => e.kind === kind).map(({ source, changes }) => ({ source, changes }));
  assert.deepEqual(pick(ea, 'range'), [
    { source: 'local', changes: [['insert', 'songs', 1], ['insert', 'songs', 2]] },
    { source: 'tab', changes: [['update', 'songs', 2]] },
  ]);
  assert.deepEqual(pick(eb, 'range'), [
    { source: 'tab', changes: [['insert', 'songs', 1], ['insert', 'songs', 2]] },
    { source: 'local', changes: [['update', 'songs', 2]] },
  ]);
  // onPoint: only row 2, once per transaction that touched it.
  assert.deepEqual(pick(eb, 'point'), [
    { source: 'tab', changes: [['insert', 'songs', 2]] },
    { source: 'local', changes: [['update', 'songs', 2]] },
  ]);
  // onAny sees every table, CRDT metadata never.
  assert.deepEqual(pick(ea, 'any').map((e) => e.changes), [
    [['insert', 'songs', 1], ['insert', 'songs', 2]],
    [['insert', 'other', 1]],
    [['update', 'songs', 2]],
  ]);
  record('reactivity', 'yes');
});

test('rolled-back transactions and failed batches fire nothing; committed tx fires once', async () => {
  await take(a);
  await take(b);
  await b.evaluate(async () => {
    await caught(db.tx(async (tx) => {
      await tx.exec("INSERT INTO songs (id, title) VALUES (10, 'x')");
      throw new Error('rollback');
    }));
    await caught(db.batch([["INSERT INTO songs (id, title) VALUES (11, 'y')"], ['INSERT INTO nope VALUES (1)']]));
    await db.tx(async (tx) => {
      await tx.exec("INSERT INTO songs (id, title) VALUES (12, 'z')");
      await tx.exec("UPDATE songs SET title = 'zz' WHERE id = 12");
    });
  });
  await settle();
  for (const page of [a, b]) {
    const events = (await take(page)).filter((e) => e.kind === 'range');
    assert.deepEqual(events.map((e) => e.changes), [[['insert', 'songs', 12]]]);
  }
});

test('unsubscribe stops delivery', async () => {
  await b.evaluate(() => { offRange(); offPoint(); offAny(); offAny(); });
  await take(b);
  await a.evaluate(() => db.exec("INSERT INTO songs (id, title) VALUES (20, 'later')"));
  await settle();
  assert.deepEqual(await take(b), []);
  assert.ok((await take(a)).length > 0, 'the other tab still listens');
});

test('a live query in one tab follows writes from another and coalesces bursts', async () => {
  await b.evaluate(() => {
    window.live = [];
    window.stopLive = db.liveQuery('SELECT count(*) AS n FROM songs s JOIN (SELECT 1) ON 1', [], (rows) => live.push(rows[0].n));
  });
  await b.waitForFunction(() => live.length === 1);
  const before = await b.evaluate(() => live[0]);
  await a.evaluate(() => db.exec("INSERT INTO songs (title) VALUES ('live')"));
  await b.waitForFunction((n) => live.at(-1) === n + 1, before);
  // Writes to tables the query does not read do not re-run it.
  const runs = await b.evaluate(() => live.length);
  await a.evaluate(() => db.exec('INSERT INTO other VALUES (2)'));
  await settle();
  assert.equal(await b.evaluate(() => live.length), runs);
  // A burst of 500 commits: far fewer re-runs, and the last one sees everything.
  await a.evaluate(async () => {
    const writes = [];
    for (let i = 0; i < 500; i++) writes.push(db.exec('INSERT INTO songs (title) VALUES (?)', [`burst${i}`]));
    await Promise.all(writes);
  });
  await b.waitForFunction((n) => live.at(-1) === n + 501, before);
  const burstRuns = (await b.evaluate(() => live.length)) - runs;
  assert.ok(burstRuns <= 50, `500 commits caused ${burstRuns} re-runs`);
  await b.evaluate(() => stopLive());
  const stopped = await b.evaluate(() => live.length);
  await a.evaluate(() => db.exec("INSERT INTO songs (title) VALUES ('after stop')"));
  await settle();
  assert.equal(await b.evaluate(() => live.length), stopped);
  record('reactivity', 'yes');
});

test('rowids beyond 2^53 arrive as bigint, the others of the same transaction as numbers', async () => {
  const got = await b.evaluate(async () => {
    const seen = [];
    const point = [];
    const off = db.onRange(['songs'], (changes) => seen.push(...changes.map((c) => [c.op, typeof c.rowid, String(c.rowid)])));
    const offPoint = db.onPoint('songs', 1152921504606846976n, (changes) => point.push(String(changes[0].rowid)));
    const done = new Promise((resolve) => {
      const offAny = db.onAny(() => {
        offAny();
        resolve();
      });
    });
    await db.batch([
      ['INSERT INTO songs (id, title) VALUES (?, ?)', [1152921504606846976n, 'huge']],
      ['INSERT INTO songs (id, title) VALUES (?, ?)', [777000, 'small']],
    ]);
    await done;
    off();
    offPoint();
    await db.exec('DELETE FROM songs WHERE id IN (1152921504606846976, 777000)');
    return { seen, point };
  });
  assert.deepEqual(got.seen, [
    ['insert', 'bigint', '1152921504606846976'],
    ['insert', 'number', '777000'],
  ]);
  assert.deepEqual(got.point, ['1152921504606846976']);
});

test('live queries re-run by one change are read together, each with its own outcome', async () => {
  await b.evaluate(() => {
    window.outs = { count: [], max: [], bad: [], badErrors: [] };
    window.stops = [
      db.liveQuery('SELECT count(*) AS n FROM songs', [], (rows) => outs.count.push(rows[0].n)),
      db.liveQuery('SELECT max(id) AS m FROM songs', undefined, (rows) => outs.max.push(rows[0].m)),
      // Fails once the table holds a row titled 'poison' (json() of malformed text).
      db.liveQuery("SELECT count(*) AS n, max(CASE WHEN title = ? THEN json('{') END) AS j FROM songs", ['poison'],
        (rows) => outs.bad.push(rows[0].n), (e) => outs.badErrors.push(e.code)),
    ];
  });
  await b.waitForFunction(() => outs.count.length === 1 && outs.max.length === 1 && outs.bad.length === 1);
  const n0 = await b.evaluate(() => outs.count[0]);
  await a.evaluate(() => db.exec("INSERT INTO songs (title) VALUES ('poison')"));
  await b.waitForFunction((n) => outs.count.at(-1) === n + 1 && outs.badErrors.length === 1, n0);
  const got = await b.evaluate(() => outs);
  assert.deepEqual(got.badErrors, ['SQLITE_ERROR']);
  assert.equal(got.bad.length, 1, 'the failing query delivered no rows after it failed');
  const maxId = await a.evaluate(() => db.query('SELECT max(id) AS m FROM songs').then((r) => r[0].m));
  await b.waitForFunction((m) => outs.max.at(-1) === m, maxId);
  // The failure did not stop the others: a later write still reaches them.
  await a.evaluate(() => db.exec("DELETE FROM songs WHERE title = 'poison'"));
  await b.waitForFunction((n) => outs.count.at(-1) === n && outs.bad.at(-1) === n, n0);
  await b.evaluate(() => stops.forEach((stop) => stop()));
});

test('subscriptions survive the owner tab closing', async () => {
  await b.evaluate(() => { window.offRange = db.onRange(['songs'], record('range')); });
  await take(b);
  await a.close();
  await b.evaluate(() => db.exec("INSERT INTO songs (id, title) VALUES (9999, 'new owner')"));
  await settle();
  const events = (await take(b)).filter((e) => e.kind === 'range');
  assert.deepEqual(events, [{ kind: 'range', source: 'local', changes: [['insert', 'songs', 9999]] }]);
});
