// Helpers of the demo app's browser tests (demo*.test.mjs): build the app, generate the files a
// user would pick (a WAV tone, a PNG cover), drive the screens, save screenshots.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import { ENGINE } from './harness.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const WWW = join(ROOT, 'www');
/** Screenshots land here (gitignored). */
export const OUTPUT = join(ROOT, 'tests/e2e/output');

/** `vite build` of www/ into a fresh temporary folder (test files may build concurrently). */
export function buildDemo() {
  const out = mkdtempSync(join(tmpdir(), 'synqlite-demo-'));
  execFileSync(join(ROOT, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn', '--outDir', out, '--emptyOutDir'], {
    cwd: WWW,
    stdio: 'inherit',
  });
  return out;
}

/** A mono 16-bit PCM WAV file: a sine tone of `seconds` at `hz`. */
export function wav({ seconds = 1, hz = 440, rate = 8000 } = {}) {
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * 12000), 44 + i * 2);
  return buf;
}

/** An 8-bit RGB PNG of `size`×`size` pixels: a diagonal gradient from `from` to `to` ([r,g,b]). */
export function png({ size = 32, from = [79, 91, 213], to = [236, 72, 153] } = {}) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3); // filter byte 0 (none), then the pixels
    for (let x = 0; x < size; x++) {
      const t = (x + y) / (2 * (size - 1));
      for (let c = 0; c < 3; c++) raw[row + 1 + x * 3 + c] = Math.round(from[c] + (to[c] - from[c]) * t);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** Opens the built demo at `base` with `query` (e.g. `?room=r&sync=...`) on `hash`, once the app has rendered. */
export async function openDemo(context, base, query = '', hash = '#/library') {
  const page = await context.newPage();
  // Expected noise: fetching a revoked blob: URL (the revocation checks) logs ERR_FILE_NOT_FOUND
  // in Chromium; Firefox reports the refused connections to the sync port 9 as page errors.
  const expected = (text) => !process.env.DEBUG && (text.includes('ERR_FILE_NOT_FOUND') || text.includes('127.0.0.1:9/sync'));
  page.on('pageerror', (e) => {
    if (!expected(e.message)) console.error(`[page error] ${e.message}`);
  });
  page.on('console', (m) => {
    if (expected(m.text())) return;
    if (m.type() === 'error' || process.env.DEBUG) console.error(`[console.${m.type()}] ${m.text()}`);
  });
  await page.goto(`${base}/${query}${hash}`);
  await page.waitForSelector('.screen');
  return page;
}

/**
 * Waits until `fn(arg)` is truthy in the page, polling every 50 ms: a tab in the background gets
 * no animation frames, so Playwright's default requestAnimationFrame polling would stall there.
 */
export function until(page, fn, arg, { timeout = 30_000 } = {}) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
}

/**
 * Navigates the app (hash route) and waits for the screen. Brings the tab to the front first,
 * as a user would (clicks wait for an element to be stable over animation frames).
 */
export async function go(page, screen, arg) {
  await page.bringToFront();
  await page.evaluate(([s, a]) => (location.hash = `#/${s}${a ? `/${a}` : ''}`), [screen, arg]);
  await page.waitForSelector(`.screen[data-screen="${screen}"]`);
}

/** Adds a song through the Library screen's form; `audio`/`cover` are `{ name, mimeType, buffer }`. */
export async function addSong(page, { title, artist = '', album = '', genre = '', tags = '', audio, cover }) {
  await go(page, 'library');
  if (!(await page.$('form.add-song'))) await page.click('.screen-head button');
  const form = page.locator('form.add-song');
  await form.locator('input[name=title]').fill(title);
  await form.locator('input[name=artist]').fill(artist);
  await form.locator('input[name=album]').fill(album);
  await form.locator('input[name=genre]').fill(genre);
  await form.locator('input[name=tags]').fill(tags);
  if (audio) await form.locator('input[name=audio]').setInputFiles(audio);
  if (cover) await form.locator('input[name=cover]').setInputFiles(cover);
  await form.locator('button[type=submit]').click();
  // Done when the button is back (the batch committed or failed).
  await until(page, () => document.querySelector('form.add-song button[type=submit]')?.textContent === 'Add song');
}

/** Waits until a song titled `title` is listed on the page. */
export function waitForSong(page, title, timeout = 30_000) {
  return until(page, (t) => [...document.querySelectorAll('.song .song-title')].some((e) => e.textContent === t), title, { timeout });
}

/**
 * Saves a screenshot under tests/e2e/output/<name>.png, <name>-<engine>.png outside Chromium (the
 * whole page, or the viewport for long lists; WebKit's driver takes the viewport only).
 */
export async function shot(page, name, { fullPage = true } = {}) {
  mkdirSync(OUTPUT, { recursive: true });
  const path = join(OUTPUT, ENGINE === 'chromium' ? `${name}.png` : `${name}-${ENGINE}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}
