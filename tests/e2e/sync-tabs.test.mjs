// The sync across tabs of one browser profile, against the real server: it runs in the owning
// tab only, a second tab's handle follows its status and progress, and when the owner closes the
// database cleanly in the middle of an initial sync, the other tab's worker takes the sync over
// and finishes it (its handle never reports 'stopped'). (Closing the owner's page: sync.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, startSyncSuite, closeAll, record } from './harness.mjs';

let server, sync, migrations, browser;

before(async () => {
  ({ server, sync, migrations, browser } = await startSyncSuite());
});

after(() => closeAll(browser, sync, server));

test('a follower tab sees the owner\'s progress and finishes the sync after the owner closes its database', async () => {
  const ROOM = 'handover';
  await sync.seed(ROOM, 10_000);
  const owner = await openPage(browser.context, server.url);
  const follower = await openPage(browser.context, server.url);
  // The owner opens first (it wins the election), then the follower; both ask for the sync.
  await owner.evaluate(async (migrations) => {
    window.db = await synqlite.openDatabase({ name: 'lib', migrations });
  }, migrations);
  await follower.evaluate(async ({ url, room, migrations }) => {
    const db = await synqlite.openDatabase({ name: 'lib', migrations });
    window.db = db;
    window.statuses = [];
    window.progress = [];
    window.s = db.sync({ url, room });
    window.s.onStatus((st) => window.statuses.push(st));
    window.s.onProgress((p) => window.progress.push(p));
  }, { url: sync.url, room: ROOM, migrations });
  const ownerView = await owner.evaluate(async ({ url, room }) => {
    const s = window.db.sync({ url, room });
    // The follower started it: the owner's handle joins the running sync.
    await new Promise((r) => {
      const check = () => s.progress.total > 0 && s.progress.applied >= s.progress.total * 0.3 && r();
      s.onProgress(check);
      check();
    });
    const { applied, total } = s.progress;
    await window.db.close(); // clean hand-over in the middle of the initial sync
    return { applied, total, status: s.status };
  }, { url: sync.url, room: ROOM });
  assert.ok(ownerView.applied < ownerView.total, `closed mid-sync: ${JSON.stringify(ownerView)}`);
  assert.equal(ownerView.status, 'stopped', 'the closed tab\'s handle is stopped');
  // The follower's worker becomes the owner and resumes the sync.
  await follower.waitForFunction(() => window.s.status === 'up-to-date', null, { timeout: 120_000, polling: 50 });
  const seen = await follower.evaluate(() => ({ statuses: window.statuses, progress: window.progress, final: window.s.progress }));
  assert.ok(!seen.statuses.includes('stopped'), `the follower never saw 'stopped': ${seen.statuses.join(',')}`);
  assert.ok(!seen.statuses.includes('error'), seen.statuses.join(','));
  // It followed the progress made in the other tab, before the hand-over.
  assert.ok(seen.progress.some((p) => p.total > 0 && p.applied > 0 && p.applied <= ownerView.applied), 'progress from the owner tab reached the follower');
  assert.equal(seen.final.applied, seen.final.total);
  const [integrity] = await follower.evaluate(() => window.db.query('PRAGMA integrity_check'));
  assert.deepEqual(integrity, { integrity_check: 'ok' });
  const rows = await follower.evaluate(async () => {
    const rows = await window.db.query('SELECT * FROM songs ORDER BY id');
    return rows.map((r) => Object.values(r).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  });
  assert.deepEqual(rows, await sync.rows(ROOM, 'songs'));
  await owner.close();
  await follower.close();
  record('sync-tabs', 'yes');
});
