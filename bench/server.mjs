#!/usr/bin/env node
// The server load workloads: `node bench/server.mjs` (or `npm run bench:server`); see README.md,
// "Server load".
//
// Builds target/server/synqlite-server and target/server/synqlite-loadtest (cargo profile
// "server"), then runs each scenario of the table below with `synqlite-loadtest --spawn
// target/server/synqlite-server ...`: every scenario gets a fresh server over a temporary data
// folder (seeded first where it says so), stopped with SIGTERM at the end. The load generator is
// a Rust binary of simulated clients speaking the real sync protocol (crates/loadtest), one
// runtime thread by default, and reports its own CPU beside the server's.
//
// Writes its rows (workloads named "server: ...") into bench/results/latest.json, replacing the
// previous server rows and leaving the others alone, and every figure of every scenario into
// latest-detail.json (env.server). `npm run bench` keeps these rows when it rewrites the files.
//
// Env: BENCH_ONLY=regex selects scenarios by name (or id); BENCH_QUICK=1 shortens every scenario
// to a few seconds (a smoke test). Either one writes results/partial-server*.json instead.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile, writeFile, mkdtemp, rm, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const RESULTS = join(ROOT, 'bench', 'results');
const SERVER = join(ROOT, 'target/server/synqlite-server');
const LOADTEST = join(ROOT, 'target/server/synqlite-loadtest');

const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : null;
const quick = !!process.env.BENCH_QUICK;
const log = (...a) => console.error(...a);

// Issue 18's table. Each scenario takes ~30-60 s (plus seeding for joins).
const relay = (clients, rooms, periodMs, ramp) => [
  '--clients', clients, '--rooms', rooms, '--period-ms', periodMs,
  '--ramp-secs', ramp, '--warmup-secs', 5, '--duration-secs', 30,
];
// Every simulated client connects from 127.0.0.1: no per-address cap.
const COMMON = ['--spawn-arg=--max-connections-per-ip=0'];
const SCENARIOS = [
  { id: 'relay-10', args: ['--scenario', 'relay', ...relay(10, 2, 500, 2)] },
  { id: 'relay-100', args: ['--scenario', 'relay', ...relay(100, 10, 2000, 5)] },
  { id: 'relay-1000', args: ['--scenario', 'relay', ...relay(1000, 100, 2000, 10)] },
  { id: 'relay-1000-1s', args: ['--scenario', 'relay', ...relay(1000, 100, 1000, 10)] },
  { id: 'relay-1000-slow', args: ['--scenario', 'relay', ...relay(1000, 100, 10000, 10)] },
  // Pings every 5 s instead of 30, so 40 s idle sees ~8 of them answered (a client that does not
  // answer is dropped after two).
  { id: 'idle-10000', args: ['--scenario', 'idle', '--clients', 10000, '--rooms', 100, '--ramp-secs', 20, '--duration-secs', 40,
    '--spawn-arg=--ping-interval-secs=5'] },
  { id: 'joins-1000', args: ['--scenario', 'joins', '--clients', 1000, '--rooms', 100, '--ramp-secs', 10, '--seed-rows', 1000] },
  { id: 'burst-200', args: ['--scenario', 'burst', '--clients', 200, '--ramp-secs', 5] },
  // Issue 11's pair: relay-1000-1s without, this one with 50 hostile connections.
  { id: 'hostile-1000', args: ['--scenario', 'hostile', ...relay(1000, 100, 1000, 10), '--hostile', 50] },
];

function quicken(args) {
  const a = args.map(String);
  const set = (flag, v) => {
    const i = a.indexOf(flag);
    if (i >= 0) a[i + 1] = String(v);
  };
  set('--duration-secs', 5);
  set('--warmup-secs', 1);
  set('--ramp-secs', 2);
  set('--clients', Math.min(Number(a[a.indexOf('--clients') + 1]), 100));
  set('--rooms', Math.min(Number(a[a.indexOf('--rooms') + 1]), 10));
  set('--seed-rows', 100);
  set('--hostile', 12);
  return a;
}

