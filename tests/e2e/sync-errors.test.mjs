// Sync errors a retry cannot fix, against the real server: a server run with --token-secret
// refuses a missing token and a token for another room with UNAUTHORIZED, accepts a valid one;
// a room name the server rejects gives INVALID_ROOM; a server that ignores flow control (a proxy
// acknowledging chunks on the client's behalf and delivering them in one burst) gives
// PROTOCOL_ERROR. (SCHEMA_MISMATCH is in sync.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { WebSocketServer, WebSocket } from 'ws';
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

/**
 * A proxy in front of the sync server that breaks its flow control: it acknowledges every change
 * chunk to the server itself (so the server streams the whole backlog), drops the client's own
 * acknowledgements, and hands the client the chunks in bursts of `burst`.
 */
async function floodingProxy(upstream, burst) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const kind = (f) => f[2]; // magic, version, kind
  const CHANGES = 3;
  const ACK = 4;
  // An Ack carries the cursor a Changes frame starts with: two LEB128 varints after the header.
  const ackFor = (f) => {
    let i = 3;
    for (let n = 0; n < 2; n++) while (f[i++] & 0x80);
    return Buffer.concat([Buffer.from([f[0], f[1], ACK]), f.subarray(3, i)]);
  };
  wss.on('connection', (client, req) => {
    const server = new WebSocket(new URL(req.url, upstream).href);
    const early = [];
    let held = [];
    client.on('message', (data) => {
      if (kind(data) === ACK) return;
      if (server.readyState === WebSocket.OPEN) server.send(data);
      else early.push(data);
    });
    server.on('open', () => early.splice(0).forEach((d) => server.send(d)));
    server.on('message', (data) => {
      if (kind(data) !== CHANGES) return client.send(data);
      server.send(ackFor(data));
      held.push(data);
      if (held.length >= burst) {
        for (const f of held) client.send(f);
        held = [];
      }
    });
    const closeBoth = () => {
      client.close();
      server.close();
    };
    client.on('close', closeBoth);
    server.on('close', closeBoth);
    server.on('error', closeBoth);
  });
  const { port } = wss.address();
  return { url: `ws://127.0.0.1:${port}${new URL(upstream).pathname}`, close: () => new Promise((r) => wss.close(r)) };
}

test('a server that ignores the window (chunks delivered 200 at a time) stops the sync with PROTOCOL_ERROR, the database intact', async () => {
  await open.seed('flood', 20_000);
  const proxy = await floodingProxy(open.url, 200);
  try {
    const page = await openPage(browser.context, server.url);
    const r = await page.evaluate(async ({ url, migrations }) => {
      const db = await synqlite.openDatabase({ name: 'flood', migrations });
      const s = db.sync({ url, room: 'flood', chunkSize: 64 });
      await new Promise((resolve) => {
        s.onStatus((st) => (st === 'error' || st === 'up-to-date') && resolve());
      });
      const out = { status: s.status, error: s.error ?? null };
      await s.stop();
      const [{ integrity_check }] = await db.query('PRAGMA integrity_check');
      const [{ n }] = await db.query('SELECT count(*) AS n FROM songs');
      return { ...out, integrity_check, songs: Number(n) };
    }, { url: proxy.url, migrations });
    assert.equal(r.status, 'error', JSON.stringify(r));
    assert.equal(r.error.code, 'PROTOCOL_ERROR');
    assert.match(r.error.message, /flow control/);
    assert.equal(r.integrity_check, 'ok');
    assert.ok(r.songs < 20_000, `stopped before the end: ${r.songs}`);
    await page.close();
  } finally {
    await proxy.close();
  }
});
