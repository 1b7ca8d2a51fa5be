// synqlite/solid in real tabs: a Solid component (solid-js/html, no compiler) renders a live song
// list (createQuery) and one row (createRow); writes from another tab re-render it; changing the
// accessors re-subscribes; errors show and clear; disposing ends every subscription.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, durableStorage } from './harness.mjs';

let server, browser, ui, writer;

before(async () => {
  server = await startServer();
  browser = await launch();
  ui = await openPage(browser.context, server.url, 'solid.html');
  writer = await openPage(browser.context, server.url);
  const storage = await durableStorage(ui);
  assert.equal(await ui.evaluate((storage) => openInstrumented('solid', storage), storage), storage);
  await writer.evaluate(async (storage) => {
    window.db = await synqlite.openDatabase({ name: 'solid', storage });
    await db.exec('CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)');
    await db.exec("INSERT INTO songs VALUES (1, 'Intro'), (2, 'Verse')");
  }, storage);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const settle = () => new Promise((r) => setTimeout(r, 200));
const list = () => ui.evaluate(() => [...document.querySelectorAll('#songs li')].map((li) => `${li.dataset.id}:${li.textContent}`));
const text = (id) => ui.evaluate((id) => document.getElementById(id).textContent, id);
const until = (fn, arg) => ui.waitForFunction(fn, arg, { timeout: 10_000 });

test('the component renders the rows, then follows writes made in another tab', async () => {
  await ui.evaluate(() => mount());
  await until(() => document.getElementById('songs-state').textContent === 'ready');
  assert.deepEqual(await list(), ['1:Intro', '2:Verse']);
  await until(() => document.getElementById('row').textContent === '1:Intro');
  // `matching` is a query of its own: it may still be loading when the list is ready.
  await until(() => document.getElementById('matching').textContent !== 'loading');
  assert.equal(await text('matching'), '2');

  // Mark the existing <li>s: <For> must keep them (unchanged rows keep their identity).
  await ui.evaluate(() => document.querySelectorAll('#songs li').forEach((li) => (li.marked = true)));
  await writer.evaluate(() => db.exec("INSERT INTO songs VALUES (3, 'Chorus')"));
  await until(() => document.querySelectorAll('#songs li').length === 3);
  assert.deepEqual(await list(), ['1:Intro', '2:Verse', '3:Chorus']);
  assert.deepEqual(await ui.evaluate(() => [...document.querySelectorAll('#songs li')].map((li) => li.marked === true)), [true, true, false]);
  await until(() => document.getElementById('matching').textContent === '3');
  assert.equal(await text('songs-state'), 'ready');
});

test('createRow follows its row: update, delete, re-insert; other rows cost no query', async () => {
  await writer.evaluate(() => db.exec("UPDATE songs SET title = 'Intro (live)' WHERE id = 1"));
  await until(() => document.getElementById('row').textContent === '1:Intro (live)');
  await settle();

  // A write to another row re-runs the list queries but not the row read.
  const rowReads = () => ui.evaluate(() => stats.sql.filter((q) => q.includes('WHERE rowid = ?')).length);
  const reads = await rowReads();
  await ui.evaluate(() => { window.rowObj = song(); });
  await writer.evaluate(() => db.exec("UPDATE songs SET title = 'Verse 1' WHERE id = 2"));
  await until(() => document.querySelector('#songs li[data-id="2"]')?.textContent === 'Verse 1');
  await settle();
  assert.equal(await rowReads(), reads);
  assert.equal(await ui.evaluate(() => song() === rowObj), true);

  await writer.evaluate(() => db.exec('DELETE FROM songs WHERE id = 1'));
  await until(() => document.getElementById('row').textContent === 'none');
  assert.equal(await ui.evaluate(() => window.song.state), 'ready');
  await writer.evaluate(() => db.exec("INSERT INTO songs VALUES (1, 'Intro again')"));
  await until(() => document.getElementById('row').textContent === '1:Intro again');
});

test('changing the accessors re-subscribes (and only once)', async () => {
  const subs = await ui.evaluate(() => stats.openSubs);
  await ui.evaluate(() => setRowId(3));
  await until(() => document.getElementById('row').textContent === '3:Chorus');
  await ui.evaluate(() => setTerm('Verse%'));
  await until(() => document.getElementById('matching').textContent === '1');
  // The same params again (a new array with equal values): no new subscription, no new query.
  await settle();
  const q = await ui.evaluate(() => stats.queries);
  await ui.evaluate(() => setTerm('Verse%'));
  await settle();
  assert.equal(await ui.evaluate(() => stats.queries), q);
  assert.equal(await ui.evaluate(() => stats.openSubs), subs, 'old subscriptions were ended');

  await writer.evaluate(() => db.exec("UPDATE songs SET title = 'Chorus!' WHERE id = 3; INSERT INTO songs VALUES (4, 'Verse 3')"));
  await until(() => document.getElementById('row').textContent === '3:Chorus!');
  await until(() => document.getElementById('matching').textContent === '2');
});

test('errors are reported in .error and clear when a later run succeeds', async () => {
  assert.equal(await text('broken'), 'error SQLITE_ERROR');
  assert.equal(await ui.evaluate(() => broken.state), 'errored');
  assert.match(await ui.evaluate(() => broken.error.message), /no such table: later/);
  await writer.evaluate(async () => {
    await db.exec('CREATE TABLE later (x)');
    await db.exec('INSERT INTO later VALUES (7)');
  });
  await until(() => document.getElementById('broken').textContent === '7');
  assert.equal(await ui.evaluate(() => broken.state), 'ready');
  await writer.evaluate(() => db.exec('INSERT INTO later VALUES (8)'));
  await until(() => document.getElementById('broken').textContent === '7,8');
});

test('createQuery in a createRoot with an initial value', async () => {
  await ui.evaluate(() => rootCount());
  // With an initial value the resource is 'ready' at once, then 'refreshing' while its first run
  // is on the way (how long depends on the browser): it must end 'ready'.
  await until(() => rootCountState() === 'ready');
  await until(() => rootSeen.at(-1) === 4);
  assert.equal(await ui.evaluate(() => rootSeen[0]), null, 'the initial value renders first');
  await writer.evaluate(() => db.exec("INSERT INTO songs VALUES (5, 'Bridge')"));
  await until(() => rootSeen.at(-1) === 5);
  await ui.evaluate(() => disposeRoot());
});

test('works under <Suspense>: fallback first, then the rows, which keep following', async () => {
  assert.equal(await ui.evaluate(() => mountSuspense()), true, 'the fallback shows while the first run is pending');
  await until(() => document.querySelectorAll('#titles li').length === 5 && !document.getElementById('fallback'));
  await ui.evaluate(() => {
    window.fallbackShown = 0;
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) if (n.id === 'fallback') fallbackShown++;
    }).observe(document.body, { childList: true, subtree: true });
  });
  await writer.evaluate(() => db.exec("UPDATE songs SET title = 'Bridge!' WHERE id = 5"));
  await until(() => document.querySelector('#titles li:last-child')?.textContent === 'Bridge!');
  assert.equal(await ui.evaluate(() => fallbackShown), 0, 're-runs do not suspend again');
  await ui.evaluate(() => disposeSuspense());
});

test('dispose() ends every subscription: no more queries, nothing rendered', async () => {
  await until(() => document.querySelectorAll('#songs li').length === 5);
  await settle();
  assert.ok((await ui.evaluate(() => stats.openSubs)) > 0);
  await ui.evaluate(() => dispose());
  assert.equal(await ui.evaluate(() => document.getElementById('root').innerHTML), '');
  assert.equal(await ui.evaluate(() => stats.openSubs), 0, 'every onAny/onPoint subscription was ended');
  const queries = await ui.evaluate(() => stats.queries);
  await writer.evaluate(() => db.exec("INSERT INTO songs VALUES (6, 'Outro'); UPDATE songs SET title = 'x' WHERE id = 3; INSERT INTO later VALUES (9)"));
  await settle();
  assert.equal(await ui.evaluate(() => stats.queries), queries, 'no query ran after dispose');
  // The tab itself still gets the change (the database is fine, only the component is gone).
  assert.deepEqual(await ui.evaluate(() => db.query('SELECT count(*) AS n FROM songs')), [{ n: 6 }]);
});
