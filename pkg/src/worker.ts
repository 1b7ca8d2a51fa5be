/**
 * The synqlite worker: owns the database when this tab wins the election, forwards calls to the
 * owning tab's worker otherwise.
 *
 * Election: every worker of a database asks for the Web Lock `synqlite:<name>:owner`; the holder
 * opens SQLite (OPFS SAH-pool handles are exclusive, so there can only be one) and announces itself
 * on `BroadcastChannel('synqlite:<name>')`. The others forward each call, addressed to that owner,
 * and get an `ack` when the owner queued it and a `res` with the result on their own channel.
 * When the owner goes away the lock passes to a waiting worker, which opens the database and
 * announces itself; calls the old owner never acknowledged are re-sent to it, calls it had
 * acknowledged are rejected with `OWNER_CHANGED` (they may or may not have been applied).
 *
 * Every worker holds the lock `synqlite:worker:<id>` while alive, so the owner learns when a tab
 * with an open transaction dies (it gets that lock) and rolls the transaction back.
 *
 * Calls run one at a time; while a transaction is open, only calls of that transaction run.
 * On IndexedDB storage a call is answered only after its writes are durable.
 */
import init, { Database as WasmDatabase, lastPanic, quotaExceededMessage } from '../wasm/synqlite.js';
import { SyncManager } from './sync-worker.js';
import {
  type Call,
  type ChangeMessage,
  type ClientMessage,
  type DirectMessage,
  type OpenOptionsWire,
  type QueryOutcome,
  type RawRows,
  type Reply,
  type SharedMessage,
  type StorageKind,
  type WireError,
  type WireTx,
  type WorkerMessage,
  channelName,
  directChannelName,
  ownerLockName,
  workerLockName,
} from './protocol.js';

interface WorkerScope {
  postMessage(message: WorkerMessage): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ClientMessage>) => void): void;
}
const scope = self as unknown as WorkerScope;

const OPEN_TIMEOUT_MS = 20_000;
/** The wasm module's memory (for `stats`), once loaded. */
let wasmMemory: WebAssembly.Memory | null = null;
const workerId = crypto.randomUUID();
/** Set when the wasm module trapped (a bug): every later call is refused with this text. */
let trapped: string | null = null;

function wireError(code: string, message: string): WireError {
  return { name: 'SynqliteError', code, message };
}

/** Any thrown value as a wire error; errors from the wasm module carry `code`. */
function toWire(e: unknown): WireError {
  if (e instanceof WebAssembly.RuntimeError) {
    // A Rust panic (the release build aborts) or another trap: the hook kept the panic's text.
    // The module's state is undefined from here on: no later call may run in it.
    trapped ??= lastPanic() ?? `wasm trapped: ${e.message}`;
    return wireError('INTERNAL', trapped);
  }
  if (e instanceof Error) {
    const withCode = e as Error & { code?: unknown; extendedCode?: unknown };
    const out: WireError = {
      name: e.name,
      message: e.message,
      code: typeof withCode.code === 'string' ? withCode.code : 'INTERNAL',
    };
    if (typeof withCode.extendedCode === 'string') out.extendedCode = withCode.extendedCode;
    return out;
  }
  return wireError('INTERNAL', String(e));
}

/** How close to its quota the origin is when an OPFS write error is taken for a full quota. */
const QUOTA_MARGIN = 2 * 1024 * 1024;

/**
 * Firefox reports a full quota on an OPFS sync access handle as a short write of 0 bytes, not
 * as the spec's QuotaExceededError, so SQLite sees `SQLITE_IOERR_WRITE`. When the origin is then
 * within 2 MiB (or 2%) of its quota, the error is reported as the `SQLITE_FULL` it is.
 */
async function fullOrIo(error: WireError): Promise<WireError> {
  const estimate = await navigator.storage?.estimate?.().catch(() => null);
  if (!estimate?.quota || estimate.usage === undefined) return error;
  const left = estimate.quota - estimate.usage;
  if (left > Math.max(QUOTA_MARGIN, estimate.quota * 0.02)) return error;
  return {
    ...error,
    code: 'SQLITE_FULL',
    extendedCode: 'SQLITE_FULL',
    message: quotaExceededMessage(`an OPFS write failed with ${left} of ${estimate.quota} bytes left (${error.message})`),
  };
}

