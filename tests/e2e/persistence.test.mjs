// Durability: data survives a reload on OPFS and IndexedDB, and a worker terminated right after
// a write resolved loses nothing. Where the browser has no OPFS the OPFS cases are skipped with
// the reason, `storage: 'opfs'` fails with STORAGE_UNAVAILABLE naming it, and `auto` picks
// IndexedDB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launch, openPage, capabilities, skipWithoutOpfs, record } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const storage of ['opfs', 'idb']) {
  test(`${storage}: write, reload, read back`, async (t) => {
    const page = await openPage(browser.context, server.url);
    if (storage === 'opfs' && (await skipWithoutOpfs(t, page))) return page.close();
    const wrote = await page.evaluate(async (storage) => {
      const db = await synqlite.openDatabase({ name: `reload-${storage}`, storage });
      await db.exec('CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY, title TEXT, art BLOB)');
      const art = new Uint8Array(300_000).map((_, i) => i % 251);
      await db.exec('INSERT INTO songs (title, art) VALUES (?, ?)', ['Intro', art]);
      await db.batch([['INSERT INTO songs (title) VALUES (?)', ['Second']], ['INSERT INTO songs (title) VALUES (?)', ['Third']]]);
      await db.tx(async (tx) => tx.exec("INSERT INTO songs (title) VALUES ('Fourth')"));
      return db.storage;
    }, storage);
    assert.equal(wrote, storage);
    await page.reload();
    await page.waitForFunction(() => window.synqliteReady === true);
    const read = await page.evaluate(async (storage) => {
      const db = await synqlite.openDatabase({ name: `reload-${storage}`, storage });
      const rows = await db.query('SELECT id, title, length(art) AS n, sum(0) FILTER (WHERE 0) AS z FROM songs GROUP BY id ORDER BY id');
      const [check] = await db.query('SELECT art FROM songs WHERE id = 1');
      const ok = check.art.every((v, i) => v === i % 251);
      const [integrity] = await db.query('PRAGMA integrity_check');
      return { storage: db.storage, rows: rows.map((r) => [r.id, r.title, r.n]), ok, integrity };
    }, storage);
    assert.equal(read.storage, storage);
    assert.deepEqual(read.rows, [[1, 'Intro', 300000], [2, 'Second', null], [3, 'Third', null], [4, 'Fourth', null]]);
    assert.ok(read.ok, 'blob bytes intact');
    assert.deepEqual(read.integrity, { integrity_check: 'ok' });
    record(`reload-${storage}`, 'yes');
    await page.close();
  });

  test(`${storage}: terminating the worker right after writes resolve loses nothing`, async (t) => {
    const page = await openPage(browser.context, server.url);
    if (storage === 'opfs' && (await skipWithoutOpfs(t, page))) return page.close();
    const r = await page.evaluate(async (storage) => {
      const name = `kill-${storage}`;
      const results = [];
      for (let round = 0; round < 3; round++) {
        const worker = new Worker(new URL('/pkg/dist/worker.js', location.href), { type: 'module' });
        const db = await synqlite.openDatabase({ name, storage, worker });
        await db.exec('CREATE TABLE IF NOT EXISTS t (round INTEGER, i INTEGER)');
        for (let i = 0; i < 20; i++) await db.exec('INSERT INTO t VALUES (?, ?)', [round, i]);
        await db.tx(async (tx) => tx.exec('INSERT INTO t VALUES (?, -1)', [round]));
        // Start more writes, and kill the worker while they are in flight.
        const inflight = [];
        for (let i = 100; i < 140; i++) inflight.push(db.exec('INSERT INTO t VALUES (?, ?)', [round, i]).then(() => i, () => null));
        await inflight[5];
        worker.terminate();
        const settled = (await Promise.race([Promise.all(inflight), new Promise((r) => setTimeout(() => r('pending'), 200))]));
        results.push({ resolvedBeforeKill: 6 });
        void settled;
      }
      const db = await synqlite.openDatabase({ name, storage });
      const [integrity] = await db.query('PRAGMA integrity_check');
      const rows = await db.query('SELECT round, count(*) AS n, sum(i < 100) AS awaited, max(i) AS mx FROM t GROUP BY round ORDER BY round');
      const prefixes = await db.query('SELECT round, count(*) AS n, max(i) - 99 AS top FROM t WHERE i >= 100 GROUP BY round');
      await db.close();
      return { integrity, rows, prefixes, storage: db.storage };
    }, storage);
    assert.equal(r.storage, storage);
    assert.deepEqual(r.integrity, { integrity_check: 'ok' });
    assert.equal(r.rows.length, 3);
    for (const row of r.rows) assert.equal(row.awaited, 21, `every awaited write of round ${row.round} survived`);
    // The in-flight writes that made it form a prefix (writes are applied in order), and include
    // at least the six that had resolved before the kill.
    for (const p of r.prefixes) {
      assert.equal(p.n, p.top, `in-flight writes of round ${p.round} are a prefix`);
      assert.ok(p.n >= 6, `round ${p.round}: resolved in-flight writes survived (${p.n})`);
    }
    record(`kill-${storage}`, 'yes');
    await page.close();
  });
}

