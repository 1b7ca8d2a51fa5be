// The reactivity benchmark page (bench/run.mjs opens two tabs of it on one database).
//
// Clock: every timestamp is `performance.timeOrigin + performance.now()`, in tabs and workers
// alike, so it can be compared across them (5 µs steps when the page is cross-origin isolated).
// `ping*` measures a bare BroadcastChannel hop between the two tabs in both directions, which gives
// the floor of any cross-tab notification and an estimate of the clock offset between the tabs.
import { openDatabase } from '/pkg/dist/index.js';
import { uniqueName, removeOpfs, opfsEntries } from './common.mjs';

const stamp = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const STAMPED_WORKER = '/bench/reactivity-worker.mjs';

let db = null;
let listening = null;
let pings = null;

/** Opens the latency database with the time-stamping worker (see reactivity-stamp.mjs). */
async function open(name) {
  db = await openDatabase({
    name,
    storage: 'opfs',
    worker: new Worker(STAMPED_WORKER, { type: 'module', name: `synqlite:${name}` }),
  });
  return { storage: db.storage, visibility: document.visibilityState, crossOriginIsolated: self.crossOriginIsolated };
}

async function close() {
  await db?.close();
  db = null;
}

const exec = (sql, params) => db.exec(sql, params);

/**
 * Starts recording, per inserted rowid of `table`: when this tab's onRange callback ran, and the
 * owner worker's announce stamp of that transaction (from a plain channel listener).
 */
function listen(table) {
  const callbacks = new Map();
  const announced = new Map();
  const off = db.onRange([table], (changes, source) => {
    const t = stamp();
    for (const c of changes) callbacks.set(Number(c.rowid), { t, source });
  });
  const raw = new BroadcastChannel(db.name);
  raw.onmessage = (e) => {
    const { txs, announcedAt } = e.data ?? {};
    if (!Array.isArray(txs)) return;
    // Columnar transactions (see WireTx in pkg/src/protocol.ts).
    for (const tx of txs) {
      for (let i = 0; i < tx.ops.length; i++) {
        if (tx.tables[tx.table[i]] === table) announced.set(Number(tx.rowids[i]), announcedAt);
      }
    }
  };
  listening = { callbacks, announced, off, raw };
}

function collect() {
  const { callbacks, announced, off, raw } = listening;
  off();
  raw.close();
  listening = null;
  return [...callbacks].map(([id, { t, source }]) => ({ id, t, source, announcedAt: announced.get(id) ?? null }));
}

/**
 * Writes rows `first..first+n-1` of `table`, one autocommit INSERT each, awaited one by one, with
 * `gapMs` (plus up to 2 ms of jitter) between them so every notification lands on idle tabs.
 */
async function write(table, first, n, gapMs) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const id = first + i;
    const t0 = stamp();
    await db.exec(`INSERT INTO ${table} (id, v) VALUES (?, ?)`, [id, `row ${id}`]);
    const t1 = stamp();
    out.push({ id, t0, t1 });
    await sleep(gapMs + Math.random() * 2);
  }
  return out;
}

// ---- bare BroadcastChannel hop between the tabs -------------------------------------------------
const tabId = crypto.randomUUID();

function pingListen() {
  const seen = [];
  const ch = new BroadcastChannel('synqlite-bench-ping');
  ch.onmessage = (e) => {
    const t = stamp();
    if (e.data.from !== tabId) seen.push({ i: e.data.i, sent: e.data.t, t });
  };
  pings = { ch, seen };
}

async function pingSend(n, gapMs) {
  const ch = new BroadcastChannel('synqlite-bench-ping');
  for (let i = 0; i < n; i++) {
    ch.postMessage({ from: tabId, i, t: stamp() });
    await sleep(gapMs + Math.random() * 2);
  }
  ch.close();
}

function pingCollect() {
  const { ch, seen } = pings;
  ch.close();
  pings = null;
  return seen;
}