function post(message: WorkerMessage): void {
  scope.postMessage(message);
}

function replyLocal(reply: Reply): void {
  post({ kind: 'reply', reply });
}

interface Job {
  from: string;
  call: Call;
  reply(r: Reply): void;
  /** Internal work (the sync's frames) instead of a call. */
  task?: (db: WasmDatabase) => Promise<void>;
}

interface ActiveTx {
  from: string;
  tx: number;
  watch?: AbortController;
}

/** Runs calls on the owned database one at a time, honouring open transactions. */
class Executor {
  private queue: Job[] = [];
  private active: ActiveTx | null = null;
  private running = false;
  private stopped = false;
  private idle: (() => void) | null = null;
  /** The database's syncs (set right after construction). */
  sync: SyncManager | null = null;

  constructor(
    private readonly db: WasmDatabase,
    private readonly announce: (message: ChangeMessage) => void,
  ) {}

  /** Runs `task` when no tab's transaction is open, in order with the calls. */
  task(task: (db: WasmDatabase) => Promise<void>): void {
    if (this.stopped) return;
    this.queue.push({ from: workerId, call: { id: -1, op: 'schemaInfo' }, reply: () => {}, task });
    void this.pump();
  }

  submit(job: Job): void {
    if (this.stopped) {
      job.reply({ id: job.call.id, ok: false, error: wireError('CLOSED', 'the database is closing') });
      return;
    }
    this.queue.push(job);
    void this.pump();
  }

  /** A worker died: roll back its transaction and drop its queued calls. */
  clientGone(from: string): void {
    this.queue = this.queue.filter((j) => j.from !== from);
    if (this.active?.from === from) {
      this.endTx();
      try {
        if (!this.db.isAutocommit()) this.db.exec('ROLLBACK', undefined);
      } catch {
        // Nothing left to roll back.
      }
      void this.pump();
    }
  }

