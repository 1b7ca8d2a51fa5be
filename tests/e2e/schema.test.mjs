// Schema versioning through openDatabase: declarative schemas with mismatch / automigrate / reset
// across reloads, and ordered migration files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const V1 = `CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT);
SELECT crsql_as_crr('songs');`;
const V2 = `CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT, plays INTEGER NOT NULL DEFAULT 0);
SELECT crsql_as_crr('songs');`;

test('a changed schema after a reload is a SCHEMA_MISMATCH until migrate: auto, which keeps rows', async () => {
  const page = await openPage(browser.context, server.url);
  const first = await page.evaluate(async (sql) => {
    const db = await synqlite.openDatabase({ name: 'schema', schema: { name: 'media', sql } });
    await db.exec("INSERT INTO songs (id, title) VALUES (1, 'Intro'), (2, 'Outro')");
    const info = await db.schema();
    return { name: info.name, version: String(info.version) };
  }, V1);
  assert.equal(first.name, 'media');
  await page.reload();
  await page.waitForFunction(() => window.synqliteReady === true);
  const r = await page.evaluate(async ({ V1, V2 }) => {
    const same = await synqlite.openDatabase({ name: 'schema', schema: { name: 'media', sql: V1 } });
    await same.close();
    const mismatch = await caught(synqlite.openDatabase({ name: 'schema', schema: { name: 'media', sql: V2 } }));
    const otherName = await caught(synqlite.openDatabase({ name: 'schema', schema: { name: 'other', sql: V2 } }));
    const db = await synqlite.openDatabase({ name: 'schema', schema: { name: 'media', sql: V2 }, migrate: 'auto' });
    const rows = await db.query('SELECT id, title, plays FROM songs ORDER BY id');
    const info = await db.schema();
    // The replicated table still records changes after the alter.
    await db.exec('UPDATE songs SET plays = 3 WHERE id = 1');
    const changes = (await db.changes({ since: 0 })).filter((c) => c.cid === 'plays').length;
    await db.close();
    return { mismatch, otherName, rows, version: String(info.version), changes };
  }, { V1, V2 });
  assert.equal(r.mismatch.code, 'SCHEMA_MISMATCH');
  assert.match(r.mismatch.message, new RegExp(first.version));
  assert.equal(r.otherName.code, 'SCHEMA_NAME_MISMATCH');
  assert.deepEqual(r.rows, [{ id: 1, title: 'Intro', plays: 0 }, { id: 2, title: 'Outro', plays: 0 }]);
  assert.notEqual(r.version, first.version);
  assert.equal(r.changes, 1);
  await page.close();
});

test('ordered migrations apply once, in timestamp order; failures and tampering are reported', async () => {
  const page = await openPage(browser.context, server.url);
  const r = await page.evaluate(async () => {
    const files = [
      { name: '1718000100_add_index.sql', sql: 'CREATE INDEX IF NOT EXISTS songs_title ON songs (title);' },
      { name: '1718000000_create_songs.sql', sql: 'CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT);' },
    ];
    const db = await synqlite.openDatabase({ name: 'migrations', migrations: files });
    const first = (await db.schema()).migrations.map((m) => m.name);
    await db.close();
    const again = await synqlite.openDatabase({ name: 'migrations', migrations: files });
    const second = (await again.schema()).migrations.length;
    await again.close();
    const tampered = await caught(synqlite.openDatabase({ name: 'migrations', migrations: [{ ...files[1], sql: files[1].sql + ' -- edited' }] }));
    const failing = await caught(synqlite.openDatabase({ name: 'migrations', migrations: [...files, { name: '1718000200_broken.sql', sql: 'ALTER TABLE nope ADD COLUMN x' }] }));
    const badName = await caught(synqlite.openDatabase({ name: 'migrations', migrations: [{ name: 'create.sql', sql: 'SELECT 1' }] }));
    return { first, second, tampered, failing, badName };
  });
  assert.deepEqual(r.first, ['1718000000_create_songs.sql', '1718000100_add_index.sql']);
  assert.equal(r.second, 2);
  assert.equal(r.tampered.code, 'MIGRATION_CHANGED');
  assert.equal(r.failing.code, 'MIGRATION_FAILED');
  assert.match(r.failing.message, /1718000200_broken\.sql/);
  assert.match(r.failing.message, /no such table/);
  assert.equal(r.badName.code, 'MIGRATION_NAME');
  await page.close();
});
