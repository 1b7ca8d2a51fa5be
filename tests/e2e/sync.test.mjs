// Sync through the real server (target/debug/synqlite-server on loopback) in the browser of this run:
// two browser contexts converge both ways (reactivity says 'sync'), offline edits arrive after
// reconnecting, progress is exact during a 50k-row initial sync, killing the worker or closing
// the page mid-sync leaves an intact database that resumes to exactly the server's rows, fatal
// errors surface with their code, and a second tab takes the sync over when the owner closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, startSyncServer, schemaMigrations, record } from './harness.mjs';

let server, sync, migrations;
const browsers = [];

before(async () => {
  server = await startServer();
  sync = await startSyncServer();
  migrations = await schemaMigrations();
});

after(async () => {
  for (const b of browsers) await b.close();
  await sync?.close();
  await server?.close();
});

async function context() {
  const b = await launch();
  browsers.push(b);
  return b.context;
}

/** Opens `name` in `page` with the demo schema and starts syncing `room`; waits for `until`. */
async function openSynced(page, name, room, { until = 'up-to-date', storage = 'auto' } = {}) {
  return page.evaluate(async ({ name, room, url, migrations, until, storage }) => {
    const db = await synqlite.openDatabase({ name, migrations, storage });
    const s = db.sync({ url, room });
    window.dbs ??= {};
    window.events ??= {};
    window.dbs[name] = { db, sync: s };
    window.events[name] = [];
    db.onAny((changes, source) => window.events[name].push({ source, n: changes.length }));
    if (s.status !== until) {
      await new Promise((resolve) => {
        const off = s.onStatus((st) => {
          if (st === until) {
            off();
            resolve();
          }
        });
      });
    }
    return { status: s.status, error: s.error ?? null, storage: db.storage };
  }, { name, room, url: sync.url, migrations, until, storage });
}