  /**
   * Stops taking calls and finishes the queued ones (an open transaction is rolled back first, its
   * remaining calls fail with `TX_ABORTED`), so nothing already accepted is dropped.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.running) await new Promise<void>((r) => (this.idle = r));
    if (this.active) {
      this.endTx();
      try {
        if (!this.db.isAutocommit()) this.db.exec('ROLLBACK', undefined);
      } catch {
        // Nothing left to roll back.
      }
    }
    for (let job = this.queue.shift(); job; job = this.queue.shift()) job.reply(await this.run(job));
  }

  private endTx(): void {
    this.active?.watch?.abort();
    this.active = null;
  }

  private next(): Job | undefined {
    for (let i = 0; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      const inTx = job.call.tx !== undefined && job.call.op !== 'begin';
      if (!this.active || inTx) {
        // Calls of an unknown transaction run straight away, to their error.
        this.queue.splice(i, 1);
        return job;
      }
    }
    return undefined;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Check `stopped` before taking a job: a job taken off the queue after stop() began would
      // be neither run here nor by stop(), and its caller would never get a reply.
      while (!this.stopped) {
        const job = this.next();
        if (!job) break;
        job.reply(await this.run(job));
      }
    } finally {
      this.running = false;
      this.idle?.();
      this.idle = null;
    }
  }

  private async run({ from, call, task }: Job): Promise<Reply> {
    const { id } = call;
    const db = this.db;
    if (trapped !== null) {
      return { id, ok: false, error: wireError('INTERNAL', `the database stopped after an internal error; reopen it (${trapped})`) };
    }
    if (task) {
      try {
        await task(db);
      } catch (e) {
        console.error('synqlite: sync task failed:', toWire(e).message, e);
      }
      return { id, ok: true, value: undefined };
    }
    let value: unknown;
    let failure: WireError | null = null;
    try {
      if (call.tx !== undefined && call.op !== 'begin') {
        if (this.active?.from !== from || this.active.tx !== call.tx) {
          throw Object.assign(new Error('the transaction is no longer active (it was rolled back, or the tab owning the database changed)'), { code: 'TX_ABORTED' });
        }
      }
      switch (call.op) {
        case 'begin':
          db.exec('BEGIN IMMEDIATE', undefined);
          this.active = { from, tx: call.tx ?? 0 };
          if (from !== workerId) this.active.watch = watchWorker(from, () => this.clientGone(from));
          break;
        case 'commit':
          db.exec('COMMIT', undefined);
          this.endTx();
          break;
        case 'rollback':
          if (!db.isAutocommit()) db.exec('ROLLBACK', undefined);
          this.endTx();
          break;
        case 'exec':
          value = db.exec(call.sql, call.params);
          break;
        case 'query':
          value = db.query(call.sql, call.params);
          break;
        case 'batch':
          value = db.batch(call.items);
          break;
        case 'queries':
          value = call.items.map(([sql, params]): QueryOutcome => {
            try {
              return { ok: true, value: db.query(sql, params) as RawRows };
            } catch (e) {
              return { ok: false, error: toWire(e) };
            }
          });
          break;
        case 'tables':
          value = db.tablesRead(call.sql);
          break;
        case 'asCrr':
          db.asCrr(call.table);
          break;
        case 'applySchema':
          value = db.applySchema(call.name, call.sql, call.mode);
          break;
        case 'applyMigrations':
          value = db.applyMigrations(call.files);
          break;
        case 'schemaInfo':
          value = db.schemaInfo();
          break;
        case 'changes':
          value = db.changes(call.since, call.excludeSite);
          break;
        case 'applyChanges':
          value = db.applyChanges(call.rows);
          break;
        case 'stats':
          // Wasm memory only grows: its size is the peak of the worker's wasm heap.
          value = { wasmMemoryBytes: wasmMemory?.buffer.byteLength ?? 0 };
          break;
        case 'syncStart':
          if (!this.sync) throw Object.assign(new Error('the database is closing'), { code: 'CLOSED' });
          value = this.sync.start(call.options);
          break;
        case 'syncStop':
          value = this.sync?.stop(call.url, call.room) ?? { status: 'stopped', applied: 0, total: 0 };
          break;
      }
    } catch (e) {
      failure = toWire(e);
      if (failure.extendedCode === 'SQLITE_IOERR_WRITE' && db.storage === 'opfs') failure = await fullOrIo(failure);
    }
    // SQLite may end a transaction by itself (ON CONFLICT ROLLBACK, a full disk).
    if (this.active && db.isAutocommit()) this.endTx();
    try {
      const durable = db.flush();
      if (durable) await durable;
      const txs = db.takeChanges() as WireTx[];
      if (txs.length > 0) {
        this.announce({ from, source: call.op === 'applyChanges' ? 'sync' : 'call', txs });
        // Committed local writes: upload them.
        this.sync?.localCommitted();
      }
    } catch (e) {
      // The writes were undone (IndexedDB refused them): nothing to announce.
      db.takeChanges();
      failure = toWire(e);
    }
    return failure ? { id, ok: false, error: failure } : { id, ok: true, value };
  }
}

/** Calls `gone` when the worker `id` dies (its lifetime lock becomes free). */
function watchWorker(id: string, gone: () => void): AbortController {
  const ac = new AbortController();
  navigator.locks
    .request(workerLockName(id), { signal: ac.signal }, () => {
      gone();
    })
    .catch(() => {
      // Aborted: the transaction ended normally.
    });
  return ac;
}

interface Forwarded {
  call: Call;
  acked: boolean;
  sentTo: string | null;
}

/** The state of this worker for its one database. */
class Node {
  private role: 'starting' | 'follower' | 'owner' | 'closing' | 'closed' = 'starting';
  private ownerId: string | null = null;
  private opened = false;
  private executor: Executor | null = null;
  private db: WasmDatabase | null = null;
  private siteId: Uint8Array | null = null;
  private readonly forwarded = new Map<number, Forwarded>();
  private readonly shared: BroadcastChannel;
  private readonly direct: BroadcastChannel;
  /** `BroadcastChannel(<name>)`: change announcements to every tab's client. */
  private readonly changes: BroadcastChannel;
  private readonly directTo = new Map<string, BroadcastChannel>();
  private readonly lockAbort = new AbortController();
  private releaseOwner: (() => void) | null = null;
  private releaseWorker: (() => void) | null = null;
  private openTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: OpenOptionsWire) {
    this.shared = new BroadcastChannel(channelName(options.name));
    this.shared.onmessage = (e: MessageEvent<SharedMessage>) => this.onShared(e.data);
    this.direct = new BroadcastChannel(directChannelName(options.name, workerId));
    this.direct.onmessage = (e: MessageEvent<DirectMessage>) => this.onDirect(e.data);
    this.changes = new BroadcastChannel(options.name);
  }

