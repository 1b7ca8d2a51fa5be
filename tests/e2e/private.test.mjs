// Private windows: Chromium's incognito (an off-the-record context), Firefox's private browsing,
// WebKit's WebDriver session (always ephemeral). `storage: 'auto'` must open a working database
// there, say which storage it chose, keep the data for the session (across a reload), and an
// explicit storage the window refuses must fail with STORAGE_UNAVAILABLE naming why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, record } from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.close();
});

test('private window: storage \'auto\' opens a working database that lasts the session', async () => {
  const browser = await launch({ private: true });
  try {
    const page = await openPage(browser.context, server.url);
    const first = await page.evaluate(async () => {
      const db = await synqlite.openDatabase({ name: 'private' });
      await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      await db.exec("INSERT INTO t VALUES (1, 'kept')");
      const storage = db.storage;
      await db.close();
      // Each explicit storage: opens, or says why not.
      const explicit = {};
      for (const kind of ['opfs', 'idb']) {
        try {
          const other = await synqlite.openDatabase({ name: `private-${kind}`, storage: kind });
          await other.exec('CREATE TABLE t (x)');
          explicit[kind] = other.storage;
          await other.close();
        } catch (e) {
          explicit[kind] = { code: e.code, message: e.message };
        }
      }
      return { storage, explicit };
    });
    assert.ok(['opfs', 'idb'].includes(first.storage), JSON.stringify(first));
    for (const [kind, r] of Object.entries(first.explicit)) {
      if (typeof r === 'string') assert.equal(r, kind);
      else {
        assert.equal(r.code, 'STORAGE_UNAVAILABLE', `${kind}: ${JSON.stringify(r)}`);
        assert.match(r.message, kind === 'opfs' ? /OPFS/ : /IndexedDB/);
      }
    }
    // `auto` picked one that works here.
    assert.equal(first.explicit[first.storage], first.storage);
    await page.reload();
    await page.waitForFunction(() => window.synqliteReady === true);
    const again = await page.evaluate(async () => {
      const db = await synqlite.openDatabase({ name: 'private' });
      const rows = await db.query('SELECT v FROM t');
      const storage = db.storage;
      await db.close();
      return { rows, storage };
    });
    assert.deepEqual(again, { rows: [{ v: 'kept' }], storage: first.storage });
    const why = (r) => (typeof r === 'string' ? 'yes' : `no (${r.message})`);
    record('private', `auto: ${first.storage}, kept across a reload; opfs: ${why(first.explicit.opfs)}; idb: ${why(first.explicit.idb)}`);
  } finally {
    await browser.close();
  }
});
