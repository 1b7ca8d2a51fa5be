// The CRDT workloads of `node bench/run.mjs` (see README.md, "CRDT"): synqlite's wasm Database on
// OPFS against @vlcn.io/crsqlite-wasm 0.16 on its default IndexedDB VFS, both in dedicated workers
// of bench/crdt.html, timed in the worker (engine):
//   insert:  10k rows in one transaction into a plain table and into a replicated one;
//   update, delete: then, on 10k such rows, one column of every row updated in one transaction,
//            and every row deleted in one transaction (one statement per row);
//   merge:   250k change rows (50k rows x 5 columns, generated once by synqlite) into a fresh
//            database, in one transaction and in 1024-row chunks (one transaction each);
//   merge through the virtual table: the same 250k rows, one `INSERT INTO crsql_changes` each
//            in one transaction, on both (crsqlite-wasm's own merge path);
//   read:    all 250k change rows of a 50k-row table, `SELECT ... FROM crsql_changes WHERE
//            db_version > 0` on both, and synqlite's `changes(0)` against the same anchor;
//   since:   change rows of the last 1% of versions on a 100k-row table written in 1,000 txs.
// Numbers only: the checks (same table checksums and clock counts on both) become failures.
import { ensureCrsqliteBundle, crsqliteVersion } from './crsqlite-bundle.mjs';

const N_INSERT = 10_000;
const MERGE_ROWS = 50_000; // x 5 columns = 250k change rows
const MERGE_CHUNK = 1024;
const SINCE_ROWS = 100_000;
const SINCE_VERSIONS = 1000;
const SINCE_LAST = 10; // 1% of the versions
const OVERHEAD_TARGET = 1.5;
const MERGE_TARGET = 1 / 5; // >= 5x faster than the anchor

const W = {
  insPlain: 'crdt: insert 10k rows in 1 tx, plain table',
  insCrr: 'crdt: insert 10k rows in 1 tx, replicated table (crsql_as_crr)',
  overhead: 'crdt: replicated / plain table overhead, insert 10k rows in 1 tx (factor)',
  updPlain: 'crdt: update 1 column of 10k rows in 1 tx, plain table',
  updCrr: 'crdt: update 1 column of 10k rows in 1 tx, replicated table (crsql_as_crr)',
  updOverhead: 'crdt: replicated / plain table overhead, update 10k rows in 1 tx (factor)',
  delPlain: 'crdt: delete 10k rows in 1 tx, plain table',
  delCrr: 'crdt: delete 10k rows in 1 tx, replicated table (crsql_as_crr)',
  delOverhead: 'crdt: replicated / plain table overhead, delete 10k rows in 1 tx (factor)',
  merge: 'crdt: merge 250k change rows (50k rows x 5 cols) into a fresh db, 1 tx',
  mergeChunks: 'crdt: merge 250k change rows (50k rows x 5 cols) into a fresh db, 1024-row chunks (1 tx each)',
  mergeVtab: 'crdt: merge 250k change rows (50k rows x 5 cols) into a fresh db, INSERT INTO crsql_changes per row, 1 tx',
  readVtab: 'crdt: read 250k change rows, SELECT * FROM crsql_changes WHERE db_version > 0',
  readChanges: 'crdt: read 250k change rows, synqlite changes(0) vs crsqlite-wasm SELECT * FROM crsql_changes',
  since: 'crdt: changes since the last 1% of versions (10 of 1,000 txs, 2k change rows) on a 100k-row table',
};
export const CRDT_WORKLOADS = Object.values(W);
const LIBS = ['synqlite', 'anchor'];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Runs the selected CRDT workloads in a new tab of `context`. `selected(name)` filters by workload
 * name; `reps` overrides every repetition count (BENCH_REPS). Returns `{ entries, detail,
 * failures, anchorName }`, entries in the latest.json shape plus run.mjs's display fields.
 */