test('memory storage starts empty after a reload; auto picks OPFS (IndexedDB without OPFS)', async () => {
  const page = await openPage(browser.context, server.url);
  const { opfs } = await capabilities(page);
  await page.evaluate(async () => {
    const db = await synqlite.openDatabase({ name: 'mem', storage: 'memory' });
    await db.exec('CREATE TABLE t (x)');
  });
  await page.reload();
  await page.waitForFunction(() => window.synqliteReady === true);
  const r = await page.evaluate(async () => {
    const db = await synqlite.openDatabase({ name: 'mem', storage: 'memory' });
    const tables = await db.query("SELECT name FROM sqlite_schema WHERE name = 't'");
    const auto = await synqlite.openDatabase({ name: 'auto-pick' });
    const opfs = await caught(synqlite.openDatabase({ name: 'opfs-pick', storage: 'opfs' }));
    return { tables, storage: db.storage, auto: auto.storage, opfs };
  });
  assert.deepEqual({ ...r, opfs: undefined }, { tables: [], storage: 'memory', auto: opfs === true ? 'opfs' : 'idb', opfs: undefined });
  if (opfs === true) {
    assert.equal(r.opfs, null);
  } else {
    // Without OPFS an explicit `opfs` names what is missing.
    assert.equal(r.opfs.code, 'STORAGE_UNAVAILABLE');
    assert.match(r.opfs.message, /^OPFS is not available here: /);
  }
  record('auto', r.auto);
  await page.close();
});

test('storage.persist() settles (the persistence prompt) and persisted() reports the answer', async () => {
  const page = await openPage(browser.context, server.url);
  const r = await page.evaluate(async () => {
    const before = await synqlite.storage.persisted();
    // A browser that prompts waits for the user; the test profile pre-answers it (Firefox prefs).
    const asked = await Promise.race([synqlite.storage.persist(), new Promise((r) => setTimeout(() => r('no answer within 10 s'), 10_000))]);
    const after = await synqlite.storage.persisted();
    const estimate = await synqlite.storage.estimate();
    return { before, asked, after, estimate };
  });
  assert.ok(['persisted', 'not-persisted', 'unsupported'].includes(r.asked), JSON.stringify(r));
  assert.equal(r.after, r.asked === 'unsupported' ? 'unsupported' : r.asked, 'persisted() reports what persist() answered');
  if (r.asked !== 'unsupported') assert.ok(r.estimate.quota > 0, JSON.stringify(r.estimate));
  record('persist', `${r.before} → persist(): ${r.asked}`);
  await page.close();
});

test('without the Storage API (WebKitGTK as shipped): auto picks IndexedDB, opfs names what is missing, persist() is unsupported', async (t) => {
  const plain = await launch({ storageApi: false });
  if (!plain) return t.skip('this engine cannot be launched without the Storage API (WebKitGTK ships it disabled)');
  try {
    const page = await openPage(plain.context, server.url);
    assert.equal((await capabilities(page)).opfs, 'the worker has no navigator.storage (Storage API)');
    const r = await page.evaluate(async () => {
      const auto = await synqlite.openDatabase({ name: 'plain-auto' });
      await auto.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      const n = (await auto.query('SELECT count(*) AS n FROM t'))[0].n;
      const opfs = await caught(synqlite.openDatabase({ name: 'plain-opfs', storage: 'opfs' }));
      return { auto: auto.storage, n, opfs, persist: await synqlite.storage.persist(), estimate: await synqlite.storage.estimate() };
    });
    assert.deepEqual({ auto: r.auto, n: r.n }, { auto: 'idb', n: 1 });
    assert.equal(r.opfs.code, 'STORAGE_UNAVAILABLE');
    assert.equal(r.opfs.message, 'OPFS is not available here: the worker has no navigator.storage (Storage API)');
    assert.equal(r.persist, 'unsupported');
    assert.equal(r.estimate, 'unsupported');
    record('no-storage-api', `auto: ${r.auto}; opfs: STORAGE_UNAVAILABLE (no navigator.storage); persist(): unsupported`);
  } finally {
    await plain.close();
  }
});

test('idb: data survives a browser restart on the same profile', async (t) => {
  const profile = await mkdtemp(join(tmpdir(), 'synqlite-profile-'));
  try {
    const first = await launch({ profile });
    if (!first) return t.skip("this engine's driver cannot restart a browser on a kept profile (WebKit's WebDriver sessions are ephemeral)");
    let page = await openPage(first.context, server.url);
    await page.evaluate(async () => {
      const db = await synqlite.openDatabase({ name: 'restart', storage: 'idb' });
      await db.exec('CREATE TABLE t (x)');
      await db.exec('INSERT INTO t VALUES (42)');
    });
    await first.close();
    const second = await launch({ profile });
    try {
      page = await openPage(second.context, server.url);
      const r = await page.evaluate(async () => {
        const db = await synqlite.openDatabase({ name: 'restart', storage: 'idb' });
        return { rows: await db.query('SELECT x FROM t'), integrity: (await db.query('PRAGMA integrity_check'))[0] };
      });
      assert.deepEqual(r, { rows: [{ x: 42 }], integrity: { integrity_check: 'ok' } });
      record('idb-restart', 'yes');
    } finally {
      await second.close();
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
});
