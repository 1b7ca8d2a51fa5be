// Storage pressure: browsers whose quota for the test origin is 1 MiB and 16 MiB, on OPFS and on
// IndexedDB. Opening may be refused (Chromium reserves OPFS capacity in MiB steps): then with
// SQLITE_FULL. Writing until the quota is full must fail with SQLITE_FULL and keep every row
// committed before, byte for byte, in an intact database that reopens with the same rows. A
// delete after that either frees space that the next write reuses, or (IndexedDB needs room to
// write even the freed pages) fails with SQLITE_FULL too and changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, capabilities, record } from './harness.mjs';

const ROW_BYTES = 48 * 1024;
const QUOTAS = [1 << 20, 16 << 20];

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.close();
});

/**
 * Fills database `name` on `storage` with rows of ROW_BYTES until a write fails (at most
 * `maxRows`), then frees half and writes again; returns what happened at each step.
 */
const fill = (page, name, storage, maxRows) =>
  page.evaluate(async ({ name, storage, rowBytes, maxRows }) => {
    const body = (id) => new Uint8Array(rowBytes).fill((id % 251) + 1);
    const caught = (e) => ({ code: e.code, message: e.message, isSynqliteError: e instanceof synqlite.SynqliteError });
    let db;
    try {
      db = await synqlite.openDatabase({ name, storage });
    } catch (e) {
      return { openError: caught(e) };
    }
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    let error = null;
    let written = 0;
    for (let id = 0; id < maxRows && !error; id++) {
      try {
        await db.exec('INSERT INTO t VALUES (?, ?)', [id, body(id)]);
        written++;
      } catch (e) {
        error = caught(e);
      }
    }
    // The rows are 0..expected-1 (and `extra`), each byte for byte, in an intact database.
    const check = async (from, to, extra = []) => {
      const rows = await db.query('SELECT id, body FROM t ORDER BY id');
      const ids = rows.map((r) => Number(r.id));
      const want = [...Array(to - from).keys()].map((i) => i + from).concat(extra);
      const bad = rows.filter((r) => r.body.length !== rowBytes || r.body.some((b) => b !== (Number(r.id) % 251) + 1));
      const [{ integrity_check }] = await db.query('PRAGMA integrity_check');
      return { count: rows.length, idsAsWritten: JSON.stringify(ids) === JSON.stringify(want), bad: bad.length, integrity: integrity_check };
    };
    const afterFull = await check(0, written);
    let freeError = null;
    let afterFree = null;
    const half = Math.floor(written / 2);
    try {
      await db.exec('DELETE FROM t WHERE id < ?', [half]);
    } catch (e) {
      freeError = caught(e);
    }
    let againError = null;
    if (freeError) {
      afterFree = await check(0, written);
    } else {
      try {
        await db.exec('INSERT INTO t VALUES (?, ?)', [100_000, body(100_000)]);
      } catch (e) {
        againError = caught(e);
      }
      afterFree = await check(half, written, [100_000]);
    }
    const picked = db.storage;
    await db.close();
    const reopened = await synqlite.openDatabase({ name, storage });
    const [{ n }] = await reopened.query('SELECT count(*) AS n FROM t');
    const [{ integrity_check }] = await reopened.query('PRAGMA integrity_check');
    await reopened.close();
    return { picked, written, error, afterFull, freeError, againError, afterFree, reopened: { count: Number(n), integrity: integrity_check } };
  }, { name, storage, rowBytes: ROW_BYTES, maxRows });

const NO_QUOTA = 'this engine\'s driver cannot set a storage quota (WebKitGTK\'s WebDriver sessions keep website data in memory, without a quota)';

/**
 * Runs `fn(page)` in a fresh browser whose quota for the test origin is `quota` bytes; returns
 * `{ noQuota: reason }` without running it when this engine's driver cannot set a quota.
 */
async function withQuota(quota, fn) {
  const browser = await launch({ quota: { origin: server.url, bytes: quota } });
  if (!browser) return { noQuota: NO_QUOTA };
  try {
    return await fn(await openPage(browser.context, server.url));
  } finally {
    await browser.close();
  }
}

