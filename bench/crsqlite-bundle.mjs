// Node side: bundles @vlcn.io/crsqlite-wasm (an ESM package with bare imports of its
// dependencies: @vlcn.io/wa-sqlite, @vlcn.io/xplat-api, async-mutex) into one browser module, so a
// dedicated module worker can import it (import maps do not apply inside workers).
//
// Output: node_modules/.cache/synqlite-vlcn/crsqlite-wasm.mjs, served by the test/bench server at
// CRSQLITE_MODULE. The wasm file is loaded from the package itself (CRSQLITE_WASM), passed to
// `initWasm(() => CRSQLITE_WASM)`. Rebuilt only when the package's version changes.
import { build } from 'esbuild';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'synqlite-vlcn');
const OUT = join(OUT_DIR, 'crsqlite-wasm.mjs');
const STAMP = join(OUT_DIR, 'stamp.json');
const PKG = join(ROOT, 'node_modules', '@vlcn.io', 'crsqlite-wasm');

/** URL path (on a server rooted at the repository) of the bundled module. */
export const CRSQLITE_MODULE = '/node_modules/.cache/synqlite-vlcn/crsqlite-wasm.mjs';
/** URL path of crsqlite-wasm's wasm binary. */
export const CRSQLITE_WASM = '/node_modules/@vlcn.io/crsqlite-wasm/dist/crsqlite.wasm';

/** The installed crsqlite-wasm version (e.g. `0.16.0`). */
export async function crsqliteVersion() {
  return JSON.parse(await readFile(join(PKG, 'package.json'), 'utf8')).version;
}

/** Builds the bundle if missing or built from another version; returns the package version. */
export async function ensureCrsqliteBundle() {
  const version = await crsqliteVersion();
  try {
    const stamp = JSON.parse(await readFile(STAMP, 'utf8'));
    await readFile(OUT);
    if (stamp.version === version) return version;
  } catch {
    // missing: build it
  }
  await mkdir(OUT_DIR, { recursive: true });
  await build({
    stdin: {
      contents: "export { default } from '@vlcn.io/crsqlite-wasm'; export * from '@vlcn.io/crsqlite-wasm';",
      resolveDir: ROOT,
      sourcefile: 'crsqlite-entry.mjs',
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: OUT,
    logLevel: 'error',
  });
  await writeFile(STAMP, JSON.stringify({ version }) + '\n');
  return version;
}
