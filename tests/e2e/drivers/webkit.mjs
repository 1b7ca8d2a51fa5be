// WebKit: WebKitGTK's MiniBrowser driven by WebKitWebDriver (classic W3C WebDriver over HTTP) on
// a private Xvfb display, one browser per launch, each tab its own window.
//
// Classic WebDriver runs one command at a time per session and in one "current window", while
// the tests keep calls in flight in several tabs at once (a long evaluate in one tab while another
// closes). So a call never holds the session for long: `evaluate` starts the function in the
// page under an id (the agent keeps its result) and then asks for the result in slices of at most
// SLICE_MS, every command behind one queue that switches to the right window first.
//
// Features: WebKitGTK 2.50 ships the Storage API (navigator.storage), the File System API (OPFS)
// and sync access handles disabled; Safari enables them, so they are switched on here
// (WEBKIT_FEATURES) to test what Safari users run. An automation session of MiniBrowser keeps its
// website data in memory only (an ephemeral session, as a Safari private window).
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { installAgent } from './agent.mjs';
import { Context } from './page.mjs';

export const MINIBROWSER = process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
/** WebKit features Safari ships enabled and WebKitGTK 2.50 does not (see the module doc). */
export const WEBKIT_FEATURES = process.env.SYNQLITE_WEBKIT_FEATURES ?? '+StorageAPI,+StorageAPIEstimate,+FileSystem,+AccessHandle';
const SLICE_MS = 100;
const AGENT = `(${installAgent})(true)`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

let display;
/** One Xvfb per test process, started on first use, on a display number it picks itself. */
function xDisplay() {
  if (process.env.DISPLAY) return Promise.resolve(process.env.DISPLAY);
  display ??= new Promise((resolve, reject) => {
    const x = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let err = '';
    x.stderr.on('data', (d) => (err += d));
    x.stdio[3].on('data', (d) => {
      resolve(`:${String(d).trim()}`);
      // Running, it must not keep the test process alive.
      x.unref();
      x.stdio[3].unref?.();
      x.stderr.unref?.();
    });
    x.on('exit', (code) => reject(new Error(`Xvfb exited (${code}): ${err}`)));
    process.once('exit', () => x.kill());
  });
  return display;
}

/** A WebDriver session: every command goes through one queue, in the window it names. */
class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
    this.current = null;
    this.queue = Promise.resolve();
  }

  async raw(method, path, body) {
    const r = await fetch(`${this.base}/session/${this.id}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json().catch(() => ({ value: null }));
    if (!r.ok) {
      const v = json.value ?? {};
      throw Object.assign(new Error(`WebDriver ${method} ${path}: ${v.error ?? r.status}: ${v.message ?? ''}`), { webdriver: v.error });
    }
    return json.value;
  }

  /** Runs `fn` alone on the session with `handle` as the current window. */
  run(handle, fn) {
    const next = this.queue.then(async () => {
      if (handle && this.current !== handle) {
        await this.raw('POST', '/window', { handle });
        this.current = handle;
      }
      return fn();
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

class WebKitTarget {
  constructor(session, handle) {
    this.session = session;
    this.handle = handle;
    this.onLog = () => {};
    this.seq = 0;
  }

  _emit(logs) {
    for (const entry of logs ?? []) this.onLog(entry);
  }

  async evaluate(src, arg) {
    const id = `wd-${++this.seq}`;
    let reply = await this.session.run(this.handle, () =>
      this.session.raw('POST', '/execute/async', {
        script: `const done = arguments[arguments.length - 1]; ${AGENT};
          window.__e2e.start(arguments[0], arguments[1], arguments[2]);
          window.__e2e.wait(arguments[0], ${SLICE_MS}).then(done, (e) => done(JSON.stringify({ error: window.__e2e.encode(e) })));`,
        args: [id, src, arg],
      }),
    );
    for (;;) {
      const r = JSON.parse(reply);
      this._emit(r.logs);
      if (r.lost) throw new Error('page.evaluate: Execution context was destroyed (the page navigated): lost the result');
      if (!r.pending) return r;
      await sleep(5);
      reply = await this.session.run(this.handle, () =>
        this.session.raw('POST', '/execute/async', {
          script: `const done = arguments[arguments.length - 1];
            if (!window.__e2e) done(JSON.stringify({ lost: true }));
            else window.__e2e.wait(arguments[0], ${SLICE_MS}).then(done);`,
          args: [id],
        }),
      );
    }
  }

  goto(url) {
    return this.session.run(this.handle, () => this.session.raw('POST', '/url', { url }));
  }

  reload() {
    return this.session.run(this.handle, () => this.session.raw('POST', '/refresh', {}));
  }

  bringToFront() {
    return this.session.run(this.handle, async () => {});
  }

  async screenshot() {
    const b64 = await this.session.run(this.handle, () => this.session.raw('GET', '/screenshot'));
    return Buffer.from(b64, 'base64');
  }

  close() {
    return this.session.run(this.handle, async () => {
      await this.session.raw('DELETE', '/window');
      this.session.current = null;
    });
  }
}

/** Launches MiniBrowser under WebKitWebDriver; resolves to `{ context, close }`. */
export async function launchWebKit(dir, { features = WEBKIT_FEATURES } = {}) {
  const DISPLAY = await xDisplay();
  const port = await freePort();
  const driver = spawn(process.env.WEBKIT_WEBDRIVER ?? 'WebKitWebDriver', [`--port=${port}`], {
    // With DEBUG, MiniBrowser's console (workers' included) goes to this process's stdout.
    stdio: ['ignore', process.env.DEBUG ? 'inherit' : 'ignore', process.env.DEBUG ? 'inherit' : 'ignore'],
    env: { ...process.env, DISPLAY, HOME: dir, XDG_DATA_HOME: `${dir}/data`, XDG_CACHE_HOME: `${dir}/cache` },
  });
  process.once('exit', () => driver.kill());
  const base = `http://127.0.0.1:${port}`;
  let created;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${base}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          capabilities: {
            alwaysMatch: {
              'webkitgtk:browserOptions': {
                binary: MINIBROWSER,
                args: [
                  '--automation',
                  ...(features ? [`--features=${features}`] : []),
                  ...(process.env.DEBUG ? ['--enable-write-console-messages-to-stdout=true'] : []),
                ],
              },
              timeouts: { script: 3_600_000, pageLoad: 120_000 },
            },
          },
        }),
      });
      created = await r.json();
      if (!r.ok) throw new Error(`WebKitWebDriver refused the session: ${JSON.stringify(created.value)}`);
      break;
    } catch (e) {
      if (e.message.startsWith('WebKitWebDriver') || i > 100 || driver.exitCode !== null) {
        driver.kill();
        throw e;
      }
      await sleep(50);
    }
  }
  const session = new Session(base, created.value.sessionId);
  // The first window stays blank and open: closing a session's last window ends the session.
  const anchor = await session.raw('GET', '/window');
  session.current = anchor;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await session.raw('DELETE', '').catch(() => {});
    driver.kill();
  };
  const engine = {
    async newTarget() {
      // New windows open from the anchor: the current window may just have been closed.
      const { handle } = await session.run(anchor, () => session.raw('POST', '/window/new', { type: 'window' }));
      return new WebKitTarget(session, handle);
    },
    close,
  };
  return { context: new Context(engine), close, version: created.value.capabilities.browserVersion };
}
