// Token functions against the real server run with --token-secret: called on every connect and
// reconnect, refreshed once after UNAUTHORIZED, a rejecting function is a retried attempt, tabs
// that closed are replaced by other tabs' functions, and db.sync() with another token restarts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, launch, openPage, startSyncServer, schemaMigrations } from './harness.mjs';

const SECRET = 'e2e-token-secret';
let server, secured, migrations, browser;

before(async () => {
  server = await startServer();
  secured = await startSyncServer({ args: ['--token-secret', SECRET] });
  migrations = await schemaMigrations();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await secured?.close();
  await server?.close();
});

/** An HMAC room token (crates/server/src/auth/hmac.rs): `v1.<expiry>.<room b64url>.<mac b64url>`. */
function mint(room, { ttl = 3600, secret = SECRET } = {}) {
  const expiry = Math.floor(Date.now() / 1000) + ttl;
  const mac = createHmac('sha256', secret).update(`v1.${expiry}.${room}`).digest();
  return `v1.${expiry}.${Buffer.from(room).toString('base64url')}.${mac.toString('base64url')}`;
}

/**
 * A tab with helpers: `open(name)` opens the database, `track(sync)` records the statuses a handle
 * goes through in `window.seen`, `until(status, from)` waits for `status` among those recorded
 * after index `from`, `tokenFn(list, name)` is a token function handing out `list` (the last
 * entry again once used up; an entry `'reject'` rejects) and counting its calls in `calls[name]`.
 */
async function tab(name) {
  const page = await openPage(browser.context, server.url);
  await page.evaluate(async ({ name, migrations }) => {
    window.db = await synqlite.openDatabase({ name, migrations });
    window.seen = [];
    window.calls = {};
    window.track = (s) => {
      s.onStatus((status, state) => window.seen.push({ status, code: state.error?.code ?? null, message: state.error?.message ?? null }));
      return s;
    };
    window.until = (status, from = 0, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const t0 = Date.now();
        const check = () => {
          const hit = window.seen.slice(from).find((e) => e.status === status);
          if (hit) resolve(hit);
          else if (Date.now() - t0 > ms) reject(new Error(`no '${status}' within ${ms} ms: ${JSON.stringify(window.seen)}`));
          else setTimeout(check, 20);
        };
        check();
      });
    window.tokenFn = (list, fname) => {
      window.calls[fname] = 0;
      return async () => {
        const t = list[Math.min(window.calls[fname]++, list.length - 1)];
        if (t === 'reject') throw new Error('the token endpoint is down');
        return t;
      };
    };
  }, { name, migrations });
  return page;
}