/** Polls `fn` in `page` (awaiting the promise it may return) until it is truthy. */
async function waitFor(page, fn, arg, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  while (!(await page.evaluate(fn, arg))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const songRows = (page, name) =>
  page.evaluate(async (name) => {
    const db = window.dbs?.[name]?.db ?? (await synqlite.openDatabase({ name }));
    const rows = await db.query('SELECT * FROM songs ORDER BY id');
    return rows.map((r) => Object.values(r).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  }, name);

test('two browser contexts converge both ways through the server; merges fire listeners with source sync', async () => {
  const a = await openPage(await context(), server.url);
  const b = await openPage(await context(), server.url);
  assert.equal((await openSynced(a, 'lib', 'two')).status, 'up-to-date');
  assert.equal((await openSynced(b, 'lib', 'two')).status, 'up-to-date');
  await a.evaluate(() => window.dbs.lib.db.exec("INSERT INTO songs (id, title, artist) VALUES ('s1', 'Intro', 'A'), ('s2', 'Outro', 'B')"));
  await waitFor(b, () => window.dbs.lib.db.query('SELECT count(*) AS n FROM songs').then(([r]) => r.n === 2));
  await b.evaluate(() => window.dbs.lib.db.exec("UPDATE songs SET title = 'Intro (live)' WHERE id = 's1'"));
  await waitFor(a, () => window.dbs.lib.db.query("SELECT title FROM songs WHERE id = 's1'").then(([r]) => r.title === 'Intro (live)'));
  assert.deepEqual(await songRows(a, 'lib'), await songRows(b, 'lib'));
  assert.deepEqual(await songRows(a, 'lib'), await sync.rows('two', 'songs'));
  const sources = await b.evaluate(() => [...new Set(window.events.lib.map((e) => e.source))].sort());
  assert.deepEqual(sources, ['local', 'sync']);
  // Offline edits: A stops syncing, writes, and starts again; B receives them.
  await a.evaluate(async () => {
    await window.dbs.lib.sync.stop();
    await window.dbs.lib.db.exec("INSERT INTO songs (id, title) VALUES ('s3', 'Written offline')");
    await window.dbs.lib.db.exec("DELETE FROM songs WHERE id = 's2'");
  });
  assert.equal(await b.evaluate(() => window.dbs.lib.db.query('SELECT count(*) AS n FROM songs').then(([r]) => r.n)), 2);
  await a.evaluate(async (url) => {
    const s = window.dbs.lib.db.sync({ url, room: 'two' });
    await new Promise((r) => (s.status === 'up-to-date' ? r() : s.onStatus((st) => st === 'up-to-date' && r())));
  }, sync.url);
  await waitFor(b, () => window.dbs.lib.db.query('SELECT group_concat(id) AS ids FROM (SELECT id FROM songs ORDER BY id)').then(([r]) => r.ids === 's1,s3'));
  // The server restarting is a transient failure: the clients reconnect and keep syncing.
  await sync.restart();
  await a.evaluate(() => window.dbs.lib.db.exec("INSERT INTO songs (id, title) VALUES ('s4', 'After restart')"));
  await waitFor(b, () => window.dbs.lib.db.query("SELECT count(*) AS n FROM songs WHERE id = 's4'").then(([r]) => r.n === 1));
  await a.close();
  await b.close();
  record('sync', 'yes');
});

test('initial sync of 50k rows: exact progress, and killing the worker or closing the page mid-sync resumes to the server rows', async () => {
  await sync.seed('big', 50_000);
  const stats = await sync.stats('big');
  const ctx = await context();
  // Kill the worker three times at random points of the initial sync (logged to reproduce).
  const fractions = [0.05 + Math.random() * 0.25, 0.35 + Math.random() * 0.25, 0.65 + Math.random() * 0.25];
  console.log(`kill points (fraction of what is left): ${fractions.map((f) => f.toFixed(3)).join(', ')}`);
  const page = await openPage(ctx, server.url);
  const kills = await page.evaluate(async ({ url, migrations, fractions }) => untilStall((async () => {
    const seen = [];
    for (const fraction of fractions) {
      const worker = new Worker(new URL('/pkg/dist/worker.js', location.href), { type: 'module' });
      step(`open, to kill at ${fraction}`);
      const db = await synqlite.openDatabase({ name: 'big', migrations, worker });
      const s = traceSync(db.sync({ url, room: 'big' }), 'sync');
      const at = await new Promise((resolve) => {
        s.onProgress(({ applied, total }) => {
          if (total > 0 && applied >= total * fraction) resolve({ applied, total });
        });
        s.onStatus((st) => st === 'up-to-date' && resolve({ done: true }));
      });
      worker.terminate();
      step(`terminated at ${JSON.stringify(at)}`);
      seen.push(at);
    }
    return seen;
  })()), { url: sync.url, migrations, fractions });
  assert.equal(kills.length, 3);
  for (const k of kills) assert.ok(!k.done, 'killed before the end');
  // Each restart announced only what was left: totals shrink.
  assert.ok(kills[1].total < kills[0].total && kills[2].total < kills[1].total, JSON.stringify(kills));
  // Reopen: intact, resumes, ends with exactly the server's rows; progress is monotonic and exact.
  const done = await page.evaluate(async ({ url, migrations }) => untilStall((async () => {
    step('reopen');
    const db = await synqlite.openDatabase({ name: 'big', migrations });
    const [integrity] = await db.query('PRAGMA integrity_check');
    step(`integrity ${integrity.integrity_check}`);
    const s = traceSync(db.sync({ url, room: 'big' }), 'sync');
    const progress = [];
    s.onProgress((p) => progress.push(p));
    await new Promise((r) => (s.status === 'up-to-date' ? r() : s.onStatus((st) => st === 'up-to-date' && r())));
    window.dbs = { big: { db, sync: s } };
    return { integrity, progress, final: s.progress };
  })()), { url: sync.url, migrations });
  assert.deepEqual(done.integrity, { integrity_check: 'ok' });
  const p = done.progress.filter((x) => x.total > 0);
  for (let i = 1; i < p.length; i++) assert.ok(p[i].applied >= p[i - 1].applied, 'progress never goes back');
  assert.equal(done.final.applied, done.final.total);
  assert.ok(done.final.total > 0 && done.final.total < stats.changes);
  const expected = await sync.rows('big', 'songs');
  assert.equal(expected.length, 50_000);
  assert.deepEqual(await songRows(page, 'big'), expected);
  await page.close();

  // A fresh context: full progress from 0 to the announced total, then close the page mid-sync.
  const ctx2 = await context();
  const p2 = await openPage(ctx2, server.url);
  const first = await p2.evaluate(async ({ url, migrations }) => untilStall((async () => {
    step('open, to close the page');
    const db = await synqlite.openDatabase({ name: 'big', migrations });
    const s = traceSync(db.sync({ url, room: 'big' }), 'sync');
    return new Promise((resolve) => s.onProgress((pr) => pr.total > 0 && pr.applied >= pr.total / 2 && resolve(pr)));
  })()), { url: sync.url, migrations });
  assert.ok(first.total >= 400_000, `50k rows x 8 columns announced: ${first.total}`);
  await p2.close();
  const p3 = await openPage(ctx2, server.url);
  const resumed = await p3.evaluate(async ({ url, migrations }) => untilStall((async () => {
    step('reopen');
    const db = await synqlite.openDatabase({ name: 'big', migrations });
    const [integrity] = await db.query('PRAGMA integrity_check');
    step(`integrity ${integrity.integrity_check}`);
    const s = traceSync(db.sync({ url, room: 'big' }), 'sync');
    const events = [];
    s.onProgress((pr) => events.push(pr));
    await new Promise((r) => (s.status === 'up-to-date' ? r() : s.onStatus((st) => st === 'up-to-date' && r())));
    window.dbs = { big: { db, sync: s } };
    return { integrity, firstTotal: events.find((e) => e.total > 0)?.total ?? 0, final: s.progress };
  })()), { url: sync.url, migrations });
  assert.deepEqual(resumed.integrity, { integrity_check: 'ok' });
  assert.ok(resumed.firstTotal < first.total, 'the reopened page did not start over');
  assert.equal(resumed.final.applied, resumed.final.total);
  assert.deepEqual(await songRows(p3, 'big'), expected);
  await p3.close();
  record('sync-kill', 'yes');
});

test('a live query follows an initial sync at most every 100 ms and ends on the synced state', async () => {
  await sync.seed('live', 20_000);
  const page = await openPage(await context(), server.url);
  const got = await page.evaluate(async ({ url, migrations }) => {
    const db = await synqlite.openDatabase({ name: 'live', migrations, storage: 'auto' });
    const counts = [];
    const starts = [];
    const stop = db.liveQuery('SELECT count(*) AS n FROM songs', [], (rows) => counts.push(Number(rows[0].n)));
    while (counts.length === 0) await new Promise((r) => setTimeout(r, 10));
    // Count the reads the live query makes: the tab's own calls to the worker.
    const t0 = performance.now();
    const s = db.sync({ url, room: 'live' });
    const off = db.onAny((changes, source) => source === 'sync' && starts.push(performance.now()));
    await new Promise((resolve) => s.onStatus((st) => st === 'up-to-date' && resolve()));
    const syncMs = performance.now() - t0;
    const [{ n }] = await db.query('SELECT count(*) AS n FROM songs');
    // The last re-run comes at most 100 ms after the last merged commit.
    const deadline = performance.now() + 5000;
    while (counts.at(-1) !== Number(n) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop();
    off();
    await s.stop();
    await db.close();
    return { counts, commits: starts.length, syncMs, n: Number(n) };
  }, { url: sync.url, migrations });
  assert.equal(got.n, 20_000);
  assert.equal(got.counts.at(-1), 20_000, 'the last delivery is the synced state');
  // One initial read, then at most one per 100 ms of sync plus the trailing one.
  const bound = 2 + Math.ceil(got.syncMs / 100);
  assert.ok(got.counts.length <= bound, `${got.counts.length} deliveries for ${got.commits} merged commits in ${Math.round(got.syncMs)} ms (bound ${bound})`);
  assert.ok(got.counts.every((c, i) => i === 0 || c >= got.counts[i - 1]), 'counts only grow');
});

test('errors a retry cannot fix surface as status error with their code', async () => {
  const page = await openPage(await context(), server.url);
  const r = await page.evaluate(async ({ url, migrations }) => {
    // One migration fewer than the server: another schema version.
    const db = await synqlite.openDatabase({ name: 'old', migrations: migrations.slice(0, 3) });
    const s = db.sync({ url, room: 'errs' });
    await new Promise((r) => (s.status === 'error' ? r() : s.onStatus((st) => st === 'error' && r())));
    const bad = await caught(Promise.resolve().then(() => db.sync({ url, room: '' })));
    return { status: s.status, error: s.error, bad };
  }, { url: sync.url, migrations });
  assert.equal(r.status, 'error');
  assert.equal(r.error.code, 'SCHEMA_MISMATCH');
  assert.match(r.error.message, /migrations@/);
  assert.equal(r.bad.code, 'INVALID_ARGUMENT');
  await page.close();
});

test('the sync runs in the owning tab; another tab follows it and takes it over when the owner closes', async () => {
  const ctx = await context();
  const owner = await openPage(ctx, server.url);
  const other = await openPage(ctx, server.url);
  await openSynced(owner, 'shared', 'tabs');
  const st = await openSynced(other, 'shared', 'tabs');
  assert.equal(st.status, 'up-to-date');
  const writer = await openPage(await context(), server.url);
  await openSynced(writer, 'w', 'tabs');
  await owner.close();
  // The remaining tab's worker becomes the owner and restarts the sync there.
  await writer.evaluate(() => window.dbs.w.db.exec("INSERT INTO songs (id, title) VALUES ('t1', 'after the owner left')"));
  await waitFor(other, () => window.dbs.shared.db.query("SELECT count(*) AS n FROM songs WHERE id = 't1'").then(([r]) => r.n === 1));
  await waitFor(other, () => window.dbs.shared.sync.status === 'up-to-date');
  await other.close();
  await writer.close();
  record('sync-tabs', 'yes');
});
