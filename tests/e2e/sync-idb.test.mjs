// The sync's crash safety on IndexedDB storage (sync.test.mjs covers OPFS): an initial sync of
// 50k rows from the real server, the worker terminated at random points and the page closed
// mid-sync; each reopen finds an intact database that resumes where it stopped and ends with
// exactly the server's rows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, startSyncSuite, closeAll, record } from './harness.mjs';

let server, sync, migrations, browser;

before(async () => {
  ({ server, sync, migrations, browser } = await startSyncSuite());
});

after(() => closeAll(browser, sync, server));

const songRows = (page, db) =>
  page.evaluate(async (name) => {
    const rows = await window.dbs[name].query('SELECT * FROM songs ORDER BY id');
    return rows.map((r) => Object.values(r).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  }, db);

test('idb: killing the worker and closing the page during a 50k-row initial sync resumes to the server rows', async () => {
  const ROOM = 'big-idb';
  await sync.seed(ROOM, 50_000);
  const stats = await sync.stats(ROOM);
  // Random kill points (fractions of what is left), logged to reproduce a failure.
  const fractions = [0.05 + Math.random() * 0.3, 0.4 + Math.random() * 0.3];
  const closeAt = 0.2 + Math.random() * 0.5;
  console.log(`idb kill points: ${fractions.map((f) => f.toFixed(3)).join(', ')}; page closed at ${closeAt.toFixed(3)}`);
  const page = await openPage(browser.context, server.url);
  const kills = await page.evaluate(async ({ url, room, migrations, fractions }) => untilStall((async () => {
    const seen = [];
    for (const fraction of fractions) {
      const worker = new Worker(new URL('/pkg/dist/worker.js', location.href), { type: 'module' });
      step(`open, to kill at ${fraction}`);
      const db = await synqlite.openDatabase({ name: 'big', storage: 'idb', migrations, worker });
      step('opened');
      const s = traceSync(db.sync({ url, room }), 'sync');
      const at = await new Promise((resolve) => {
        s.onProgress(({ applied, total }) => {
          if (total > 0 && applied >= total * fraction) resolve({ applied, total, storage: db.storage });
        });
        s.onStatus((st) => st === 'up-to-date' && resolve({ done: true }));
      });
      worker.terminate();
      step(`terminated at ${JSON.stringify(at)}`);
      seen.push(at);
    }
    return seen;
  })()), { url: sync.url, room: ROOM, migrations, fractions });
  assert.equal(kills.length, 2);
  for (const k of kills) {
    assert.ok(!k.done, 'killed before the end');
    assert.equal(k.storage, 'idb');
  }
  assert.ok(kills[0].total >= 400_000, `the first start announced the whole room: ${kills[0].total}`);
  assert.ok(kills[1].total < kills[0].total, `the restart announced only what was left: ${JSON.stringify(kills)}`);

  // Now close the whole page mid-sync.
  const closedAt = await page.evaluate(async ({ url, room, migrations, closeAt }) => untilStall((async () => {
    step('open, to close the page');
    const db = await synqlite.openDatabase({ name: 'big', storage: 'idb', migrations });
    const s = traceSync(db.sync({ url, room }), 'sync');
    return new Promise((resolve) => {
      s.onProgress((p) => p.total > 0 && p.applied >= p.total * closeAt && resolve(p));
      s.onStatus((st) => st === 'up-to-date' && resolve({ done: true }));
    });
  })()), { url: sync.url, room: ROOM, migrations, closeAt });
  assert.ok(!closedAt.done, 'closed before the end');
  await page.close();

  // Reopen: intact, resumes after the last committed chunk, progress is monotonic and exact,
  // and the rows are exactly the server's.
  const again = await openPage(browser.context, server.url);
  const done = await again.evaluate(async ({ url, room, migrations }) => untilStall((async () => {
    step('reopen');
    const db = await synqlite.openDatabase({ name: 'big', storage: 'idb', migrations });
    step('reopened');
    const [integrity] = await db.query('PRAGMA integrity_check');
    step(`integrity ${integrity.integrity_check}`);
    const s = traceSync(db.sync({ url, room }), 'sync');
    const progress = [];
    s.onProgress((p) => progress.push(p));
    await new Promise((r) => (s.status === 'up-to-date' ? r() : s.onStatus((st) => st === 'up-to-date' && r())));
    window.dbs = { big: db };
    return { integrity, progress, final: s.progress, status: s.status, storage: db.storage };
  })()), { url: sync.url, room: ROOM, migrations });
  assert.equal(done.storage, 'idb');
  assert.deepEqual(done.integrity, { integrity_check: 'ok' });
  assert.equal(done.status, 'up-to-date');
  const p = done.progress.filter((x) => x.total > 0);
  assert.ok(p.length > 0, 'progress was reported');
  for (let i = 1; i < p.length; i++) assert.ok(p[i].applied >= p[i - 1].applied, 'progress never goes back');
  assert.ok(p[0].total < closedAt.total, `the reopened page did not start over: ${p[0].total} vs ${closedAt.total}`);
  assert.equal(done.final.applied, done.final.total);
  assert.ok(done.final.total > 0 && done.final.total < stats.changes);
  const expected = await sync.rows(ROOM, 'songs');
  assert.equal(expected.length, 50_000);
  assert.deepEqual(await songRows(again, 'big'), expected);
  await again.close();
  record('sync-kill', 'yes');
});