for (const storage of ['opfs', 'idb']) {
  test(`storage full on ${storage}: writes past a 1 or 16 MiB quota fail with SQLITE_FULL and every committed row stays intact`, async (t) => {
    const facts = [];
    let full = 0;
    for (const quota of QUOTAS) {
      const mib = quota >> 20;
      const maxRows = Math.ceil((3 * quota) / ROW_BYTES);
      const r = await withQuota(quota, async (page) => {
        const { opfs } = await capabilities(page);
        // A probe refused for want of quota still means OPFS exists: opening must say SQLITE_FULL.
        if (storage === 'opfs' && opfs !== true && !String(opfs).includes('QuotaExceededError')) return { unavailable: opfs };
        return fill(page, `full-${storage}`, storage, maxRows);
      });
      if (r.noQuota) {
        record(`quota-${storage}`, `n/a: ${r.noQuota}`);
        t.skip(r.noQuota);
        return;
      }
      if (r.unavailable) {
        record(`quota-${storage}`, `n/a: needs OPFS sync access handles: ${r.unavailable}`);
        t.skip(`needs OPFS sync access handles: ${r.unavailable}`);
        return;
      }
      const label = `${mib} MiB ${storage}: ${JSON.stringify(r)}`;
      if (r.openError) {
        assert.equal(r.openError.code, 'SQLITE_FULL', label);
        assert.ok(r.openError.isSynqliteError, label);
        facts.push(`${mib} MiB: open refused with SQLITE_FULL`);
        full++;
        continue;
      }
      assert.equal(r.picked, storage, label);
      assert.ok(r.written > 0, `some rows fit: ${label}`);
      assert.deepEqual(r.afterFull, { count: r.written, idsAsWritten: true, bad: 0, integrity: 'ok' }, label);
      assert.deepEqual(r.reopened, { count: r.afterFree.count, integrity: 'ok' }, label);
      if (!r.error) {
        // The engine let this run write 3x the quota: it counts this storage loosely here.
        assert.equal(r.written, maxRows, label);
        facts.push(`${mib} MiB: not enforced within ${(maxRows * ROW_BYTES) >> 20} MiB`);
        continue;
      }
      full++;
      assert.equal(r.error.code, 'SQLITE_FULL', label);
      assert.ok(r.error.isSynqliteError, label);
      if (r.freeError) {
        assert.equal(r.freeError.code, 'SQLITE_FULL', label);
        assert.deepEqual(r.afterFree, r.afterFull, `a refused delete changes nothing: ${label}`);
      } else {
        assert.equal(r.againError, null, `a write after freeing space succeeds: ${label}`);
        assert.deepEqual(r.afterFree, { count: r.written - Math.floor(r.written / 2) + 1, idsAsWritten: true, bad: 0, integrity: 'ok' }, label);
      }
      const kib = (r.written * ROW_BYTES) >> 10;
      facts.push(`${mib} MiB: SQLITE_FULL after ${kib} KiB, rows intact, ${r.freeError ? 'delete refused too' : 'delete frees space'}`);
    }
    assert.ok(full > 0, `SQLITE_FULL was reached with one of the quotas: ${facts.join('; ')}`);
    record(`quota-${storage}`, facts.join('; '));
  });
}

test('storage: \'auto\' with a 1 MiB quota opens a database or says SQLITE_FULL', async (t) => {
  const r = await withQuota(QUOTAS[0], (page) =>
    page.evaluate(async () => {
      try {
        const db = await synqlite.openDatabase({ name: 'full-auto' });
        await db.exec('CREATE TABLE t (x)');
        const picked = db.storage;
        await db.close();
        return { picked };
      } catch (e) {
        return { picked: `${e.code}: ${e.message}` };
      }
    }),
  );
  if (r.noQuota) {
    record('quota-auto', `n/a: ${r.noQuota}`);
    t.skip(r.noQuota);
    return;
  }
  const { picked } = r;
  assert.ok(picked === 'opfs' || picked === 'idb' || picked.startsWith('SQLITE_FULL:'), picked);
  record('quota-auto', picked.split(':')[0]);
});