  async start(): Promise<void> {
    // Hold our lifetime lock before anyone can learn our id.
    await new Promise<void>((held) => {
      void navigator.locks.request(workerLockName(workerId), () => {
        held();
        return new Promise<void>((release) => (this.releaseWorker = release));
      });
    });
    navigator.locks
      .request(ownerLockName(this.options.name), { signal: this.lockAbort.signal }, async () => {
        if (this.role === 'closing' || this.role === 'closed') return;
        // The lock is ours: the open now succeeds or fails on its own (compiling the wasm can
        // take seconds in a busy WebKit), so the "no tab answered" timeout no longer applies.
        clearTimeout(this.openTimer);
        if (!(await this.becomeOwner())) return;
        await new Promise<void>((release) => (this.releaseOwner = release));
      })
      .catch(() => {
        // Aborted by close() while waiting.
      });
    this.shared.postMessage({ t: 'who' } satisfies SharedMessage);
    this.openTimer = setTimeout(() => {
      if (!this.opened) {
        this.failOpen(wireError('STORAGE_UNAVAILABLE', `no tab answered for database "${this.options.name}" within ${OPEN_TIMEOUT_MS} ms and its lock stayed taken`));
      }
    }, OPEN_TIMEOUT_MS);
  }

  private failOpen(error: WireError): void {
    clearTimeout(this.openTimer);
    if (this.opened) return;
    this.opened = true;
    post({ kind: 'open-failed', error });
  }

  private markOpened(storage: StorageKind, owner: boolean, siteId: Uint8Array): void {
    if (this.opened) return;
    this.opened = true;
    clearTimeout(this.openTimer);
    post({ kind: 'opened', storage, owner, worker: workerId, siteId });
  }

  private async becomeOwner(): Promise<boolean> {
    this.role = 'owner';
    let db: WasmDatabase;
    try {
      wasmMemory = (await init()).memory;
      db = await WasmDatabase.open(this.options.name, this.options.storage);
    } catch (e) {
      const error = toWire(e);
      this.role = 'closed';
      this.failOpen(error);
      for (const [id] of this.forwarded) replyLocal({ id, ok: false, error });
      this.forwarded.clear();
      return false;
    }
    if (this.role !== 'owner') {
      // close() arrived while opening.
      db.close();
      return false;
    }
    this.db = db;
    const executor = new Executor(db, (m) => this.changes.postMessage(m));
    executor.sync = new SyncManager(this.options.name, (t) => executor.task(t), (m) => this.changes.postMessage(m));
    this.executor = executor;
    this.ownerId = workerId;
    const storage = db.storage as StorageKind;
    this.siteId = db.siteId;
    this.shared.postMessage({ t: 'owner', owner: workerId, storage, siteId: this.siteId } satisfies SharedMessage);
    this.markOpened(storage, true, this.siteId);
    // Our own calls that were on their way to the previous owner.
    for (const [id, f] of this.forwarded) {
      if (f.acked) replyLocal({ id, ok: false, error: ownerChanged() });
      else this.executor.submit({ from: workerId, call: f.call, reply: replyLocal });
    }
    this.forwarded.clear();
    return true;
  }

  call(call: Call): void {
    if (this.role === 'closing' || this.role === 'closed') {
      replyLocal({ id: call.id, ok: false, error: wireError('CLOSED', 'the database is closed') });
    } else if (this.role === 'owner' && this.executor) {
      this.executor.submit({ from: workerId, call, reply: replyLocal });
    } else {
      const f: Forwarded = { call, acked: false, sentTo: null };
      this.forwarded.set(call.id, f);
      if (this.ownerId && this.ownerId !== workerId) this.send(f, this.ownerId);
    }
  }

