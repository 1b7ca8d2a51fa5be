// Shared pieces of the browser tests: a static server for the repository (the built npm package
// under /pkg, test pages under /tests/e2e/pages) and headless Chromium via playwright-core.
import { createServer } from 'node:http';
import { readFile, stat, mkdtemp, rm } from 'node:fs/promises';
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
];

/** A fresh persistent Chromium context (own profile dir, so OPFS/IndexedDB start empty). */
export async function launch() {
  const dir = await mkdtemp(join(tmpdir(), 'synqlite-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(dir, { recursive: true, force: true });
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
