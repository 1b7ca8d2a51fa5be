// The demo app (www/, Vite + Solid) built with `vite build`, in one browser profile with two tabs
// of the same database: adding a song with an audio file and a cover (the files land in
// media_blobs under their sha256, the cover renders, the audio plays from a blob: URL that is
// revoked when no longer shown, the CHECK error shows its code), the second tab following every
// change (songs, theme, playlists), search by artist on the JSON expression index, playlist
// reordering by midpoints, the storage panel and its first-run prompt. A screenshot of each
// screen goes to tests/e2e/output/. The sync server is not running here (demo-sync.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startServer, launch, durableStorage, record } from './harness.mjs';
import { addSong, buildDemo, go, openDemo, png, sha256, shot, until, waitForSong, wav } from './demo-lib.mjs';

// Nothing listens on port 9: the app's sync stays 'offline (retrying)', everything else works.
const QUERY = '?room=local&sync=' + encodeURIComponent('ws://127.0.0.1:9/sync');
const AUDIO = { name: 'tone.wav', mimeType: 'audio/wav', buffer: wav({ seconds: 2 }) };
const COVER = { name: 'cover.png', mimeType: 'image/png', buffer: png() };

let dist, server, browser, a1, a2;

before(async () => {
  dist = buildDemo();
  server = await startServer({ root: dist });
  browser = await launch();
  a1 = await openDemo(browser.context, server.url, QUERY);
  a2 = await openDemo(browser.context, server.url, QUERY);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
});

const songCount = (page) => page.evaluate(async () => (await window.demo.db.query('SELECT count(*) AS n FROM songs'))[0].n);

test('a song added with an audio file and a cover appears in the second tab, with its cover and playable audio', async () => {
  await addSong(a1, { title: 'Tidal', artist: 'Randomer', album: 'Shores', genre: 'techno', tags: 'night, loop', audio: AUDIO, cover: COVER });
  await waitForSong(a1, 'Tidal');
  await waitForSong(a2, 'Tidal');

  // The files are in media_blobs under their sha256; the song references them; metadata is JSON.
  const [song] = await a1.evaluate(() =>
    window.demo.db.query("SELECT seconds, metadata, audio_sha256, cover_sha256, json_valid(metadata) AS ok FROM songs WHERE title = 'Tidal'"),
  );
  assert.equal(song.audio_sha256, sha256(AUDIO.buffer));
  assert.equal(song.cover_sha256, sha256(COVER.buffer));
  assert.equal(song.seconds, 2, 'the duration is read from the audio file');
  assert.deepEqual(JSON.parse(song.metadata), { artist: 'Randomer', genre: 'techno', tags: ['night', 'loop'], file: 'tone.wav' });
  const blobs = await a1.evaluate(() => window.demo.db.query('SELECT sha256, mime, size, length(data) AS n FROM media_blobs ORDER BY mime'));
  assert.deepEqual(blobs, [
    { sha256: sha256(AUDIO.buffer), mime: 'audio/wav', size: AUDIO.buffer.length, n: AUDIO.buffer.length },
    { sha256: sha256(COVER.buffer), mime: 'image/png', size: COVER.buffer.length, n: COVER.buffer.length },
  ]);

  // The cover renders in the other tab (decoded from the BLOB through an object URL).
  await until(a2, () => {
    const img = document.querySelector('.song img.cover');
    return img?.src.startsWith('blob:') && img.complete && img.naturalWidth === 32;
  });
  assert.match(await a2.textContent('.song .chip'), /techno/);

  // Play: the player's audio element gets a blob: URL the browser can decode.
  await a2.bringToFront();
  await a2.click('.song button[title=play]');
  await until(a2, () => {
    const audio = document.querySelector('.player audio');
    return audio?.src.startsWith('blob:') && audio.readyState >= 1 && Math.abs(audio.duration - 2) < 0.1;
  });
  await shot(a2, 'library');
});

test('object URLs are revoked when their element goes away', async () => {
  await go(a1, 'library');
  const src = await until(a1, () => document.querySelector('.song img.cover')?.src).then((h) => h.jsonValue());
  assert.ok(await a1.evaluate((u) => fetch(u).then((r) => r.ok), src), 'the shown cover URL is live');
  await go(a1, 'settings'); // the library unmounts
  const revoked = await a1.evaluate((u) => fetch(u).then(() => false, () => true), src);
  assert.ok(revoked, 'the cover URL was revoked');

  const audioSrc = await a2.$eval('.player audio', (a) => a.src);
  await a2.bringToFront();
  await a2.click('.player button[aria-label="close player"]');
  await until(a2, () => !document.querySelector('.player'));
  assert.ok(await a2.evaluate((u) => fetch(u).then(() => false, () => true), audioSrc), 'the audio URL was revoked');
});

