// Shared by the benchmark page and the benchmark workers: the SQL of every workload (identical for
// both libraries), the input data, a tiny request/reply protocol for workers, and OPFS clean-up.

export const SQL = {
  create: 'CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, v REAL)',
  insert: 'INSERT INTO t (id, grp, v) VALUES (?, ?, ?)',
  pointRead: 'SELECT id, grp, v FROM t WHERE id = ?',
  groupBy: 'SELECT grp, count(*) AS n, sum(v) AS total FROM t GROUP BY grp',
  count: 'SELECT count(*) AS n, total(v) AS total FROM t',
  /** Setup only (not timed): `n` rows in one statement, 100 distinct `grp` values. */
  fill: (n) =>
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) ` +
    `INSERT INTO t (id, grp, v) SELECT x, 'g' || (x % 100), x * 0.5 FROM c`,
};

/** Rows `[id, text, real]` for the insert workloads (built before the clock starts). */
export function makeRows(n, start = 1) {
  const rows = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = start + i;
    rows[i] = [id, `row ${id} of the benchmark`, id + 0.25];
  }
  return rows;
}

/** `n` ids in 1..max in a fixed pseudo-random order (same for both libraries). */
export function makeIds(n, max) {
  let s = 0x2545f491;
  const ids = new Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    ids[i] = ((s >>> 0) % max) + 1;
  }
  return ids;
}

/** Expected checksums, so a library that silently did less work is caught. */
export const expect = {
  rows: (n) => ({ n, total: (n * (n + 1)) / 2 + 0.25 * n }),
  pointReads: (ids) => ids.reduce((a, b) => a + b, 0),
};

let seq = 0;
/** A database name no earlier repetition used (valid for both libraries). */
export function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Serves `ops` to the page: `{ id, op, args }` -> `{ id, ok, result | error }`. */
export function serve(ops) {
  self.onmessage = async (e) => {
    const { id, op, args } = e.data;
    try {
      const fn = ops[op];
      if (!fn) throw new Error(`unknown op ${op}`);
      self.postMessage({ id, ok: true, result: await fn(args ?? {}) });
    } catch (err) {
      self.postMessage({ id, ok: false, error: String(err?.stack ?? err?.message ?? err) });
    }
  };
}

/** Page side of `serve`. */
export function rpc(worker) {
  let next = 1;
  const pending = new Map();
  worker.onmessage = (e) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.ok) p.resolve(e.data.result);
    else p.reject(new Error(e.data.error));
  };
  worker.onerror = (e) => {
    const err = new Error(`worker error: ${e.message ?? e}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  return (op, args) =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, args });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Removes `path` (e.g. ['.synqlite', 'name']) from OPFS, waiting for handles still being released. */
export async function removeOpfs(path, { timeoutMs = 10_000 } = {}) {
  const deadline = performance.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
    try {
      let dir = await navigator.storage.getDirectory();
      for (const part of path.slice(0, -1)) dir = await dir.getDirectoryHandle(part);
      await dir.removeEntry(path[path.length - 1], { recursive: true });
      return;
    } catch (e) {
      if (e?.name === 'NotFoundError') return;
      if (performance.now() > deadline) throw new Error(`cannot remove OPFS ${path.join('/')}: ${e?.name}: ${e?.message}`);
      await sleep(delay);
    }
  }
}

/** Lists the top-level OPFS entries (for leak checks). */
export async function opfsEntries() {
  const out = [];
  for await (const name of (await navigator.storage.getDirectory()).keys()) out.push(name);
  return out;
}
