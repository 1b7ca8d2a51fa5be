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
