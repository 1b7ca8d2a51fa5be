// Shared pieces of the browser tests: a static server for the repository (the built npm package
// under /pkg, test pages under /tests/e2e/pages) and the browser engine this run tests,
// `SYNQLITE_BROWSER` = `chromium` (default: Debian's Chromium via playwright-core), `firefox`
// (firefox-esr over WebDriver BiDi, drivers/firefox.mjs) or `webkit` (WebKitGTK's MiniBrowser
// over WebDriver, drivers/webkit.mjs). The three give tests the same Playwright-style API.
import { createServer } from 'node:http';
import { readFile, stat, mkdtemp, rm } from 'node:fs/promises';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, extname, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css',
};

/** Serves `root` (default: the repository) on 127.0.0.1 at a free port. */
export async function startServer({ root = ROOT, headers = {} } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      let file = normalize(join(root, path));
      if (!file.startsWith(root)) throw new Error('outside root');
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        ...headers,
      });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // performance.memory in exact bytes (the bench's main-thread heap peak), not 100 KiB buckets.
  '--enable-precise-memory-info',
];

/** The engine of this run: `chromium`, `firefox` or `webkit`. */
export const ENGINE = process.env.SYNQLITE_BROWSER ?? 'chromium';
if (!['chromium', 'firefox', 'webkit'].includes(ENGINE)) throw new Error(`SYNQLITE_BROWSER=${ENGINE}: use chromium, firefox or webkit`);

/**
 * A fresh browser of this run's engine with its own profile dir (OPFS/IndexedDB start empty):
 * `{ context, close() }`, `context` with Playwright's `newPage()`/`pages()`.
 * `{ storageApi: false }` asks for a browser without the Storage API (navigator.storage, hence no
 * OPFS), as WebKitGTK ships; `{ profile: dir }` for one on the profile `dir`, kept after close (a
 * browser restart); `{ quota: { origin, bytes } }` for one whose storage quota for `origin` is
 * `bytes` (Chromium: DevTools' `Storage.overrideQuotaForOrigin`; Firefox: the quota manager's
 * fixed limit, which caps every origin); `{ private: true }` for a private window (Chromium: an
 * off-the-record context; Firefox: private browsing from the start; WebKit: its WebDriver
 * sessions always are, website data in memory only). Each resolves to null for an engine whose
 * driver cannot launch it so (WebKit's sessions keep no profile and have no quota).
 */
