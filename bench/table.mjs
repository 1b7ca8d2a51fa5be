// The README's benchmark table, made from the committed results: Chromium's run
// (results/latest.json) beside Firefox's (results/latest-firefox.json), then the server rows.
// `node bench/table.mjs` prints it; `--update-readme` replaces the table between the
// `<!-- bench:table -->` and `<!-- /bench:table -->` markers of README.md. A workload a run lacks
// shows as "-". Figures are rounded for reading; the JSON files keep them all.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const RESULTS = join(ROOT, 'bench', 'results');
const BEGIN = '<!-- bench:table -->';
const END = '<!-- /bench:table -->';

// label, workload name(s) in the results, target. Two names: shown as "a / b" (median / p95,
// update / delete); `factor`: the row's own value is the number shown (unit x).
const SYNC_INITIAL = 'sync: initial sync of 50k rows x 5 cols (250k change rows) from the server into a fresh OPFS db, db.sync() to up-to-date';
const ROWS = [
  ['engine: open to first query (wasm init + open + SELECT 1)', ['engine: open to first query (wasm init + open + SELECT 1)'], '≤ 1.0x'],
  ['engine: insert 10k rows in 1 tx', ['engine: insert 10k rows in 1 tx'], '≤ 1.0x'],
  ['engine: 500 autocommit inserts', ['engine: 500 autocommit inserts'], '≤ 1.0x'],
  ['engine: 10k point reads by pk', ['engine: 10k point reads by pk'], '≤ 1.0x'],
  ['engine: GROUP BY over 100k rows', ['engine: GROUP BY over 100k rows (100 groups)'], '≤ 1.0x'],
  ['app: open to first query (incl. worker start)', ['app: open to first query (incl. worker start)'], '≤ 1.1x'],
  ['app: insert 10k rows in 1 tx, await each row', ['app: insert 10k rows in 1 tx (await each row)'], '≤ 1.1x'],
  ['app: insert 10k rows in 1 tx, one `batch` call', ['app: insert 10k rows in 1 tx (one batch call; anchor: pipelined)'], '≤ 1.1x'],
  ['app: 500 autocommit inserts', ['app: 500 autocommit inserts'], '≤ 1.1x'],
  ['app: 10k point reads by pk', ['app: 10k point reads by pk'], '≤ 1.1x'],
  ['app: GROUP BY over 100k rows', ['app: GROUP BY over 100k rows (100 groups)'], '≤ 1.1x'],
  ['reactivity: commit → callback in another tab, median / p95', [
    'reactivity: cross-tab, commit (owner worker announces) -> onRange callback in other tab, median',
    'reactivity: cross-tab, commit (owner worker announces) -> onRange callback in other tab, p95'], '< 5 ms'],
  ['reactivity: `exec()` in tab A → callback in tab B, median / p95', [
    'reactivity: cross-tab, exec() called in owner tab A -> onRange callback in tab B, median',
    'reactivity: cross-tab, exec() called in owner tab A -> onRange callback in tab B, p95'], '< 5 ms'],
  ['reactivity: 1,000 one-row txs with 20 subscriptions (5 live queries) vs none',
    ['reactivity: 1,000 one-row transactions awaited one by one, 20 subscriptions open (incl. 5 liveQuery)'], '≤ 1.1x'],
  ['crdt: replicated / plain table, insert 10k rows in 1 tx',
    ['crdt: replicated / plain table overhead, insert 10k rows in 1 tx (factor)'], '≤ 1.5x', 'factor'],
  ['crdt: replicated / plain table, update 1 column of 10k rows / delete 10k rows', [
    'crdt: replicated / plain table overhead, update 10k rows in 1 tx (factor)',
    'crdt: replicated / plain table overhead, delete 10k rows in 1 tx (factor)'], '', 'factor'],
  ['crdt: merge 250k change rows into a fresh db, 1 tx',
    ['crdt: merge 250k change rows (50k rows x 5 cols) into a fresh db, 1 tx'], '≥ 10x faster'],
  ['crdt: merge 250k change rows, 1024-row chunks',
    ['crdt: merge 250k change rows (50k rows x 5 cols) into a fresh db, 1024-row chunks (1 tx each)'], '≥ 10x faster'],
  ['crdt: changes since the last 1% of versions, 100k rows',
    ['crdt: changes since the last 1% of versions (10 of 1,000 txs, 2k change rows) on a 100k-row table'], ''],
  ['sync: initial sync of 50k rows x 5 cols from the server into a fresh OPFS db, to up-to-date (anchor: crsqlite-wasm merging the same rows in 1 tx)',
    [SYNC_INITIAL], '≥ 10x faster'],
  ['sync: the same with 20 live queries open / without', ['sync: the same initial sync with 20 live queries open on the synced table / without (factor)'], '≤ 1.2x', 'factor'],
  ['sync: longest main-thread task during that sync', ['sync: longest main-thread task during that sync with 20 live queries'], '≤ 50 ms'],
  ['sync: `exec()` in client A → listener in client B through the server, median',
    ['sync: exec() in client A -> change listener in client B through the server (median of 50)'], ''],
  ['size: wasm, gzip -9', ['size: wasm (gzip -9)'], '< 600 KiB'],
];

