// The part of Playwright's Page and BrowserContext API that the e2e tests use, built on a small
// per-engine "target" (evaluate a function in the page, navigate, close, focus, screenshot):
// Firefox's over WebDriver BiDi (firefox.mjs), WebKit's over classic WebDriver (webkit.mjs).
// Chromium keeps Playwright itself. Values cross with the in-page agent's encoding (agent.mjs),
// so tests see the same values in every engine (undefined, NaN, bigint, typed arrays, errors).
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** Node-side twin of the agent's `encode`: a value as JSON-safe tagged data. */
export function encode(v) {
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return { v: 'undefined' };
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { v: 'NaN' };
    if (v === Infinity) return { v: 'Infinity' };
    if (v === -Infinity) return { v: '-Infinity' };
    if (Object.is(v, -0)) return { v: '-0' };
    return v;
  }
  if (typeof v === 'bigint') return { bi: v.toString() };
  if (v instanceof Error) return { e: { n: v.name, m: v.message, s: String(v.stack ?? '') } };
  if (v instanceof Date) return { d: v.toJSON() };
  if (v instanceof RegExp) return { r: { p: v.source, f: v.flags } };
  if (v instanceof ArrayBuffer) return { ab: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) return { ta: { b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'), k: typedKind(v) } };
  if (Array.isArray(v)) return { a: v.map(encode) };
  return { o: Object.keys(v).map((k) => ({ k, v: encode(v[k]) })) };
}

const KINDS = {
  Int8Array: 'i8', Uint8Array: 'ui8', Uint8ClampedArray: 'ui8c', Int16Array: 'i16', Uint16Array: 'ui16',
  Int32Array: 'i32', Uint32Array: 'ui32', Float32Array: 'f32', Float64Array: 'f64',
  BigInt64Array: 'bi64', BigUint64Array: 'bui64', Buffer: 'ui8',
};
const CTORS = {
  i8: Int8Array, ui8: Uint8Array, ui8c: Uint8ClampedArray, i16: Int16Array, ui16: Uint16Array,
  i32: Int32Array, ui32: Uint32Array, f32: Float32Array, f64: Float64Array, bi64: BigInt64Array, bui64: BigUint64Array,
};
function typedKind(v) {
  const k = KINDS[v.constructor.name];
  if (!k) throw new Error(`cannot pass a ${v.constructor.name} to the page`);
  return k;
}

/** Tagged data from the page as a value. */
export function decode(t) {
  if (t === null || typeof t !== 'object') return t;
  if ('v' in t) return { undefined, NaN, Infinity, '-Infinity': -Infinity, '-0': -0 }[t.v];
  if ('bi' in t) return BigInt(t.bi);
  if ('e' in t) return Object.assign(new Error(t.e.m), { name: t.e.n, stack: t.e.s });
  if ('d' in t) return new Date(t.d);
  if ('r' in t) return new RegExp(t.r.p, t.r.f);
  if ('ab' in t) return new Uint8Array(Buffer.from(t.ab, 'base64')).buffer;
  if ('ta' in t) {
    const bytes = new Uint8Array(Buffer.from(t.ta.b, 'base64'));
    return new CTORS[t.ta.k](bytes.buffer, 0, bytes.byteLength / CTORS[t.ta.k].BYTES_PER_ELEMENT);
  }
  if ('node' in t) return `ref: <${t.node}>`;
  if ('a' in t) return t.a.map(decode);
  if ('o' in t) return Object.fromEntries(t.o.filter(({ k }) => k !== '__proto__').map(({ k, v }) => [k, decode(v)]));
  return undefined;
}

const sourceOf = (fn) => (typeof fn === 'function' ? fn.toString() : `() => (0, eval)(${JSON.stringify(String(fn))})`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Errors that mean the page navigated or reloaded under a call: the call is retried. */
const isNavigation = (e) => /context was destroyed|navigat|lost the result|Cannot find context|no such frame|DiscardedBrowsingContext/i.test(e?.message ?? '');

/**
 * A page (tab) of a non-Chromium engine with Playwright's method names and semantics (as far as
 * the tests use them). `target` does the engine-specific work; see the module doc.
 */
export class Page extends EventEmitter {
  constructor(target, context) {
    super();
    this._target = target;
    this._context = context;
    this._closed = false;
    target.onLog = (entry) => this._log(entry);
  }

  _log(entry) {
    if (entry.kind === 'pageerror') this.emit('pageerror', Object.assign(new Error(entry.text), { name: 'Error' }));
    else this.emit('console', { type: () => entry.type, text: () => entry.text });
  }

  context() {
    return this._context;
  }

  isClosed() {
    return this._closed;
  }

  async evaluate(fn, arg) {
    const r = await this._target.evaluate(sourceOf(fn), encode(arg));
    if ('error' in r) {
      const e = decode(r.error);
      throw Object.assign(new Error(`page.evaluate: ${e.name}: ${e.message}`), { pageError: e });
    }
    return decode(r.ok);
  }

  /** Polls `fn(arg)` in the page every `polling` ms (default 50) until truthy; resolves to a handle of that value. */
  async waitForFunction(fn, arg, { timeout = 30_000, polling } = {}) {
    const interval = typeof polling === 'number' ? polling : 50;
    const deadline = Date.now() + timeout;
    const src = sourceOf(fn);
    for (;;) {
      const left = deadline - Date.now();
      try {
        const value = await this.evaluate(
          async ({ src, arg, interval, left }) => {
            const f = (0, eval)(`(${src})`);
            const end = Date.now() + left;
            for (;;) {
              const v = await f(arg);
              if (v) return { v };
              if (Date.now() >= end) return null;
              await new Promise((r) => setTimeout(r, interval));
            }
          },
          { src, arg, interval, left: Math.max(0, left) },
        );
        if (value) return { jsonValue: async () => value.v, dispose: async () => {} };
        throw new Error(`page.waitForFunction: Timeout ${timeout}ms exceeded.`);
      } catch (e) {
        if (!isNavigation(e) || Date.now() > deadline) throw e;
        await sleep(interval);
      }
    }
  }

  async waitForSelector(selector, { state = 'visible', timeout = 30_000 } = {}) {
    await this.waitForFunction(
      ({ selector, state }) => {
        const el = window.__e2e.query(selector);
        if (state === 'attached') return !!el;
        if (state === 'detached') return !el;
        if (state === 'hidden') return !el || !window.__e2e.visible(el);
        return window.__e2e.visible(el);
      },
      { selector, state },
      { timeout },
    );
    return state === 'visible' || state === 'attached' ? this.$(selector) : null;
  }

  /** Runs a DOM action of the agent once the element is visible (Playwright's auto-wait). */
  async _act(name, selector, ...args) {
    await this.waitForSelector(selector);
    return this.evaluate(({ name, selector, args }) => window.__e2e.actions[name](selector, ...args), { name, selector, args });
  }

  click(selector) {
    return this._act('click', selector);
  }

  fill(selector, value) {
    return this._act('fill', selector, value);
  }

  check(selector) {
    return this._act('check', selector, true);
  }

  uncheck(selector) {
    return this._act('check', selector, false);
  }

  async setInputFiles(selector, files) {
    const list = await Promise.all(
      (Array.isArray(files) ? files : [files]).map(async (f) =>
        typeof f === 'string'
          ? { name: basename(f), mimeType: 'application/octet-stream', base64: (await readFile(f)).toString('base64') }
          : { name: f.name, mimeType: f.mimeType, base64: Buffer.from(f.buffer).toString('base64') },
      ),
    );
    await this.waitForSelector(selector, { state: 'attached' });
    return this.evaluate(({ selector, list }) => window.__e2e.actions.setInputFiles(selector, list), { selector, list });
  }

  async textContent(selector) {
    await this.waitForSelector(selector, { state: 'attached' });
    return this.evaluate((selector) => window.__e2e.actions.textContent(selector), selector);
  }

  /** An element handle stand-in (truthy) when `selector` matches, else null. */
  async $(selector) {
    const found = await this.evaluate((selector) => window.__e2e.actions.exists(selector), selector);
    return found ? { selector, page: this } : null;
  }

  async $eval(selector, fn, arg) {
    return this.evaluate(
      ({ selector, src, arg }) => {
        const el = window.__e2e.query(selector);
        if (!el) throw new Error(`failed to find element matching selector "${selector}"`);
        return (0, eval)(`(${src})`)(el, arg);
      },
      { selector, src: sourceOf(fn), arg },
    );
  }

  async $$eval(selector, fn, arg) {
    return this.evaluate(({ selector, src, arg }) => (0, eval)(`(${src})`)(window.__e2e.queryAll(selector), arg), { selector, src: sourceOf(fn), arg });
  }

  locator(selector) {
    const page = this;
    return {
      locator: (sub) => page.locator(`${selector} ${sub}`),
      click: () => page.click(selector),
      fill: (v) => page.fill(selector, v),
      check: () => page.check(selector),
      uncheck: () => page.uncheck(selector),
      setInputFiles: (files) => page.setInputFiles(selector, files),
      textContent: () => page.textContent(selector),
      waitFor: (opts) => page.waitForSelector(selector, opts),
    };
  }

  async goto(url) {
    await this._target.goto(url);
  }

  async reload() {
    await this._target.reload();
  }

  async bringToFront() {
    await this._target.bringToFront();
  }

  async screenshot({ path, fullPage = false } = {}) {
    const png = await this._target.screenshot({ fullPage });
    if (path) await writeFile(path, png);
    return png;
  }

  async close() {
    if (this._closed) return;
    this._closed = true;
    await this._target.close();
    this._context._pages.delete(this);
    this.emit('close');
  }
}

/** A browser profile with its tabs (Playwright's BrowserContext, as far as the tests use it). */
export class Context {
  constructor(engine) {
    this._engine = engine;
    this._pages = new Set();
  }

  async newPage() {
    const page = new Page(await this._engine.newTarget(), this);
    this._pages.add(page);
    return page;
  }

  pages() {
    return [...this._pages];
  }

  async close() {
    await this._engine.close();
  }
}
