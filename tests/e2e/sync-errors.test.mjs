// Sync errors a retry cannot fix, against the real server: a server run with --token-secret
// refuses a missing token and a token for another room with UNAUTHORIZED, accepts a valid one;
// a room name the server rejects gives INVALID_ROOM. (SCHEMA_MISMATCH is in sync.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startServer, launch, openPage, startSyncServer, schemaMigrations } from './harness.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const SECRET = 'e2e-secret';
let server, open, secured, migrations, browser;

before(async () => {
  server = await startServer();
  open = await startSyncServer();
  secured = await startSyncServer({ args: ['--token-secret', SECRET] });
  migrations = await schemaMigrations();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await secured?.close();
  await open?.close();
  await server?.close();
});

function token(room) {
  const bin = join(ROOT, 'target/debug/synqlite-server');
  return execFileSync(bin, ['token', '--room', room, '--secret', SECRET], { encoding: 'utf8' }).trim();
}

/** In the page: starts a sync and resolves with its first final status and what listeners saw. */
async function syncUntilSettled(page, { name, url, room, token }) {
  return page.evaluate(async ({ name, url, room, token, migrations }) => {
    window.dbs ??= {};
    const db = (window.dbs[name] ??= await synqlite.openDatabase({ name, migrations }));
    const s = db.sync(token === undefined ? { url, room } : { url, room, token });
    const seen = [];
    const settled = ['up-to-date', 'error'];
    await new Promise((resolve) => {
      if (settled.includes(s.status)) resolve();
      s.onStatus((st, state) => {
        seen.push({ status: st, code: state.error?.code ?? null });
        if (settled.includes(st)) resolve();
      });
    });
    const result = { status: s.status, error: s.error ?? null, seen: [...seen] };
    await s.stop();
    result.afterStop = s.status;
    return result;
  }, { name, url, room, token, migrations });
}

test('a server with --token-secret: no token or another room\'s token is UNAUTHORIZED, a valid token syncs', async () => {
  const page = await openPage(browser.context, server.url);
  const url = secured.url;
  const none = await syncUntilSettled(page, { name: 'auth', url, room: 'private' });
  assert.equal(none.status, 'error');
  assert.equal(none.error.code, 'UNAUTHORIZED');
  assert.ok(none.error.message.length > 0);
  assert.deepEqual(none.seen.at(-1), { status: 'error', code: 'UNAUTHORIZED' });
  assert.ok(!none.seen.some((e) => e.status === 'offline'), 'no retry for a refused token');
  assert.equal(none.afterStop, 'stopped');

  const other = await syncUntilSettled(page, { name: 'auth', url, room: 'private', token: token('other') });
  assert.equal(other.status, 'error');
  assert.equal(other.error.code, 'UNAUTHORIZED');

  const forged = await syncUntilSettled(page, { name: 'auth', url, room: 'private', token: `${token('private')}x` });
  assert.equal(forged.error?.code, 'UNAUTHORIZED');

  const good = await syncUntilSettled(page, { name: 'auth', url, room: 'private', token: token('private') });
  assert.equal(good.status, 'up-to-date');
  assert.equal(good.error, null);
  await page.close();
});

test('a room name the server rejects stops the sync with INVALID_ROOM', async () => {
  const page = await openPage(browser.context, server.url);
  const r = await syncUntilSettled(page, { name: 'rooms', url: open.url, room: '../escape' });
  assert.equal(r.status, 'error');
  assert.equal(r.error.code, 'INVALID_ROOM');
  // The same database syncs fine with a valid room afterwards.
  const ok = await syncUntilSettled(page, { name: 'rooms', url: open.url, room: 'fine' });
  assert.equal(ok.status, 'up-to-date');
  await page.close();
});
