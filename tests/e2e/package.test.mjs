// Packaging smoke test: the npm tarball (`npm pack` of pkg/) installed into a fresh Vite project
// outside the repository, built with `vite build` and also served by `vite dev`; the browser
// of this run opens each and runs queries, with the default worker and with the worker given
// explicitly as `new Worker(new URL('synqlite/worker', import.meta.url), { type: 'module' })`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { startServer, launch, durableStorage } from './harness.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const VITE_VERSION = JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require("./package.json").devDependencies.vite)'], { cwd: ROOT, encoding: 'utf8' }));

let dir, browser, files;

const page = (worker) => `<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title></head>
<body><pre id="out">starting</pre><script type="module" src="./${worker}.js"></script></body></html>`;

const main = (explicitWorker) => `import { openDatabase, storage } from 'synqlite';
const out = document.getElementById('out');
try {
  ${explicitWorker
    ? `const worker = new Worker(new URL('synqlite/worker', import.meta.url), { type: 'module' });
  const db = await openDatabase({ name: 'smoke-explicit', worker });`
    : `const db = await openDatabase({ name: 'smoke-default' });`}
  await db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  await db.exec('INSERT INTO t (v) VALUES (?), (?)', ['a', 'b']);
  const rows = await db.query('SELECT count(*) AS n, group_concat(v) AS vs FROM t');
  out.textContent = JSON.stringify({ ok: true, storage: db.storage, rows, persisted: await storage.persisted() });
} catch (e) {
  out.textContent = JSON.stringify({ ok: false, code: e?.code, message: String(e?.message ?? e) });
}
`;

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function result(context, url) {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await tab.goto(url);
  await tab.waitForFunction(() => document.getElementById('out')?.textContent !== 'starting', null, { timeout: 60_000 });
  const text = await tab.textContent('#out');
  const expected = await durableStorage(tab);
  await tab.close();
  return { ...JSON.parse(text), expected };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synqlite-pack-'));
  const packed = join(dir, 'tarball');
  await mkdir(packed);
  execFileSync('npm', ['pack', '--silent', '--pack-destination', packed], { cwd: join(ROOT, 'pkg'), stdio: ['ignore', 'ignore', 'inherit'] });
  const [tarball] = await readdir(packed);
  files = execFileSync('tar', ['-tzf', join(packed, tarball)], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const app = join(dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'smoke-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(packed, tarball), `vite@${VITE_VERSION}`], {
    cwd: app,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // The one setting the package needs, as for every package that loads its wasm and worker
  // relative to its own files: keep it out of Vite's dependency pre-bundling.
  await writeFile(
    join(app, 'vite.config.js'),
    `export default { optimizeDeps: { exclude: ['synqlite'] }, build: { target: 'es2022', rollupOptions: { input: ['index.html', 'explicit.html'] } }, worker: { format: 'es' } };\n`,
  );
  await writeFile(join(app, 'index.html'), page('default'));
  await writeFile(join(app, 'explicit.html'), page('explicit'));
  await writeFile(join(app, 'default.js'), main(false));
  await writeFile(join(app, 'explicit.js'), main(true));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the tarball ships the built client, worker, Solid helpers, types, wasm and the sources its maps name', () => {
  for (const f of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/worker.js', 'package/dist/solid.js', 'package/dist/solid.d.ts', 'package/wasm/synqlite_bg.wasm', 'package/wasm/synqlite.js', 'package/wasm/synqlite.d.ts', 'package/package.json', 'package/src/index.ts']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  // The JS snippet the wasm glue imports (change rows into one buffer for applyChanges).
  assert.ok(files.some((f) => /^package\/wasm\/snippets\/.+\/src\/change_rows\.js$/.test(f)), `the wasm's JS snippets are in the tarball: ${files.join(', ')}`);
  assert.ok(!files.some((f) => f.includes('tsconfig') || f.includes('.test.') || f.includes('node_modules')), `unexpected files: ${files.join(', ')}`);
});

test('a fresh Vite project builds with the package and runs queries (vite build)', async () => {
  const app = join(dir, 'app');
  const built = spawnSync(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: app, encoding: 'utf8' });
  const log = `${built.stdout}${built.stderr}`;
  assert.equal(built.status, 0, log);
  // Source maps resolve (the sources ship), and Vite has nothing to warn about.
  assert.doesNotMatch(log, /missing source|warning/i, log);
  const server = await startServer({ root: join(app, 'dist') });
  try {
    for (const p of ['index.html', 'explicit.html']) {
      const r = await result(browser.context, `${server.url}/${p}`);
      assert.equal(r.ok, true, `${p}: ${JSON.stringify(r)}`);
      assert.equal(r.storage, r.expected, 'auto picks OPFS, or IndexedDB without OPFS');
      assert.deepEqual(r.rows, [{ n: 2, vs: 'a,b' }]);
    }
  } finally {
    await server.close();
  }
});

test('the same project works under vite dev', async () => {
  const app = join(dir, 'app');
  const port = await freePort();
  const dev = spawn(join(app, 'node_modules/.bin/vite'), ['--host', '127.0.0.1', '--port', String(port), '--strictPort'], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    // Ready when it answers (its banner's colours vary with the environment).
    let exited = null;
    dev.on('exit', (code) => (exited = code));
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/`)).ok) break;
      } catch {
        // not listening yet
      }
      if (exited !== null) throw new Error(`vite dev exited with ${exited}`);
      if (i > 600) throw new Error('vite dev did not answer within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const p of ['index.html', 'explicit.html']) {
      const r = await result(browser.context, `http://127.0.0.1:${port}/${p}`);
      assert.equal(r.ok, true, `${p}: ${JSON.stringify(r)}`);
      // Another port is another origin: the database starts empty again.
      assert.deepEqual(r.rows, [{ n: 2, vs: 'a,b' }]);
    }
  } finally {
    dev.kill('SIGTERM');
  }
});
