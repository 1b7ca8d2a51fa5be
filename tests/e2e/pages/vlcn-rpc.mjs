// The page side of a crsqlite-wasm worker (crsqlite-worker.mjs, mixed-crsqlite-worker.mjs): each
// call posts `{ id, op, args }` after the worker said `{ ready }`, and resolves with the worker's
// `{ id, ok, result }` or rejects with its `error`. A worker error rejects every pending call.

/** Starts the module worker at `url`; returns `vlcn(op, args)`, which calls into it. */
export function connectWorker(url) {
  const worker = new Worker(url, { type: 'module', name: 'crsqlite' });
  let next = 1;
  const pending = new Map();
  let ready, failed;
  const readyP = new Promise((resolve, reject) => { ready = resolve; failed = reject; });
  worker.onmessage = (e) => {
    if (e.data.ready) return ready();
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.ok) p.resolve(e.data.result);
    else p.reject(new Error(e.data.error));
  };
  worker.onerror = (e) => {
    const err = new Error(`crsqlite worker error: ${e.message ?? e}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    failed(err);
    console.error(err.message);
  };
  return async (op, args) => {
    await readyP;
    return new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, args });
    });
  };
}
