// The in-page half of the Firefox and WebKit drivers: evaluated in the page (stringified, never
// imported there) as `window.__e2e`. It gives every engine what Playwright's injected script
// gives Chromium: values passed in and out with the same encoding (undefined, NaN, -0, bigint,
// Date, errors, typed arrays survive the trip), Playwright's text selectors (`:has-text("…")`,
// `:text-is("…")`) on top of CSS, DOM actions (click, fill, check, file inputs), visibility, and
// a record of console errors and uncaught page errors for the driver to report.

/* eslint-disable no-undef */
export function installAgent(captureLogs) {
  if (window.__e2e) return;
  const TYPED = {
    i8: Int8Array, ui8: Uint8Array, ui8c: Uint8ClampedArray, i16: Int16Array, ui16: Uint16Array,
    i32: Int32Array, ui32: Uint32Array, f32: Float32Array, f64: Float64Array,
    bi64: BigInt64Array, bui64: BigUint64Array,
  };
  const toBase64 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const fromBase64 = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const bytesOf = (v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

  /** A value as JSON-safe tagged data (the shape the Node side decodes in `codec.mjs`). */
  function encode(v, seen = new Set()) {
    if (v === undefined || typeof v === 'symbol' || typeof v === 'function') return { v: 'undefined' };
    if (v === null) return null;
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return { v: 'NaN' };
      if (v === Infinity) return { v: 'Infinity' };
      if (v === -Infinity) return { v: '-Infinity' };
      if (Object.is(v, -0)) return { v: '-0' };
      return v;
    }
    if (typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'bigint') return { bi: v.toString() };
    if (v instanceof Error) return { e: { n: v.name, m: v.message, s: String(v.stack ?? '') } };
    if (v instanceof Date) return { d: v.toJSON() };
    if (v instanceof RegExp) return { r: { p: v.source, f: v.flags } };
    if (v instanceof ArrayBuffer) return { ab: toBase64(new Uint8Array(v)) };
    for (const [k, T] of Object.entries(TYPED)) if (v instanceof T) return { ta: { b: toBase64(bytesOf(v)), k } };
    if (typeof Node === 'function' && v instanceof Node) return { node: v.nodeName };
    if (seen.has(v)) return { v: 'undefined' };
    seen.add(v);
    try {
      if (Array.isArray(v)) return { a: v.map((x) => encode(x, seen)) };
      const keys = Object.keys(v);
      if (keys.length === 0 && typeof v.toJSON === 'function') return encode(v.toJSON(), seen);
      return { o: keys.map((k) => ({ k, v: encode(v[k], seen) })) };
    } finally {
      seen.delete(v);
    }
  }

  function decode(t) {
    if (t === null || typeof t !== 'object') return t;
    if ('v' in t) return { undefined, NaN, Infinity, '-Infinity': -Infinity, '-0': -0 }[t.v];
    if ('bi' in t) return BigInt(t.bi);
    if ('e' in t) return Object.assign(new Error(t.e.m), { name: t.e.n });
    if ('d' in t) return new Date(t.d);
    if ('r' in t) return new RegExp(t.r.p, t.r.f);
    if ('ab' in t) return fromBase64(t.ab).buffer;
    if ('ta' in t) return new TYPED[t.ta.k](fromBase64(t.ta.b).buffer);
    if ('a' in t) return t.a.map(decode);
    if ('o' in t) return Object.fromEntries(t.o.map(({ k, v }) => [k, decode(v)]));
    return undefined;
  }

  const norm = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();
  const TEXT = /:(has-text|text-is)\((["'])((?:\\.|(?!\2).)*)\2\)/;

  /**
   * All elements matching `selector`: CSS plus Playwright's `:has-text("t")` (the element's
   * text contains t, case-insensitively, whitespace collapsed) and `:text-is("t")` (equals t).
   * Each text pseudo-class becomes a temporary attribute on the elements it matches, so it
   * composes with the rest of CSS, `:has()` included.
   */
  function queryAll(selector, root = document) {
    const marks = [];
    let css = selector;
    try {
      for (let m = TEXT.exec(css), n = 0; m; m = TEXT.exec(css), n++) {
        const [all, kind, , raw] = m;
        const want = norm(raw.replace(/\\(.)/g, '$1'));
        const attr = `data-e2e-text-${n}`;
        for (const el of document.querySelectorAll('*')) {
          const text = norm(el.textContent);
          if (kind === 'has-text' ? text.toLowerCase().includes(want.toLowerCase()) : text === want) {
            el.setAttribute(attr, '');
            marks.push([el, attr]);
          }
        }
        css = css.replace(all, `[${attr}]`);
      }
      return [...root.querySelectorAll(css)];
    } finally {
      for (const [el, attr] of marks) el.removeAttribute(attr);
    }
  }
  const query = (selector) => queryAll(selector)[0] ?? null;

  function visible(el) {
    if (!el || !el.isConnected) return false;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  }

  function must(selector) {
    const el = query(selector);
    if (!el) throw new Error(`no element matches ${selector}`);
    return el;
  }

  function setValue(el, value) {
    const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
  }

  const actions = {
    click(selector) {
      const el = must(selector);
      el.scrollIntoView({ block: 'center', inline: 'center' });
      if (el.disabled) throw new Error(`${selector} is disabled`);
      el.focus?.();
      el.click();
    },
    fill(selector, value) {
      const el = must(selector);
      el.focus();
      setValue(el, value);
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    check(selector, on) {
      const el = must(selector);
      if (el.checked !== on) el.click();
      if (el.checked !== on) throw new Error(`${selector} did not become ${on ? 'checked' : 'unchecked'}`);
    },
    setInputFiles(selector, files) {
      const el = must(selector);
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(new File([fromBase64(f.base64)], f.name, { type: f.mimeType }));
      el.files = dt.files;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    textContent: (selector) => must(selector).textContent,
    exists: (selector) => query(selector) !== null,
    visible: (selector) => visible(query(selector)),
  };

  const logs = [];
  for (const type of captureLogs ? ['error', 'warn', 'log', 'info', 'debug'] : []) {
    const orig = console[type];
    console[type] = (...args) => {
      logs.push({ kind: 'console', type: type === 'warn' ? 'warning' : type, text: args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : typeof a === 'object' ? safeJson(a) : String(a))).join(' ') });
      return orig.apply(console, args);
    };
  }
  function safeJson(a) {
    try {
      return JSON.stringify(a);
    } catch {
      return String(a);
    }
  }
  if (captureLogs) {
    addEventListener('error', (e) => logs.push({ kind: 'pageerror', text: e.message }));
    addEventListener('unhandledrejection', (e) => logs.push({ kind: 'pageerror', text: `unhandled rejection: ${e.reason?.message ?? e.reason}` }));
  }

  const results = new Map();
  /** Runs `src` (a function's source) on the decoded argument; the result is kept under `id`. */
  function start(id, src, arg) {
    const p = (async () => (0, eval)(`(${src})`)(decode(arg)))();
    const slot = { done: false, value: null };
    slot.settled = p.then(
      (v) => Object.assign(slot, { done: true, value: { ok: encode(v) } }),
      (e) => Object.assign(slot, { done: true, value: { error: encode(e instanceof Error ? e : new Error(String(e))) } }),
    );
    results.set(id, slot);
    return slot.settled;
  }
  /** The result of `id` as a JSON string once it settled, or null after `ms` milliseconds. */
  async function wait(id, ms) {
    const slot = results.get(id);
    if (!slot) return JSON.stringify({ lost: true, logs: logs.splice(0) });
    if (!slot.done && ms > 0) await Promise.race([slot.settled, new Promise((r) => setTimeout(r, ms))]);
    if (!slot.done) return JSON.stringify({ pending: true, logs: logs.splice(0) });
    results.delete(id);
    return JSON.stringify({ ...slot.value, logs: logs.splice(0) });
  }
  /** Runs `src` and returns its JSON-string result (for drivers that await a page promise). */
  async function run(src, arg) {
    const id = `run-${Math.random()}`;
    await start(id, src, arg);
    return wait(id, 0);
  }

  window.__e2e = { encode, decode, queryAll, query, visible, actions, start, wait, run, logs };
}
