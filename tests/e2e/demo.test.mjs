// The demo app built with Vite (the package consumed as a dependency, the schema from schema/):
// adding a song through the form shows it in this tab and after a reload; with the real sync
// server, a song added in one browser appears in another and the seeded 50k rows sync with a
// progress bar that ends full.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { startServer, launch, startSyncServer } from './harness.mjs';

const WWW = resolve(new URL('../../www', import.meta.url).pathname);
let server, browser, sync;

before(async () => {
  execFileSync(resolve(WWW, '../node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: WWW, stdio: 'inherit' });
  server = await startServer({ root: resolve(WWW, 'dist') });
  browser = await launch();
  sync = await startSyncServer();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await sync?.close();
});

test('the built demo opens a database, adds a song and keeps it across a reload', async () => {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(server.url + '/');
  await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('on opfs'));
  await page.fill('input[name=title]', 'Intro');
  await page.fill('input[name=artist]', 'The Band');
  await page.click('form button');
  await page.waitForFunction(() => document.querySelectorAll('#songs tr').length === 1);
  assert.deepEqual(await page.$$eval('#songs tr td', (tds) => tds.slice(0, 2).map((td) => td.textContent)), ['Intro', 'The Band']);
  // The CHECK constraint's error is shown, not thrown away.
  await page.fill('input[name=title]', ' ');
  await page.click('form button');
  await page.waitForFunction(() => document.getElementById('error')?.textContent?.startsWith('SQLITE_CONSTRAINT'));
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#songs tr').length === 1);
  assert.match(await page.textContent('#status'), /1 song\(s\)/);
});

test('the demo syncs two browsers through the server and shows the initial sync progress', async () => {
  const other = await launch();
  try {
    const q = `?sync=${encodeURIComponent(sync.url)}&room=demo-e2e`;
    const a = await browser.context.newPage();
    const b = await other.context.newPage();
    for (const p of [a, b]) {
      p.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
      await p.goto(server.url + '/' + q);
      await p.waitForFunction(() => document.getElementById('sync-status')?.dataset.status === 'up-to-date', null, { timeout: 30_000 });
    }
    await a.fill('input[name=title]', 'Shared song');
    await a.click('form button');
    await b.waitForFunction(() => [...document.querySelectorAll('#songs tr td')].some((td) => td.textContent === 'Shared song'), null, { timeout: 30_000 });
    // A room seeded with 50k rows on the server: a fresh database's initial sync moves the
    // progress bar, which ends full.
    await sync.seed('demo-big', 50_000);
    const c = await other.context.newPage();
    await c.goto(`${server.url}/?sync=${encodeURIComponent(sync.url)}&room=demo-big&db=big`);
    const values = [];
    for (let i = 0; i < 2000; i++) {
      const v = await c.evaluate(() => ({
        value: document.getElementById('sync-progress')?.value ?? 0,
        status: document.getElementById('sync-status')?.dataset.status,
      }));
      values.push(v.value);
      if (v.status === 'up-to-date') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await c.waitForFunction(() => document.getElementById('sync-status')?.dataset.status === 'up-to-date' && document.getElementById('sync-progress').value === 1, null, { timeout: 60_000 });
    assert.ok(values.some((x) => x > 0 && x < 1), `the bar moved: ${values.filter((x) => x > 0).slice(0, 10).join(',')}`);
    await c.waitForFunction(() => /50000 song/.test(document.getElementById('status')?.textContent ?? ''), null, { timeout: 30_000 });
  } finally {
    await other.close();
  }
});
