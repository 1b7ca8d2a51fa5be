// The demo app (built with `vite build`) in two browsers (separate profiles) syncing through the
// real synqlite-server: a song added with its files in A reaches B with its cover and audio; the
// theme follows; going offline in B holds back A's changes until B is online again; and a room
// seeded with 50k songs on the server (the Sync screen's button) syncs with a progress bar that
// moves and ends at 100%. Screenshots of the Sync screen go to tests/e2e/output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startServer, launch, startSyncServer, record } from './harness.mjs';
import { addSong, buildDemo, go, openDemo, png, sha256, shot, until, waitForSong, wav } from './demo-lib.mjs';

const AUDIO = { name: 'loop.wav', mimeType: 'audio/wav', buffer: wav({ seconds: 1, hz: 523 }) };
const COVER = { name: 'art.png', mimeType: 'image/png', buffer: png({ size: 24, from: [20, 160, 120], to: [250, 200, 40] }) };

let dist, server, sync, browserA, browserB, a, b;
const status = (p) => p.$eval('.top .badge', (el) => el.dataset.status);
const upToDate = (p, timeout = 60_000) => until(p, () => document.querySelector('.top .badge')?.dataset.status === 'up-to-date', null, { timeout });

before(async () => {
  dist = buildDemo();
  [server, sync, browserA, browserB] = await Promise.all([startServer({ root: dist }), startSyncServer(), launch(), launch()]);
  const query = `?room=media-e2e&sync=${encodeURIComponent(sync.url)}`;
  a = await openDemo(browserA.context, server.url, query);
  b = await openDemo(browserB.context, server.url, query);
  await Promise.all([upToDate(a), upToDate(b)]);
});

after(async () => {
  await browserA?.close();
  await browserB?.close();
  await server?.close();
  await sync?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
});

test('a song added with its files in browser A reaches browser B through the server, cover and audio included', async () => {
  await addSong(a, { title: 'Across', artist: 'Synced Duo', album: 'Two Browsers', genre: 'ambient', audio: AUDIO, cover: COVER });
  await waitForSong(b, 'Across');
  await until(b, () => {
    const img = document.querySelector('.song img.cover');
    return img?.src.startsWith('blob:') && img.complete && img.naturalWidth === 24;
  });
  const [row] = await b.evaluate(() => window.demo.db.query("SELECT audio_sha256, cover_sha256, json_extract(metadata, '$.genre') AS genre FROM songs WHERE title = 'Across'"));
  assert.deepEqual(row, { audio_sha256: sha256(AUDIO.buffer), cover_sha256: sha256(COVER.buffer), genre: 'ambient' });
  await b.click('.song button[title=play]');
  await until(b, () => {
    const audio = document.querySelector('.player audio');
    return audio?.src.startsWith('blob:') && audio.readyState >= 1 && Math.abs(audio.duration - 1) < 0.1;
  });
  // The server holds the files too.
  const blobs = await sync.rows('media-e2e', 'media_blobs');
  assert.equal(blobs.length, 2);
  await shot(b, 'sync-library-b');
});

test('the theme chosen in A applies in B', async () => {
  await go(a, 'settings');
  await a.click('fieldset[aria-label=theme] label:has-text("Dark")');
  await until(b, () => document.documentElement.dataset.theme === 'dark');
  await a.click('fieldset[aria-label=theme] label:has-text("Light")');
  await until(b, () => document.documentElement.dataset.theme === 'light');
});

test('offline in B: A\'s changes wait until B goes online again', async () => {
  await go(b, 'sync');
  await b.click('#sync-toggle');
  await until(b, () => document.querySelector('.top .badge')?.dataset.status === 'stopped');
  assert.equal(await b.textContent('#sync-toggle'), 'Go online');
  await addSong(a, { title: 'While you were away', artist: 'Synced Duo' });
  await until(a, () => document.querySelector('.top .badge')?.dataset.status === 'up-to-date');
  await new Promise((r) => setTimeout(r, 1000));
  const has = () => b.evaluate(async () => (await window.demo.db.query("SELECT count(*) AS n FROM songs WHERE title = 'While you were away'"))[0].n);
  assert.equal(await has(), 0, 'nothing arrives while offline');
  await b.click('#sync-toggle');
  await upToDate(b);
  await until(b, async () => (await window.demo.db.query("SELECT count(*) AS n FROM songs WHERE title = 'While you were away'"))[0].n === 1);
  assert.equal(await status(b), 'up-to-date');
});

test('a room seeded with 50k songs syncs with a progress bar that moves and ends at 100%', async () => {
  await go(b, 'sync');
  // Offline first, so the seeded rows come as one initial sync (with a total) when back online.
  await b.click('#sync-toggle');
  await until(b, () => document.querySelector('.top .badge')?.dataset.status === 'stopped');
  await b.click('#sync-seed');
  await until(b, () => /added 50,000 songs/.test(document.querySelector('.sync .ok')?.textContent ?? ''), null, { timeout: 120_000 });
  // Sample the bar in the page while the sync runs.
  await b.evaluate(() => {
    const bar = document.getElementById('sync-progress');
    window.samples = [];
    window.sampler = setInterval(() => window.samples.push(bar.value), 10);
  });
  const started = Date.now();
  await b.click('#sync-toggle');
  // A screenshot mid-way, if the sync is slow enough to catch.
  const mid = await until(b, () => {
    const v = document.getElementById('sync-progress').value;
    return (v > 0.1 && v < 0.7) || document.querySelector('.top .badge')?.dataset.status === 'up-to-date';
  }, null, { timeout: 120_000 }).then(() => b.evaluate(() => document.getElementById('sync-progress').value));
  if (mid < 1) await shot(b, 'sync-progress');
  await until(b, () => document.querySelector('.top .badge')?.dataset.status === 'up-to-date' && document.getElementById('sync-progress').value === 1, null, { timeout: 180_000 });
  const seconds = (Date.now() - started) / 1000;
  const samples = await b.evaluate(() => {
    clearInterval(window.sampler);
    return window.samples;
  });
  const moving = samples.filter((v) => v > 0 && v < 1);
  assert.ok(moving.length >= 3, `the bar moved: ${moving.length} intermediate samples`);
  for (let i = 1; i < samples.length; i++) assert.ok(samples[i] >= samples[i - 1] || samples[i - 1] === 1, `never backwards: ${samples[i - 1]} -> ${samples[i]}`);
  assert.match(await b.textContent('#sync-count'), /^([\d,]+) \/ \1 changes$/);
  const n = await b.evaluate(async () => (await window.demo.db.query('SELECT count(*) AS n FROM songs'))[0].n);
  assert.equal(n, 50_002);
  console.log(`# 50k songs synced in ${seconds.toFixed(1)} s; ${moving.length} of ${samples.length} samples mid-way`);
  await shot(b, 'sync');
  // The library shows the total and the newest 100, and search finds seeded artists.
  await go(b, 'library');
  assert.match(await b.textContent('#song-count'), /50,002 songs \(the 100 most recently added shown\)/);
  await shot(b, 'sync-library-50k', { fullPage: false });
  await go(b, 'search');
  await b.fill('input[aria-label=artist]', 'Artist 42');
  await until(b, () => document.querySelectorAll('.song').length === 100);
  assert.match(await b.textContent('#search-plan'), /USING INDEX songs_metadata_artist/);
  await shot(b, 'sync-search-50k', { fullPage: false });
  record('demo-sync', 'yes');
});
