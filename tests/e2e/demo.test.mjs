// The demo app built with Vite (the package consumed as a dependency): it opens a database,
// shows a table, and adding a song through the form shows it in this tab and after a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { startServer, launch } from './harness.mjs';

const WWW = resolve(new URL('../../www', import.meta.url).pathname);
let server, browser;

before(async () => {
  execFileSync(resolve(WWW, '../node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: WWW, stdio: 'inherit' });
  server = await startServer({ root: resolve(WWW, 'dist') });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the built demo opens a database, adds a song and keeps it across a reload', async () => {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(server.url + '/');
  await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('on opfs'));
  await page.fill('input[name=title]', 'Intro');
  await page.fill('input[name=artist]', 'The Band');
  await page.click('button');
  await page.waitForFunction(() => document.querySelectorAll('#songs tr').length === 1);
  assert.deepEqual(await page.$$eval('#songs tr td', (tds) => tds.slice(1, 3).map((td) => td.textContent)), ['Intro', 'The Band']);
  // The CHECK constraint's error is shown, not thrown away.
  await page.fill('input[name=title]', ' ');
  await page.click('button');
  await page.waitForFunction(() => document.getElementById('error')?.textContent?.startsWith('SQLITE_CONSTRAINT'));
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#songs tr').length === 1);
  assert.match(await page.textContent('#status'), /1 song\(s\)/);
});