export async function runCrdt({ context, url, log, selected, reps: repsOverride }) {
  const want = (...names) => names.some((n) => selected(n));
  const entries = [];
  const failures = [];
  const version = await ensureCrsqliteBundle();
  const anchorName = `crsqlite-wasm ${version ?? (await crsqliteVersion())} IndexedDB`;
  const detail = { anchor: anchorName, samples: [] };

  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[crdt page error] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning' || process.env.DEBUG) log(`[crdt console.${m.type()}] ${m.text()}`);
  });
  await page.goto(`${url}/bench/crdt.html`);
  await page.waitForFunction(() => window.crdtReady === true, null, { timeout: 30_000 });
  const call = (fn, ...args) => page.evaluate(([fn, args]) => window.crdt[fn](...args), [fn, args]);

  const entry = (workload, ms, extra = {}) => {
    const e = {
      workload,
      unit: 'ms',
      synqlite: round(median(ms.synqlite)),
      anchor: anchorName,
      anchor_value: round(median(ms.anchor)),
      ratio: round(median(ms.synqlite) / median(ms.anchor)),
      _min: { synqlite: round(Math.min(...ms.synqlite)), anchor: round(Math.min(...ms.anchor)) },
      _reps: ms.synqlite.length,
      ...extra,
    };
    entries.push(e);
    log(`${workload}: synqlite ${e.synqlite} ${e.unit}, anchor ${e.anchor_value} ${e.unit}, ratio ${e.ratio} (${e._reps} reps)`);
    return e;
  };

  /** The replicated / plain factor row of two entries (target: the insert's). */
  const factor = (workload, plain, crr, target) => {
    const f = { synqlite: crr.synqlite / plain.synqlite, anchor: crr.anchor_value / plain.anchor_value };
    entries.push({
      workload, unit: 'x', synqlite: round(f.synqlite), anchor: anchorName, anchor_value: round(f.anchor),
      ratio: round(f.synqlite / f.anchor), _reps: plain._reps,
      ...(target ? { _targetText: `synqlite <= ${target}x`, _ok: f.synqlite <= target } : {}),
    });
    return f;
  };

  /** Warm-up (args from `warm`, unmeasured), then `reps` repetitions alternating the order. */
  const repeat = async (name, reps, op, args, warm = args) => {
    const out = { synqlite: [], anchor: [] };
    for (let rep = -1; rep < (repsOverride ?? reps); rep++) {
      const order = rep % 2 === 0 ? LIBS : [...LIBS].reverse();
      for (const lib of order) {
        const r = await call('run', lib, op, rep < 0 ? warm : args);
        if (rep < 0) continue;
        out[lib].push(r);
        detail.samples.push({ workload: name, lib, rep, ...r });
      }
    }
    return out;
  };

  try {
    await call('wipe');
    detail.engines = { synqlite: await call('start', 'synqlite'), anchor: await call('start', 'anchor') };

    if (want(W.insPlain, W.insCrr, W.overhead)) {
      const t0 = Date.now();
      const r = await repeat('insert', 9, 'insertPair', { n: N_INSERT });
      const total = N_INSERT * (N_INSERT + 1) / 2 + 0.25 * N_INSERT;
      const expect = [[N_INSERT, total], [N_INSERT, total], 2 * N_INSERT];
      for (const lib of LIBS) {
        const bad = r[lib].find((x) => !same(x.check, expect));
        if (bad) failures.push(`${W.insCrr}: ${lib} returned ${JSON.stringify(bad.check)}, expected ${JSON.stringify(expect)}`);
      }
      const pick = (k) => ({ synqlite: r.synqlite.map((x) => x[k]), anchor: r.anchor.map((x) => x[k]) });
      const plain = entry(W.insPlain, pick('plain'));
      const crr = entry(W.insCrr, pick('crr'));
      const f = factor(W.overhead, plain, crr, OVERHEAD_TARGET);
      detail.insertSettledMs = {
        synqlite: { plain: round(median(r.synqlite.map((x) => x.settled.plain))), crr: round(median(r.synqlite.map((x) => x.settled.crr))) },
        anchor: { plain: round(median(r.anchor.map((x) => x.settled.plain))), crr: round(median(r.anchor.map((x) => x.settled.crr))) },
        anchorIdbPuts: r.anchor[0]?.puts,
      };
      log(`${W.overhead}: synqlite ${round(f.synqlite)}x, anchor ${round(f.anchor)}x (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      // The anchor with SQLite's default temp_store (one run, 1k rows: ~1 min of write-back at 10k).
      detail.anchorDefaultTempStore = { rows: 1000, ...(await call('run', 'anchor', 'tempStoreProbe', { n: 1000 })) };
    }

    if (want(W.updPlain, W.updCrr, W.updOverhead, W.delPlain, W.delCrr, W.delOverhead)) {
      const t0 = Date.now();
      const r = await repeat('update/delete', 9, 'updateDeletePair', { n: N_INSERT });
      const updated = [N_INSERT, N_INSERT * (N_INSERT + 1) / 2 + 0.5 * N_INSERT];
      // Table after the update (plain, crr), after the delete (plain, crr), clock rows after each.
      const expect = [updated, updated, [0, 0], [0, 0], [2 * N_INSERT, N_INSERT]];
      for (const lib of LIBS) {
        const bad = r[lib].find((x) => !same(x.check, expect));
        if (bad) failures.push(`${W.updCrr}: ${lib} returned ${JSON.stringify(bad.check)}, expected ${JSON.stringify(expect)}`);
      }
      const pick = (op, k) => ({ synqlite: r.synqlite.map((x) => x[op][k]), anchor: r.anchor.map((x) => x[op][k]) });
      const settled = (op, k) => ({
        synqlite: round(median(r.synqlite.map((x) => x.settled[op][k]))),
        anchor: round(median(r.anchor.map((x) => x.settled[op][k]))),
      });
      for (const [op, plainName, crrName, overheadName] of [
        ['update', W.updPlain, W.updCrr, W.updOverhead],
        ['del', W.delPlain, W.delCrr, W.delOverhead],
      ]) {
        const f = factor(overheadName, entry(plainName, pick(op, 'plain')), entry(crrName, pick(op, 'crr')));
        log(`${overheadName}: synqlite ${round(f.synqlite)}x, anchor ${round(f.anchor)}x`);
      }
      detail.updateDeleteSettledMs = {
        update: { plain: settled('update', 'plain'), crr: settled('update', 'crr') },
        del: { plain: settled('del', 'plain'), crr: settled('del', 'crr') },
      };
      log(`  (update/delete workloads: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }

    if (want(W.merge, W.mergeChunks, W.mergeVtab)) {
      const t0 = Date.now();
      const prep = await call('prepareMerge', MERGE_ROWS);
      detail.mergeInput = prep;
      log(`crdt: generated ${prep.changeRows} change rows with synqlite in ${round(prep.genMs, 0)} ms, ` +
        `handed to crsqlite-wasm in ${round(prep.transferMs, 0)} ms`);
      const expect = [...prep.check, prep.changeRows, prep.changeRows];
      const warm = { limit: Math.round(prep.changeRows / 10) };
      for (const [name, chunk, via] of [[W.merge, 0], [W.mergeChunks, MERGE_CHUNK], [W.mergeVtab, 0, 'vtab']]) {
        if (!selected(name)) continue;
        const t1 = Date.now();
        const r = await repeat(name, 3, 'merge', { chunk, via }, { chunk, via, ...warm });
        for (const lib of LIBS) {
          const bad = r[lib].find((x) => !same(x.check, expect));
          if (bad) failures.push(`${name}: ${lib} returned ${JSON.stringify(bad.check)}, expected ${JSON.stringify(expect)}`);
        }
        const bad = r.synqlite.find((x) => x.applied !== prep.changeRows);
        if (bad) failures.push(`${name}: synqlite applied ${bad.applied} of ${prep.changeRows} change rows`);
        const e = entry(name, { synqlite: r.synqlite.map((x) => x.ms), anchor: r.anchor.map((x) => x.ms) }, {
          _targetText: '>= 5x faster', _ok: null,
        });
        e._ok = e.ratio <= MERGE_TARGET;
        e._settled = { synqlite: round(median(r.synqlite.map((x) => x.settledMs))), anchor: round(median(r.anchor.map((x) => x.settledMs))) };
        log(`  (${((Date.now() - t1) / 1000).toFixed(1)} s; anchor writes settled after ${e._settled.anchor} ms)`);
      }
      log(`crdt merge workloads: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }

    if (want(W.readVtab, W.readChanges)) {
      const t0 = Date.now();
      const expect = [MERGE_ROWS * 5];
      for (const [name, via] of [[W.readVtab, 'vtab'], [W.readChanges, 'changes']]) {
        if (!selected(name)) continue;
        const r = {};
        for (const lib of LIBS) {
          r[lib] = await call('run', lib, 'readAll', { rows: MERGE_ROWS, reps: repsOverride ?? 5, via });
          if (!same(r[lib].check, expect)) failures.push(`${name}: ${lib} returned ${JSON.stringify(r[lib].check)}, expected ${JSON.stringify(expect)}`);
          detail.samples.push({ workload: name, lib, ...r[lib] });
        }
        entry(name, { synqlite: r.synqlite.ms, anchor: r.anchor.ms });
      }
      log(`  (read workloads: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }

    if (want(W.since)) {
      const t0 = Date.now();
      const args = { rows: SINCE_ROWS, versions: SINCE_VERSIONS, last: SINCE_LAST, reps: repsOverride ?? 9 };
      const r = {};
      for (const lib of LIBS) r[lib] = await call('run', lib, 'changesSince', args);
      const expect = [SINCE_VERSIONS, (SINCE_ROWS / SINCE_VERSIONS) * SINCE_LAST * 2];
      for (const lib of LIBS) {
        if (!same(r[lib].check, expect)) failures.push(`${W.since}: ${lib} returned ${JSON.stringify(r[lib].check)}, expected ${JSON.stringify(expect)}`);
        detail.samples.push({ workload: W.since, lib, ...r[lib] });
      }
      detail.sinceSetupMs = { synqlite: round(r.synqlite.setupMs), anchor: round(r.anchor.setupMs) };
      entry(W.since, { synqlite: r.synqlite.ms, anchor: r.anchor.ms });
      log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s, setup: ${SINCE_VERSIONS} txs of ${SINCE_ROWS / SINCE_VERSIONS} rows: ` +
        `synqlite ${round(r.synqlite.setupMs, 0)} ms, anchor ${round(r.anchor.setupMs, 0)} ms)`);
    }
  } finally {
    await call('stop').catch(() => undefined);
    await call('wipe').catch(() => undefined);
    await page.close();
  }
  return { entries, detail, failures, anchorName };
}
