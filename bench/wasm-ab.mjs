// A/B CPU benchmark of two builds of the wasm module, in one Node process, on `memory` storage:
// the engine workloads of `run.mjs` (same SQL and data, `common.mjs`) without OPFS or a browser.
//
//   cp -r pkg/wasm /tmp/a   # build A (e.g. before a change), then rebuild, then:
//   node bench/wasm-ab.mjs /tmp/a pkg/wasm [rounds]
//
// Rounds alternate which build goes first; each workload reports the median and the minimum of
// the process CPU time (user + system) it took, and B/A. On these shared 2-core machines wall
// time swings by +-10% between identical builds, CPU time by +-2%: use it to see whether a build
// or wasm-opt change made SQLite or the bindings slower, then confirm with `run.mjs` (ratios vs
// sqlite-wasm). `BENCH_WALL=1` measures wall time instead.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SQL, makeRows, makeIds } from './common.mjs';

const dirs = process.argv.slice(2, 4).map((d) => resolve(d));
if (dirs.length !== 2) {
  console.error('usage: node bench/wasm-ab.mjs DIR_A DIR_B [rounds]  (each DIR a copy of pkg/wasm)');
  process.exit(2);
}
const rounds = Number(process.argv[4] ?? 15);
const now = process.env.BENCH_WALL
  ? () => performance.now()
  : () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };

const mods = [];
for (const dir of dirs) {
  const m = await import(pathToFileURL(`${dir}/synqlite.js`).href);
  m.initSync({ module: readFileSync(`${dir}/synqlite_bg.wasm`) });
  mods.push(m);
}

const rows = makeRows(10_000);
const ids = makeIds(10_000, 10_000);
let seq = 0;

/** One round of every workload on build `m`: milliseconds per workload. */
async function round(m) {
  const out = {};
  let db = await m.Database.open(`ab${seq++}`, 'memory');
  db.exec(SQL.create);
  let t = now();
  db.exec('BEGIN');
  for (const r of rows) db.exec(SQL.insert, r);
  db.exec('COMMIT');
  out['insert 10k in 1 tx'] = now() - t;
  t = now();
  let sum = 0;
  for (const id of ids) sum += db.query(SQL.pointRead, [id]).values[0];
  out['10k point reads'] = now() - t;
  db.close();
  if (sum <= 0) throw new Error('point reads found nothing');

  db = await m.Database.open(`ab${seq++}`, 'memory');
  db.exec(SQL.create);
  db.exec(SQL.fill(100_000));
  t = now();
  for (let i = 0; i < 3; i++) db.query(SQL.groupBy);
  out['3x GROUP BY 100k'] = now() - t;
  t = now();
  db.query("SELECT count(*) FROM t WHERE grp LIKE 'g1%' AND v > 10");
  db.query('SELECT grp, max(v) FROM t GROUP BY grp ORDER BY 2 DESC');
  out['scan + sort 100k'] = now() - t;
  db.close();

  // The CRDT path: writes to a replicated table, reading its change rows, merging them.
  const src = await m.Database.open(`ab${seq++}`, 'memory');
  const dst = await m.Database.open(`ab${seq++}`, 'memory');
  for (const d of [src, dst]) {
    d.exec('CREATE TABLE r (id INTEGER PRIMARY KEY NOT NULL, grp TEXT, v REAL)');
    d.asCrr('r');
  }
  t = now();
  src.exec('BEGIN');
  for (let i = 0; i < 5_000; i++) src.exec('INSERT INTO r (id, grp, v) VALUES (?, ?, ?)', rows[i]);
  src.exec('COMMIT');
  out['crr insert 5k'] = now() - t;
  t = now();
  const changes = src.changes(0n, undefined);
  out['changes 10k rows'] = now() - t;
  t = now();
  const { applied } = dst.applyChanges(changes);
  out['applyChanges 10k'] = now() - t;
  src.close();
  dst.close();
  if (applied !== changes.length) throw new Error(`applied ${applied} of ${changes.length}`);
  return out;
}

const samples = [{}, {}];
for (let r = 0; r < rounds; r++) {
  for (const i of r % 2 ? [1, 0] : [0, 1]) {
    for (const [k, v] of Object.entries(await round(mods[i]))) (samples[i][k] ??= []).push(v);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`${process.env.BENCH_WALL ? 'wall' : 'CPU'} ms, ${rounds} rounds; A = ${dirs[0]}, B = ${dirs[1]}`);
for (const k of Object.keys(samples[0])) {
  const [a, b] = samples.map((s) => s[k]);
  const ma = median(a), mb = median(b), na = Math.min(...a), nb = Math.min(...b);
  console.log(
    `${k.padEnd(20)} median A ${ma.toFixed(1)} B ${mb.toFixed(1)} B/A ${(mb / ma).toFixed(3)}` +
      ` | min A ${na.toFixed(1)} B ${nb.toFixed(1)} B/A ${(nb / na).toFixed(3)}`,
  );
}