test('a token function is called on connect and again on reconnect after the server restarts', async () => {
  const page = await tab('fn-reconnect');
  const first = await page.evaluate(async ({ url, good }) => {
    window.s = track(db.sync({ url, room: 'fn', token: tokenFn([good], 'f') }));
    await until('up-to-date');
    return { calls: calls.f, status: s.status };
  }, { url: secured.url, good: mint('fn') });
  assert.deepEqual(first, { calls: 1, status: 'up-to-date' });

  const mark = await page.evaluate(() => seen.length);
  await secured.restart();
  const after = await page.evaluate(async (mark) => {
    const lost = seen.slice(mark).findIndex((e) => e.status === 'offline' || e.status === 'connecting');
    if (lost < 0) await until('offline', mark);
    await until('up-to-date', mark);
    return { calls: calls.f, seen: seen.slice(mark), status: s.status };
  }, mark);
  assert.equal(after.status, 'up-to-date');
  assert.ok(after.calls >= 2, `called again on reconnect (${after.calls} calls)`);
  assert.ok(!after.seen.some((e) => e.status === 'error'), JSON.stringify(after.seen));
  // Local writes reach the server over the connection the function's token opened.
  await page.evaluate(() => db.exec("INSERT INTO songs (id, title) VALUES ('s1', 'After the restart')"));
  for (let i = 0; ; i++) {
    const res = await fetch(`${secured.http}/rooms/fn/rows/songs`, { headers: { authorization: `Bearer ${mint('fn')}` } });
    assert.equal(res.status, 200);
    const rows = await res.json();
    if (rows.length === 1) break;
    assert.ok(i < 200, `the song did not reach the server: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.evaluate(() => s.stop());
  await page.close();
});

test('an expired first token is refreshed once after UNAUTHORIZED and the sync comes up', async () => {
  const page = await tab('fn-refresh');
  const r = await page.evaluate(async ({ url, list }) => {
    window.s = track(db.sync({ url, room: 'refresh', token: tokenFn(list, 'f') }));
    await until('up-to-date');
    await new Promise((r) => setTimeout(r, 300));
    const out = { calls: calls.f, seen: [...seen], status: s.status };
    await s.stop();
    return out;
  }, { url: secured.url, list: [mint('refresh', { ttl: -60 }), mint('refresh')] });
  assert.equal(r.status, 'up-to-date');
  assert.equal(r.calls, 2);
  assert.ok(!r.seen.some((e) => e.status === 'error' || e.status === 'offline'), JSON.stringify(r.seen));
  await page.close();
});

test('a function that keeps returning a refused token stops with UNAUTHORIZED after exactly two calls', async () => {
  const page = await tab('fn-refused');
  const r = await page.evaluate(async ({ url, list }) => {
    window.s = track(db.sync({ url, room: 'refused', token: tokenFn(list, 'f') }));
    const hit = await until('error');
    await new Promise((r) => setTimeout(r, 1000));
    const out = { calls: calls.f, hit, seen: [...seen], status: s.status, error: s.error };
    await s.stop();
    return out;
  }, { url: secured.url, list: [`${mint('refused')}x`, mint('refused', { secret: 'forged' })] });
  assert.equal(r.status, 'error');
  assert.equal(r.error.code, 'UNAUTHORIZED');
  assert.equal(r.calls, 2);
  assert.ok(!r.seen.some((e) => e.status === 'offline'), JSON.stringify(r.seen));
  await page.close();
});

test('a rejecting token function is a failed attempt: offline and retried, not error', async () => {
  const page = await tab('fn-reject');
  const r = await page.evaluate(async ({ url }) => {
    window.s = track(db.sync({ url, room: 'reject', token: tokenFn(['reject'], 'f') }));
    const hit = await until('offline');
    const t0 = Date.now();
    while (calls.f < 3 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    const out = { calls: calls.f, hit, seen: [...seen], status: s.status };
    await s.stop();
    return out;
  }, { url: secured.url });
  assert.equal(r.hit.code, 'TOKEN_FAILED');
  assert.match(r.hit.message, /token endpoint is down/);
  assert.ok(r.calls >= 3, `retried (${r.calls} calls)`);
  assert.ok(!r.seen.some((e) => e.status === 'error'), JSON.stringify(r.seen));
  await page.close();
});

test('db.sync() again with another token restarts the handle with it; the same options join', async () => {
  const page = await tab('restart-token');
  const r = await page.evaluate(async ({ url, bad, good }) => {
    const room = 'again';
    const out = {};
    const s = (window.s = track(db.sync({ url, room, token: bad })));
    out.bad = (await until('error')).code;

    let mark = seen.length;
    out.sameHandle = db.sync({ url, room, token: good }) === s;
    await until('up-to-date', mark);

    // Identical options: the running handle, no reconnect.
    mark = seen.length;
    out.joined = db.sync({ url, room, token: good }) === s;
    await new Promise((r) => setTimeout(r, 300));
    out.seenAfterJoin = seen.slice(mark);

    // A token function instead, then another function.
    const fa = tokenFn([good], 'a');
    mark = seen.length;
    db.sync({ url, room, token: fa });
    await until('up-to-date', mark);
    db.sync({ url, room, token: fa });
    await new Promise((r) => setTimeout(r, 300));
    out.aCalls = calls.a;
    mark = seen.length;
    db.sync({ url, room, token: tokenFn([good], 'b') });
    await until('up-to-date', mark);
    out.bCalls = calls.b;
    out.aCallsAfter = calls.a;
    out.optionsToken = typeof s.options.token;

    // Back to a refused string: fatal at once.
    mark = seen.length;
    db.sync({ url, room, token: bad });
    out.badAgain = (await until('error', mark)).code;
    out.bCallsEnd = calls.b;
    await s.stop();
    return out;
  }, { url: secured.url, bad: mint('other'), good: mint('again') });
  assert.deepEqual(r, {
    bad: 'UNAUTHORIZED',
    sameHandle: true,
    joined: true,
    seenAfterJoin: [],
    aCalls: 1,
    bCalls: 1,
    aCallsAfter: 1,
    optionsToken: 'function',
    badAgain: 'UNAUTHORIZED',
    bCallsEnd: 1,
  });
  await page.close();
});

test('when the tab that gave the token function closes, another tab\'s function is asked; with none left: UNAUTHORIZED', async () => {
  const name = 'fn-tabs';
  // Tab A owns the database (first to open) and only watches the owner's state broadcasts.
  const a = await tab(name);
  const key = `tabs@${secured.url}`;
  await a.evaluate(({ name, key }) => {
    window.states = [];
    new BroadcastChannel(`synqlite:${name}:sync`).onmessage = (e) => {
      if (e.data.t === 'state' && e.data.key === key) states.push({ status: e.data.status, code: e.data.error?.code ?? null, message: e.data.error?.message ?? null });
    };
    window.waitState = (status, from, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const t0 = Date.now();
        const check = () => {
          const hit = states.slice(from).find((e) => e.status === status);
          if (hit) resolve(hit);
          else if (Date.now() - t0 > ms) reject(new Error(`no '${status}': ${JSON.stringify(states)}`));
          else setTimeout(check, 20);
        };
        check();
      });
  }, { name, key });
  const b = await tab(name);
  const c = await tab(name);
  const start = (page) =>
    page.evaluate(async ({ url, good }) => {
      window.s = track(db.sync({ url, room: 'tabs', token: tokenFn([good], 'f') }));
      await until('up-to-date');
      return calls.f;
    }, { url: secured.url, good: mint('tabs') });
  assert.equal(await start(b), 1);
  // C joins the running sync (no reconnect, so no call yet) and becomes the token source in use.
  assert.equal(await start(c), 0);

  await c.close();
  let mark = await a.evaluate(() => states.length);
  const bBefore = await b.evaluate(() => calls.f);
  await secured.restart();
  await a.evaluate((mark) => waitState('up-to-date', mark), mark);
  const bAfter = await b.evaluate(() => calls.f);
  assert.ok(bAfter > bBefore, `B's function was asked after C closed (${bBefore} -> ${bAfter})`);

  await b.close();
  mark = await a.evaluate(() => states.length);
  await secured.restart();
  const err = await a.evaluate((mark) => waitState('error', mark), mark);
  assert.equal(err.code, 'UNAUTHORIZED');
  assert.match(err.message, /no token source is left/);
  await a.close();
});