// ---- cost of writes with subscriptions open -----------------------------------------------------
/** Opens a fresh database (the package's own worker) with the subscriptions of `kind` open. */
async function costSetup(kind, n) {
  const d = await openDatabase({ name: uniqueName(`rx-cost-${kind}`), storage: 'opfs' });
  const s = { kind, d, offs: [], counts: { any: 0, range: 0, point: 0, live: 0 }, liveCount: null };
  if (d.storage !== 'opfs') throw new Error(`expected opfs storage, got ${d.storage}`);
  await d.exec('CREATE TABLE rx (id INTEGER PRIMARY KEY, v TEXT)');
  await d.exec('CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)');
  const { counts, offs } = s;
  const any = () => counts.any++;
  const range = () => counts.range++;
  const point = () => counts.point++;
  const points = [1, n / 4, n / 2, (3 * n) / 4, n].map(Math.round);
  const ready = [];
  const liveQuery = (sql, onRows) => new Promise((resolve) => {
    let first = true;
    offs.push(d.liveQuery(sql, [], (rows) => {
      counts.live++;
      onRows?.(rows);
      if (first) { first = false; resolve(); }
    }));
  });
  if (kind === 'mixed') {
    for (let i = 0; i < 5; i++) offs.push(d.onAny(any));
    for (let i = 0; i < 5; i++) offs.push(d.onRange(i < 3 ? ['rx'] : ['other'], range));
    for (const p of points) offs.push(d.onPoint('rx', p, point));
    ready.push(
      liveQuery('SELECT count(*) AS n FROM rx', (rows) => { s.liveCount = rows[0].n; }),
      liveQuery('SELECT id, v FROM rx ORDER BY id DESC LIMIT 10'),
      liveQuery('SELECT max(id) AS m FROM rx'),
      liveQuery('SELECT v FROM rx WHERE id = 1'),
      liveQuery('SELECT count(*) AS n FROM other'),
    );
  } else if (kind === 'plain') {
    for (let i = 0; i < 7; i++) offs.push(d.onAny(any));
    for (let i = 0; i < 7; i++) offs.push(d.onRange(i < 4 ? ['rx'] : ['other'], range));
    for (const p of [...points, 2]) offs.push(d.onPoint('rx', p, point));
  }
  await Promise.all(ready);
  counts.live = 0;
  return s;
}

/**
 * Times `n` one-row transactions (autocommit INSERTs, awaited one by one) on one fresh database
 * per kind of subscriptions, open at the same time, in this tab:
 * - `none`;
 * - `mixed`: 20 = 5 onAny + 5 onRange (3 on the written table, 2 on another) + 5 onPoint (rows
 *   1, n/4, n/2, 3n/4, n of the written table) + 5 liveQuery (4 reading the written table: a
 *   count, the 10 newest rows, a max, one row by key; 1 reading another table);
 * - `plain`: 20 without live queries = 7 onAny + 7 onRange (4 on the written table) + 6 onPoint.
 * The kinds take turns in blocks of `block` transactions (rotating which goes first), so drift in
 * OPFS flush times and machine load hits them alike; each kind's time is the sum of its blocks.
 */
async function cost(kinds, n, block) {
  const subs = [];
  try {
    for (const k of kinds) subs.push(await costSetup(k, n));
    await sleep(50);
    const ms = subs.map(() => 0);
    for (let first = 1, round = 0; first <= n; first += block, round++) {
      for (let j = 0; j < subs.length; j++) {
        const idx = (j + round) % subs.length;
        const { d } = subs[idx];
        const last = Math.min(first + block - 1, n);
        const t0 = performance.now();
        for (let i = first; i <= last; i++) await d.exec('INSERT INTO rx (id, v) VALUES (?, ?)', [i, `row ${i}`]);
        ms[idx] += performance.now() - t0;
        // Let trailing notifications and live-query re-runs finish outside the timed blocks.
        await sleep(10);
      }
    }
    const deadline = performance.now() + 10_000;
    while (subs.some((s) => s.kind === 'mixed' && s.liveCount !== n) && performance.now() < deadline) await sleep(5);
    await sleep(100);
    const out = {};
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i];
      const [{ rows }] = await s.d.query('SELECT count(*) AS rows FROM rx');
      out[s.kind] = { ms: ms[i], check: { rows, ...s.counts, liveCount: s.liveCount } };
    }
    return out;
  } finally {
    for (const s of subs) {
      for (const off of s.offs) off();
      await s.d.close();
    }
    for (const entry of await opfsEntries()) await removeOpfs([entry]);
  }
}

async function wipeOpfs() {
  for (const entry of await opfsEntries()) await removeOpfs([entry]);
}

window.rx = { open, close, exec, listen, collect, write, pingListen, pingSend, pingCollect, cost, wipeOpfs, opfsEntries };
window.rxReady = true;