async function readJson(file, fallback) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return fallback;
  }
}

async function main() {
  log('bench/server: building synqlite-server and synqlite-loadtest (cargo profile server)');
  execFileSync('cargo', ['build', '--profile', 'server', '-q', '-p', 'synqlite-server', '-p', 'synqlite-loadtest'],
    { cwd: ROOT, stdio: 'inherit' });
  for (const f of [SERVER, LOADTEST]) if (!existsSync(f)) throw new Error(`missing ${f}`);

  const dir = await mkdtemp(join(tmpdir(), 'synqlite-bench-server-'));
  const rowsFile = join(dir, 'rows.json');
  const detailFile = join(dir, 'detail.json');
  const failures = [];
  const selected = SCENARIOS.filter((s) => !only || only.test(s.id) || only.test(s.args.join(' ')));
  const started = Date.now();
  let rows = [];
  let records = [];
  try {
    for (const s of selected) {
      const args = [...COMMON, ...(quick ? quicken(s.args) : s.args.map(String)),
        '--spawn', SERVER, '--schema', join(ROOT, 'schema'), '--out', rowsFile, '--out-detail', detailFile];
      log(`\nbench/server: ${s.id}: synqlite-loadtest ${args.join(' ')}`);
      const r = spawnSync(LOADTEST, args, { cwd: ROOT, stdio: 'inherit' });
      if (r.status !== 0) failures.push(`${s.id}: exit status ${r.status ?? r.signal}`);
    }
  } finally {
    rows = await readJson(rowsFile, []);
    records = await readJson(detailFile, []);
    await rm(dir, { recursive: true, force: true });
  }
  if (only && !rows.length) {
    log(`bench/server: BENCH_ONLY=${process.env.BENCH_ONLY} selected nothing (ids: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  }

  // Table.
  console.log(`\nserver load (${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ` +
    `${Math.round((Date.now() - started) / 1000)} s):`);
  const w = Math.max(...rows.map((r) => r.workload.length), 10);
  for (const r of rows) console.log(`  ${r.workload.padEnd(w)}  ${String(r.synqlite ?? '-').padStart(10)} ${r.unit}`);

  // Files: replace the server rows, keep the rest.
  const stem = only || quick ? 'partial-server' : 'latest';
  await mkdir(RESULTS, { recursive: true });
  const latestFile = join(RESULTS, `${stem}.json`);
  const detailOut = join(RESULTS, `${stem}-detail.json`);
  const isServer = (r) => r.workload.startsWith('server: ');
  const names = new Set(rows.map((r) => r.workload));
  const keep = (r) => (stem === 'latest' ? !isServer(r) : !names.has(r.workload));
  const flat = [...(await readJson(latestFile, [])).filter(keep), ...rows];
  await writeFile(latestFile, JSON.stringify(flat, null, 2) + '\n');
  const detail = await readJson(detailOut, {});
  detail.env ??= {};
  const prev = stem === 'latest' ? [] : (detail.env.server?.scenarios ?? []).filter((x) => !records.some((y) => y.name === x.name));
  detail.env.server = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, loadavg: loadavg() },
    loadtest: 'crates/loadtest (synqlite-loadtest), --spawn target/server/synqlite-server, cargo profile server',
    scenarios: [...prev, ...records],
  };
  if (Array.isArray(detail.results)) detail.results = [...detail.results.filter(keep), ...rows];
  await writeFile(detailOut, JSON.stringify(detail, null, 2) + '\n');
  console.log(`wrote bench/results/${stem}.json and ${stem}-detail.json`);
  if (failures.length) {
    console.error('\nbench/server: FAILED scenarios:');
    for (const f of failures) console.error(`  ${f}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  log(`bench/server: ${e.stack ?? e}`);
  process.exit(1);
});