test('a rejected song shows the error code and stores nothing', async () => {
  const before = await songCount(a1);
  await addSong(a1, { title: '   ', artist: 'Nobody', cover: { name: 'other.png', mimeType: 'image/png', buffer: png({ size: 8 }) } });
  const error = await a1.textContent('form.add-song .error');
  assert.match(error, /^SQLITE_CONSTRAINT: .*CHECK constraint failed: length\(trim\(title\)\) > 0/);
  assert.equal(await songCount(a1), before);
  const blobs = await a1.evaluate(() => window.demo.db.query('SELECT count(*) AS n FROM media_blobs'));
  assert.equal(blobs[0].n, 2, 'the batch rolled back: no orphan cover');
  await shot(a1, 'library-error');
});

test('the theme switch applies in every tab at once', async () => {
  await go(a1, 'settings');
  await go(a2, 'library');
  assert.equal(await a2.evaluate(() => document.documentElement.dataset.themeSetting), 'system');
  await a1.click('fieldset[aria-label=theme] label:has-text("Dark")');
  await until(a2, () => document.documentElement.dataset.theme === 'dark');
  await until(a1, () => document.documentElement.dataset.theme === 'dark');
  assert.equal(
    await a2.evaluate(() => getComputedStyle(document.body).backgroundColor),
    'rgb(21, 22, 26)',
    'the dark palette is applied',
  );
  await shot(a1, 'settings-dark');
  await shot(a2, 'library-dark');
  // Tips off in one tab hides them in the other; volume is stored in the row.
  assert.ok(await a2.$('.tip'));
  await a1.uncheck('input[name=show_tips]');
  await until(a2, () => !document.querySelector('.tip'));
  await a1.$eval('input[name=volume]', (el) => {
    el.value = '0.35';
    el.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await until(a1, () => document.querySelector('.setting output')?.textContent === '35%');
  await a1.check('input[name=show_tips]');
  await a1.click('fieldset[aria-label=theme] label:has-text("Light")');
  await until(a2, () => document.documentElement.dataset.theme === 'light');
  await shot(a1, 'settings');
  const [row] = await a1.evaluate(() => window.demo.db.query("SELECT theme, volume, show_tips FROM config WHERE id = 'config'"));
  assert.deepEqual(row, { theme: 'light', volume: 0.35, show_tips: 1 });
});

test('search by artist uses the JSON expression index', async () => {
  await a1.evaluate(() =>
    window.demo.db.batch(
      [
        ['Ran', 'Randomer'],
        ['Rain', 'Rainer'],
        ['Bells', 'Boards of Canada'],
        ['Roygbiv', 'Boards of Canada'],
      ].map(([title, artist], i) => [
        'INSERT INTO songs (id, title, artist, metadata, created_at) VALUES (?, ?, ?, json_object(\'artist\', ?), ?)',
        [`search-${i}`, title, artist, artist, Date.now()],
      ]),
    ),
  );
  await go(a1, 'search');
  await until(a1, () => document.querySelectorAll('.chips .chip').length === 3);
  await shot(a1, 'search-artists');
  await a1.fill('input[aria-label=artist]', 'Ra');
  await until(a1, () => document.querySelectorAll('.song').length === 3);
  const titles = await a1.$$eval('.song .song-title', (els) => els.map((e) => e.textContent));
  assert.deepEqual(titles, ['Rain', 'Ran', 'Tidal']); // Rainer, then Randomer (by title)
  assert.match(await a1.textContent('#search-plan'), /USING INDEX songs_metadata_artist/);
  await a1.fill('input[aria-label=artist]', 'Boards');
  await until(a1, () => document.querySelectorAll('.song').length === 2);
  await shot(a1, 'search');
  // A chip fills the search with its artist.
  await a1.fill('input[aria-label=artist]', '');
  await a1.click('.chips .chip:has-text("Rainer")');
  await until(a1, () => document.querySelectorAll('.song').length === 1);
});

test('playlists: create, add songs, reorder by midpoint, remove; the other tab follows', async () => {
  await go(a1, 'playlists');
  await a1.fill('form[aria-label="new playlist"] input', 'Morning');
  await a1.click('form[aria-label="new playlist"] button');
  await a1.waitForSelector('.playlist h3:has-text("Morning")');
  const id = await a1.$eval('.playlist', (el) => el.dataset.playlistId);
  for (const title of ['Tidal', 'Ran', 'Bells']) {
    await a1.fill('input[aria-label="find a song to add"]', title);
    await a1.click(`.candidates button:has-text("${title}")`);
    await a1.waitForSelector(`.entry .song-title:has-text("${title}")`);
  }
  const order = (p) => p.$$eval('.entry .song-title', (els) => els.map((e) => e.textContent));
  const positions = () => a1.evaluate((pid) => window.demo.db.query('SELECT song_id, position FROM playlist_items WHERE playlist_id = ? ORDER BY position', [pid]), id);
  assert.deepEqual(await order(a1), ['Tidal', 'Ran', 'Bells']);
  assert.deepEqual((await positions()).map((r) => r.position), [1, 2, 3]);

  // Bells up one: between Tidal (1) and Ran (2) -> 1.5, the only row written.
  await a1.click('.entry:nth-child(3) button[aria-label="move up"]');
  await until(a1, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Tidal,Bells,Ran');
  assert.deepEqual((await positions()).map((r) => r.position), [1, 1.5, 2]);
  // Tidal down one: between Bells (1.5) and Ran (2) -> 1.75.
  await a1.click('.entry:nth-child(1) button[aria-label="move down"]');
  await until(a1, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Bells,Tidal,Ran');
  assert.deepEqual((await positions()).map((r) => r.position), [1.5, 1.75, 2]);
  // Ran to the top: before Bells -> 0.5.
  await a1.click('.entry:nth-child(3) button[aria-label="move up"]');
  await until(a1, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Bells,Ran,Tidal');
  await a1.click('.entry:nth-child(2) button[aria-label="move up"]');
  await until(a1, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Ran,Bells,Tidal');
  assert.deepEqual((await positions()).map((r) => r.position), [0.5, 1.5, 1.75]);

  // The other tab shows the same order, live.
  await go(a2, 'playlists', id);
  await until(a2, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Ran,Bells,Tidal');
  await a1.bringToFront();
  await a1.click('.entry:nth-child(2) button[aria-label=remove]');
  await until(a2, () => [...document.querySelectorAll('.entry .song-title')].map((e) => e.textContent).join() === 'Ran,Tidal');
  assert.match(await a2.textContent('.playlist-list a.active'), /Morning\s*2/);
  await shot(a2, 'playlists');
});

test('the storage panel shows the VFS, persistence and usage; the first-run prompt is remembered', async () => {
  await go(a1, 'storage');
  await until(a1, () => /of/.test(document.getElementById('storage-usage')?.textContent ?? ''));
  assert.equal(await a1.textContent('#storage-kind'), await durableStorage(a1), 'OPFS, or IndexedDB where the browser has no OPFS');
  const state = await a1.textContent('#storage-persisted');
  assert.ok(['persisted', 'not-persisted'].includes(state), state);
  assert.match(await a1.textContent('#storage-usage'), /\d+(\.\d)? [KMG]?B of \d+(\.\d)? [KMGT]?B/);
  assert.match(await a1.textContent('.facts'), /2 in media_blobs/);
  // The prompt shows exactly while not persisted; "Not now" hides it in this browser for good.
  assert.equal(!!(await a1.$('.banner')), state === 'not-persisted');
  await shot(a1, 'storage');
  if (state === 'not-persisted') {
    assert.ok(await a1.$('#persist'), 'a "Keep my data" button');
    await a1.click('.banner button:has-text("Not now")');
    await until(a1, () => !document.querySelector('.banner'));
    await a1.reload();
    await a1.waitForSelector('#storage-persisted');
    await until(a1, () => document.getElementById('storage-persisted')?.textContent !== '…');
    assert.equal(await a1.$('.banner'), null, 'dismissed once, not shown again');
    // "Keep my data" asks the browser and shows its answer.
    await a1.click('#persist');
    await until(a1, (s) => ['persisted', 'not-persisted'].includes(document.getElementById('storage-persisted')?.textContent), state);
  }
});

test('deleting a song removes it, its playlist entries and its files, in every tab', async () => {
  await go(a1, 'library');
  await go(a2, 'library');
  await waitForSong(a2, 'Tidal');
  await a1.bringToFront();
  await a1.click('.song:has(.song-title:text-is("Tidal")) button[title=delete]');
  await until(a2, () => ![...document.querySelectorAll('.song .song-title')].some((e) => e.textContent === 'Tidal'));
  const left = await a1.evaluate(async () => ({
    blobs: (await window.demo.db.query('SELECT count(*) AS n FROM media_blobs'))[0].n,
    items: (await window.demo.db.query("SELECT count(*) AS n FROM playlist_items WHERE song_id IN (SELECT id FROM songs WHERE title = 'Tidal')"))[0].n,
    song: (await window.demo.db.query("SELECT count(*) AS n FROM songs WHERE title = 'Tidal'"))[0].n,
  }));
  assert.deepEqual(left, { blobs: 0, items: 0, song: 0 });
  record('demo', 'yes');
});