export async function launch({ storageApi = true, profile, quota, private: incognito = false } = {}) {
  if (!storageApi && ENGINE !== 'webkit') return null;
  if ((profile || quota) && ENGINE === 'webkit') return null;
  const dir = profile ?? (await mkdtemp(join(tmpdir(), `synqlite-${ENGINE}-`)));
  let context;
  let stop;
  let version = '';
  if (ENGINE === 'chromium') {
    const { execFileSync } = await import('node:child_process');
    version = execFileSync(process.env.CHROMIUM ?? '/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  }
  if (ENGINE === 'chromium' && incognito) {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    context = await browser.newContext();
    stop = () => browser.close();
  } else if (ENGINE === 'chromium') {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
    });
    stop = () => context.close();
    if (quota) {
      const [first] = context.pages();
      const cdp = await context.newCDPSession(first ?? (await context.newPage()));
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: quota.origin, quotaSize: quota.bytes });
    }
  } else {
    const { launchFirefox } = await import('./drivers/firefox.mjs');
    const { launchWebKit } = await import('./drivers/webkit.mjs');
    // Firefox gives an origin min(limit, max(limit / 5, 10 MiB)): below 10 MiB, the limit itself.
    const prefs = {
      ...(quota ? { 'dom.quotaManager.temporaryStorage.fixedLimit': Math.ceil(quota.bytes / 1024) } : {}),
      ...(incognito ? { 'browser.privatebrowsing.autostart': true } : {}),
    };
    ({ context, close: stop, version } = await (ENGINE === 'firefox' ? launchFirefox(dir, { prefs }) : launchWebKit(dir, storageApi ? {} : { features: '' })));
  }
  return {
    engine: ENGINE,
    /** The browser's name and version as it reports them. */
    version,
    context,
    async close() {
      await stop();
      if (!profile) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens the test page (which exposes `window.synqlite`) in a new tab. */
export async function openPage(context, base, page = 'app.html') {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  tab.on('console', (m) => {
    if (m.type() === 'error' || process.env.DEBUG) console.error(`[console.${m.type()}] ${m.text()}`);
  });
  await tab.goto(`${base}/tests/e2e/pages/${page}`);
  await tab.waitForFunction(() => window.synqliteReady === true);
  return tab;
}

/** The repository's `schema/` migrations as `{ name, sql }` (what the demo and server use). */
export async function schemaMigrations(dir = join(ROOT, 'schema')) {
  const { readdir } = await import('node:fs/promises');
  const names = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return Promise.all(names.map(async (name) => ({ name, sql: await readFile(join(dir, name), 'utf8') })));
}

/**
 * Starts the real sync server (`target/debug/synqlite-server`, built if missing) on a free
 * loopback port with a fresh data folder, the repository's `schema/` and the dev endpoints.
 */
export async function startSyncServer({ schema = join(ROOT, 'schema'), args = [] } = {}) {
  const { spawn, execFileSync } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  const { createServer: netServer } = await import('node:net');
  const bin = join(ROOT, 'target/debug/synqlite-server');
  if (!existsSync(bin)) execFileSync('cargo', ['build', '-q', '-p', 'synqlite-server'], { cwd: ROOT, stdio: 'inherit' });
  const data = await mkdtemp(join(tmpdir(), 'synqlite-server-'));
  const srv = netServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  const http = `http://127.0.0.1:${port}`;
  let child;
  const start = async () => {
    child = spawn(bin, ['--data', data, '--schema', schema, '--listen', `127.0.0.1:${port}`, '--dev', ...args], {
      stdio: ['ignore', 'ignore', process.env.DEBUG ? 'inherit' : 'ignore'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${http}/healthz`)).ok) return;
      } catch {
        // not up yet
      }
      if (i > 300 || child.exitCode !== null) throw new Error('the sync server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  await start();
  const json = async (method, path) => {
    const r = await fetch(`${http}${path}`, { method });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return {
    url: `ws://127.0.0.1:${port}/sync`,
    http,
    seed: (room, rows, table = 'songs') => json('POST', `/rooms/${room}/seed?rows=${rows}&table=${table}`),
    rows: (room, table) => json('GET', `/rooms/${room}/rows/${table}`),
    stats: (room) => json('GET', `/rooms/${room}/stats`),
    /** Stops the server (graceful) and starts it again on the same port and data. */
    restart: async () => {
      await stop();
      await start();
    },
    stop,
    async close() {
      await stop();
      await rm(data, { recursive: true, force: true });
    },
  };
}

/**
 * The fixtures of a sync test file: the static server, a sync server, the schema's migrations
 * and one browser (close them with `closeAll(browser, sync, server)`).
 */
export async function startSyncSuite() {
  const server = await startServer();
  const sync = await startSyncServer();
  const migrations = await schemaMigrations();
  const browser = await launch();
  return { server, sync, migrations, browser };
}

/** Closes each of `things` in order, skipping those never started. */
export async function closeAll(...things) {
  for (const thing of things) await thing?.close();
}

/**
 * What the page's browser offers, found by feature detection in the page (never by engine
 * name): `opfs` is true when a dedicated worker can open an OPFS sync access handle, else the
 * reason it cannot (the missing API or the browser's refusal); `locks`, `broadcastChannel`,
 * `indexedDB`, `persist` (navigator.storage.persist) are booleans.
 */
export async function capabilities(page) {
  return page.evaluate(async () => {
    const worker = new Worker(
      URL.createObjectURL(
        new Blob(
          [
            `(async () => {
              if (!navigator.storage) return 'the worker has no navigator.storage (Storage API)';
              if (typeof navigator.storage.getDirectory !== 'function') return 'the worker has no navigator.storage.getDirectory (File System API)';
              if (typeof FileSystemSyncAccessHandle === 'undefined') return 'the worker has no FileSystemSyncAccessHandle (createSyncAccessHandle)';
              let root;
              try { root = await navigator.storage.getDirectory(); } catch (e) { return 'navigator.storage.getDirectory() was refused (' + e.name + ': ' + e.message + ')'; }
              try {
                const file = await root.getFileHandle('synqlite-e2e-probe', { create: true });
                const handle = await file.createSyncAccessHandle();
                handle.write(new Uint8Array([1]), { at: 0 });
                handle.flush();
                handle.close();
                await root.removeEntry('synqlite-e2e-probe');
                return true;
              } catch (e) { return 'createSyncAccessHandle() failed (' + e.name + ': ' + e.message + ')'; }
            })().then(postMessage, (e) => postMessage(String(e)))`,
          ],
          { type: 'text/javascript' },
        ),
      ),
    );
    const opfs = await new Promise((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => resolve(`the probe worker failed: ${e.message}`);
    });
    worker.terminate();
    return {
      opfs,
      locks: typeof navigator.locks?.request === 'function',
      broadcastChannel: typeof BroadcastChannel === 'function',
      indexedDB: typeof indexedDB === 'object' && indexedDB !== null,
      persist: typeof navigator.storage?.persist === 'function',
    };
  });
}

/** The storage tests use for a durable database here: `opfs` where it works, else `idb`. */
export async function durableStorage(page) {
  const { opfs } = await capabilities(page);
  record('opfs', opfs === true ? 'yes' : `no: ${opfs}`);
  return opfs === true ? 'opfs' : 'idb';
}

/**
 * Skips test `t` (and returns true) unless the page has OPFS sync access handles, naming why
 * not. Usage: `if (await skipWithoutOpfs(t, page)) return;`
 */
export async function skipWithoutOpfs(t, page) {
  const { opfs } = await capabilities(page);
  if (opfs === true) return false;
  record('opfs', `no: ${opfs}`);
  t.skip(`needs OPFS sync access handles: ${opfs}`);
  return true;
}

/**
 * Records a fact of this run for the README's capability table (tests/e2e/run.mjs collects
 * them from `SYNQLITE_E2E_FACTS`, one JSON line each): `key` is a row, `value` what this engine
 * did there. Without the variable (a test file run on its own) it does nothing.
 */
export function record(key, value) {
  const file = process.env.SYNQLITE_E2E_FACTS;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ engine: ENGINE, key, value })}\n`);
}