  private send(f: Forwarded, owner: string): void {
    f.sentTo = owner;
    f.acked = false;
    this.shared.postMessage({ t: 'req', to: owner, from: workerId, call: f.call } satisfies SharedMessage);
  }

  private onShared(msg: SharedMessage): void {
    switch (msg.t) {
      case 'who':
        if (this.role === 'owner' && this.db && this.siteId) {
          this.shared.postMessage({ t: 'owner', owner: workerId, storage: this.db.storage as StorageKind, siteId: this.siteId } satisfies SharedMessage);
        }
        break;
      case 'owner': {
        if (msg.owner === workerId || this.role === 'owner' || this.role === 'closed') break;
        this.ownerId = msg.owner;
        if (this.role === 'starting') this.role = 'follower';
        this.markOpened(msg.storage, false, msg.siteId);
        for (const [id, f] of this.forwarded) {
          if (f.sentTo === msg.owner) continue;
          if (f.acked) {
            this.forwarded.delete(id);
            replyLocal({ id, ok: false, error: ownerChanged() });
          } else {
            this.send(f, msg.owner);
          }
        }
        break;
      }
      case 'req':
        if (msg.to !== workerId || this.role !== 'owner' || !this.executor) break;
        this.replyTo(msg.from, { t: 'ack', id: msg.call.id });
        this.executor.submit({
          from: msg.from,
          call: msg.call,
          reply: (reply) => this.replyTo(msg.from, { t: 'res', reply }),
        });
        break;
    }
  }

  private onDirect(msg: DirectMessage): void {
    switch (msg.t) {
      case 'ack': {
        const f = this.forwarded.get(msg.id);
        if (f) f.acked = true;
        break;
      }
      case 'res':
        if (this.forwarded.delete(msg.reply.id)) replyLocal(msg.reply);
        break;
    }
  }

  private replyTo(worker: string, msg: DirectMessage): void {
    let ch = this.directTo.get(worker);
    if (!ch) {
      ch = new BroadcastChannel(directChannelName(this.options.name, worker));
      this.directTo.set(worker, ch);
    }
    ch.postMessage(msg);
  }

  async close(): Promise<void> {
    if (this.role === 'closing' || this.role === 'closed') return;
    const wasOwner = this.role === 'owner';
    this.role = 'closing';
    this.lockAbort.abort();
    if (wasOwner && this.executor && this.db) {
      this.executor.sync?.close();
      this.executor.sync = null;
      await this.executor.stop();
      try {
        this.db.close();
      } catch {
        // Closing rolls back whatever is open; nothing more to do.
      }
    }
    for (const [id] of this.forwarded) {
      replyLocal({ id, ok: false, error: wireError('CLOSED', 'the database was closed') });
    }
    this.forwarded.clear();
    this.releaseOwner?.();
    this.releaseWorker?.();
    this.shared.close();
    this.direct.close();
    this.changes.close();
    for (const ch of this.directTo.values()) ch.close();
    this.role = 'closed';
  }
}

function ownerChanged(): WireError {
  return wireError(
    'OWNER_CHANGED',
    'the tab that owned the database closed while this call was running there; it may or may not have been applied, retry it if that is safe',
  );
}

let node: Node | null = null;

scope.addEventListener('message', (event: MessageEvent<ClientMessage>) => {
  const msg = event.data;
  switch (msg.kind) {
    case 'open':
      if (node) {
        post({ kind: 'open-failed', error: wireError('INVALID_ARGUMENT', 'this worker already serves a database; use one worker per openDatabase()') });
        return;
      }
      node = new Node(msg.options);
      void node.start();
      break;
    case 'call':
      if (!node) replyLocal({ id: msg.call.id, ok: false, error: wireError('CLOSED', 'the database is not open') });
      else node.call(msg.call);
      break;
    case 'close':
      void (node ? node.close() : Promise.resolve()).then(() => post({ kind: 'closed' }));
      break;
  }
});