const SERVER_ROWS = [
  ['server: relay, 1,000 clients / 100 rooms, 1 write/2 s each, p50 / p99', [
    'server: relay 1000 clients / 100 rooms, 1 write/2 s: relay latency p50',
    'server: relay 1000 clients / 100 rooms, 1 write/2 s: relay latency p99'], '< 10 / < 50 ms'],
  ['server: CPU and RSS in that run', [
    'server: relay 1000 clients / 100 rooms, 1 write/2 s: server CPU',
    'server: relay 1000 clients / 100 rooms, 1 write/2 s: server RSS peak'], '< 1 core, < 256 MiB'],
  ['server: the same at 1 write/1 s each, with 50 hostile connections, p50 / p99', [
    'server: hostile: relay 1000 clients / 100 rooms, 1 write/1 s, + 50 hostile connections: relay latency p50',
    'server: hostile: relay 1000 clients / 100 rooms, 1 write/1 s, + 50 hostile connections: relay latency p99'], '< 50 ms p99'],
  ['server: 10,000 idle connections, RSS per 1,000', ['server: idle 10000 connections: server RSS per 1k idle connections'], '< 100 MiB'],
  ['server: one 10k-row transaction to 199 clients of one room, p99',
    ['server: burst: one 10k-row transaction to 199 clients of one room: all rows at every client p99'], '< 2 s'],
];

function figure(row) {
  if (!row || row.synqlite === null || row.synqlite === undefined) return '-';
  const v = row.synqlite;
  switch (row.unit) {
    case 'ms': return `${v >= 1000 ? Math.round(v) : v >= 100 ? v.toFixed(1) : v.toFixed(v >= 10 ? 1 : 2)} ms`;
    case 'x': return `${v.toFixed(2)}x`;
    case 'bytes': return `${(v / 1024).toFixed(1)} KiB`;
    case 'cores': return `${v.toFixed(2)} cores`;
    case 'MiB': return `${Math.round(v)} MiB`;
    default: return `${v} ${row.unit}`;
  }
}

function anchorFigure(row) {
  if (!row || row.anchor_value === null || row.anchor_value === undefined) return '';
  return figure({ ...row, synqlite: row.anchor_value });
}

const ratio = (row) => (row && typeof row.ratio === 'number' ? `${row.ratio.toFixed(2)}x` : '');

/** The cells (synqlite, anchor, ratio) of one run for a table row. */
function cells(results, names, factor) {
  const rows = names.map((n) => results.get(n));
  if (rows.every((r) => !r)) return ['-', '', ''];
  if (names.length > 1) {
    // "1 / 2 ms" when the figures share a unit, "0.4 cores / 118 MiB" when not.
    const units = new Set(rows.map((r) => r?.unit));
    const unit = units.size === 1 ? rows[0]?.unit : null;
    const join = (f) => {
      const text = rows.map(f).join(' / ');
      return unit ? text.replaceAll(` ${unit} / `, ' / ') : text;
    };
    return [join(figure), factor ? join(anchorFigure) : '', ''];
  }
  const [row] = rows;
  return [figure(row), anchorFigure(row), ratio(row)];
}

async function load(file) {
  const text = await readFile(join(RESULTS, file), 'utf8').catch(() => null);
  return new Map((text ? JSON.parse(text) : []).map((r) => [r.workload, r]));
}

export async function table() {
  const chromium = await load('latest.json');
  const firefox = await load('latest-firefox.json');
  const lines = [
    '| workload | Chromium: synqlite | anchor | ratio | Firefox: synqlite | anchor | ratio | target |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [label, names, target, factor] of ROWS) {
    lines.push(`| ${label} | ${[...cells(chromium, names, factor), ...cells(firefox, names, factor), target].join(' | ')} |`);
  }
  lines.push('', '| server (native, `npm run bench:server`) | synqlite | target |', '|---|---|---|');
  for (const [label, names, target] of SERVER_ROWS) {
    lines.push(`| ${label} | ${cells(chromium, names)[0]} | ${target} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = await table();
  if (process.argv.includes('--update-readme')) {
    const path = join(ROOT, 'README.md');
    const readme = await readFile(path, 'utf8');
    const a = readme.indexOf(BEGIN);
    const b = readme.indexOf(END);
    if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} ... ${END} section`);
    await writeFile(path, `${readme.slice(0, a + BEGIN.length)}\n${text}\n${readme.slice(b)}`);
    console.log('README.md: benchmark table updated');
  } else {
    console.log(text);
  }
}
