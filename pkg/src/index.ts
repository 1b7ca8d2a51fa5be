/**
 * synqlite: local-first SQLite for web apps.
 *
 * ```ts
 * import { openDatabase } from 'synqlite';
 * const db = await openDatabase({ name: 'media' });
 * await db.exec('CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY, title TEXT)');
 * await db.exec('INSERT INTO songs (title) VALUES (?)', ['Intro']);
 * const rows = await db.query<{ id: number; title: string }>('SELECT * FROM songs');
 * ```
 * @packageDocumentation
 */
import { coalesced } from './coalesce.js';
import { SynqliteError } from './errors.js';
import { ChangeHub, type ChangeListener, type Unsubscribe } from './reactivity.js';
import { Sync, type SyncOptions } from './sync.js';
import type {
  Call,
  Change,
  ChangeTuple,
  ClientMessage,
  ExecResult,
  Op,
  QueryOutcome,
  RawRows,
  Reply,
  SqlParams,
  SqlValue,
  StorageKind,
  WorkerMessage,
} from './protocol.js';
import { syncKey } from './protocol.js';

export { SynqliteError } from './errors.js';
export type { Change, ChangeTuple, ExecResult, SqlParams, SqlValue, StorageKind } from './protocol.js';
export { storage } from './storage.js';
export { Sync } from './sync.js';
export type { SyncOptions, SyncProgress, SyncState, SyncStatus, TokenFunction } from './sync.js';
export type { ChangeListener, ChangeOp, ChangeSource, RowChange, Unsubscribe } from './reactivity.js';
export type { PersistenceState, StorageEstimate } from './storage.js';

/** A result row: column name to value. */
export type Row = Record<string, SqlValue>;

/** What {@link Database.schema} reports. */
export interface SchemaInfo {
  name: string | null;
  version: number | bigint | null;
  migrations: { name: string; appliedAt: string }[];
}

/** One entry of {@link Database.batch}: SQL and its parameters. */
export type BatchItem = readonly [sql: string, params?: SqlParams];

/** Options of {@link openDatabase}. */
export interface OpenOptions {
  /** Database name: the OPFS directory / IndexedDB name and the cross-tab channel name.
   * 1-64 letters, digits, `_`, `-` or `.`. */
  name: string;
  /** Where to keep the data. `auto` (default): OPFS, else IndexedDB, else memory. */
  storage?: 'auto' | StorageKind;
  /**
   * A declarative, idempotent schema (`CREATE TABLE IF NOT EXISTS ...`), versioned by the cryb64
   * hash of its text. A new database gets it applied; the same text again is a no-op; a changed
   * text rejects with `SCHEMA_MISMATCH` unless `migrate: 'auto'`; another name rejects with
   * `SCHEMA_NAME_MISMATCH` unless `migrate: 'reset'`.
   */
  schema?: { name: string; sql: string };
  /** How to handle a stored schema that differs from `schema` (default `'strict'`: reject). */
  migrate?: 'strict' | 'auto' | 'reset';
  /**
   * Ordered migration files named `<unix-ts>_<name>.sql`; pending ones are applied in timestamp
   * order, each in its own transaction. An applied file whose text changed rejects with
   * `MIGRATION_CHANGED`; a failing file with `MIGRATION_FAILED` naming it.
   */
  migrations?: ReadonlyArray<{ name: string; sql: string }>;
  /** A worker running `synqlite/worker`. Default: a new one from the package. One worker serves
   * one database and is terminated by `close()`. */
  worker?: Worker;
}

/** The statements available inside {@link Database.tx}, and on the database itself. */
export interface Queryable {
  /** Runs one or more statements; rows are discarded. */
  exec(sql: string, params?: SqlParams): Promise<ExecResult>;
  /** Runs a query and returns its rows as objects. */
  query<T extends object = Row>(sql: string, params?: SqlParams): Promise<T[]>;
  /** Runs the statements atomically: all apply or none does. */
  batch(items: readonly BatchItem[]): Promise<ExecResult[]>;
}

/** The handle passed to the callback of {@link Database.tx}. */
export type Transaction = Queryable;

type Pending = { resolve(value: unknown): void; reject(error: Error): void };

function report(e: unknown): void {
  if (typeof reportError === 'function') reportError(e);
  else console.error(e);
}

/** Least time between two re-runs of a live query caused by changes the sync merged. */
const SYNC_RERUN_MS = 100;

interface LiveRead {
  sql: string;
  params: SqlParams | undefined;
  resolve: (raw: RawRows) => void;
  reject: (e: unknown) => void;
}

function rowsFromRaw<T>(raw: RawRows): T[] {
  const { columns, values } = raw;
  const n = columns.length;
  const out: T[] = [];
  if (n === 0) return out;
  for (let i = 0; i < values.length; i += n) {
    const row: Record<string, SqlValue> = {};
    for (let c = 0; c < n; c++) row[columns[c]!] = values[i + c]!;
    out.push(row as T);
  }
  return out;
}

/**
 * An open database. Create it with {@link openDatabase}.
 *
 * All methods return promises; every rejection is a {@link SynqliteError} with a stable `code`.
 * Calls run in order, one at a time, across every tab that has the database open.
 */
export class Database implements Queryable {
  /** The database name. */
  readonly name: string;
  /** The storage actually in use (decided by the tab that owns the database). */
  readonly storage: StorageKind;
  /** This database's persistent 16-byte CRDT site id (the same in every tab). */
  readonly siteId: Uint8Array;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextTx = 1;
  /** Live-query reads waiting for the end of this turn (see `liveRead`). */
  private reads: LiveRead[] = [];
  private closedError: SynqliteError | null = null;
  private closing: Promise<void> | null = null;
  private readonly syncs = new Map<string, Sync>();
  private closeAck: (() => void) | null = null;
  private readonly hub: ChangeHub;

  /** @internal */
  constructor(name: string, storage: StorageKind, worker: Worker, workerId: string, siteId: Uint8Array) {
    this.name = name;
    this.storage = storage;
    this.siteId = siteId;
    this.worker = worker;
    this.hub = new ChangeHub(name, workerId);
    worker.addEventListener('message', (e: MessageEvent<WorkerMessage>) => this.onMessage(e.data));
    worker.addEventListener('error', (e: ErrorEvent) => {
      this.fail(new SynqliteError('WORKER_FAILED', `the synqlite worker failed: ${e.message || 'unknown error'}`));
    });
  }

  private onMessage(msg: WorkerMessage): void {
    if (msg.kind === 'reply') this.settle(msg.reply);
    else if (msg.kind === 'closed') this.closeAck?.();
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.value);
    else p.reject(SynqliteError.fromWire(reply.error));
  }

  private fail(error: SynqliteError): void {
    if (!this.closedError) this.hub.close();
    this.closedError ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  /** @internal */
  call(op: Op, tx?: number): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const call: Call = tx === undefined ? { ...op, id } : { ...op, id, tx };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ kind: 'call', call } satisfies ClientMessage);
      } catch (e) {
        this.pending.delete(id);
        reject(new SynqliteError('BAD_PARAMS', `parameters cannot be sent to the worker: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  /**
   * Runs one or more statements (rows are discarded).
   *
   * ```ts
   * await db.exec('INSERT INTO songs (title, art) VALUES (?, ?)', ['Intro', new Uint8Array([1, 2])]);
   * await db.exec('UPDATE songs SET title = :title WHERE id = :id', { id: 1, title: 'Outro' });
   * ```
   */
  exec(sql: string, params?: SqlParams): Promise<ExecResult> {
    return this.call(params === undefined ? { op: 'exec', sql } : { op: 'exec', sql, params }) as Promise<ExecResult>;
  }

  /**
   * Runs a query and returns rows as objects. INTEGER values beyond ±2^53 come back as `bigint`,
   * BLOBs as `Uint8Array`.
   *
   * ```ts
   * const rows = await db.query<{ id: number; title: string }>('SELECT id, title FROM songs WHERE id = ?', [1]);
   * ```
   */
  async query<T extends object = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    const raw = (await this.call(params === undefined ? { op: 'query', sql } : { op: 'query', sql, params })) as RawRows;
    return rowsFromRaw<T>(raw);
  }

  /**
   * Runs the statements in one transaction: either all apply or none does. The error of a failing
   * entry says which one (`batch statement 2: ...`).
   *
   * ```ts
   * await db.batch([
   *   ['INSERT INTO playlists (id, name) VALUES (?, ?)', [1, 'Road trip']],
   *   ['INSERT INTO playlist_items (playlist_id, song_id) VALUES (?, ?)', [1, 7]],
   * ]);
   * ```
   */
  batch(items: readonly BatchItem[]): Promise<ExecResult[]> {
    return this.call({ op: 'batch', items }) as Promise<ExecResult[]>;
  }

  /**
   * Runs `fn` inside a transaction. It commits when `fn` resolves and rolls back when it throws
   * (the error is re-thrown). Use the `tx` handle inside: other calls, from this tab or others,
   * wait until the transaction ends, so awaiting `db.exec` inside `fn` would wait forever.
   *
   * ```ts
   * await db.tx(async (tx) => {
   *   const [song] = await tx.query<{ id: number }>('SELECT id FROM songs WHERE title = ?', ['Intro']);
   *   if (!song) throw new Error('missing');          // rolls back
   *   await tx.exec('DELETE FROM songs WHERE id = ?', [song.id]);
   * });
   * ```
   */
  async tx<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const txId = this.nextTx++;
    let finished = false;
    const guard = <R>(op: Op): Promise<R> =>
      finished
        ? Promise.reject(new SynqliteError('TX_FINISHED', 'this transaction has already committed or rolled back'))
        : (this.call(op, txId) as Promise<R>);
    const handle: Transaction = {
      exec: (sql, params) => guard<ExecResult>(params === undefined ? { op: 'exec', sql } : { op: 'exec', sql, params }),
      query: async <R extends object = Row>(sql: string, params?: SqlParams) =>
        rowsFromRaw<R>(await guard<RawRows>(params === undefined ? { op: 'query', sql } : { op: 'query', sql, params })),
      batch: (items) => guard<ExecResult[]>({ op: 'batch', items }),
    };
    await this.call({ op: 'begin' }, txId);
    let result: T;
    try {
      result = await fn(handle);
    } catch (e) {
      finished = true;
      await this.call({ op: 'rollback' }, txId).catch(() => undefined);
      throw e;
    }
    finished = true;
    try {
      await this.call({ op: 'commit' }, txId);
    } catch (e) {
      await this.call({ op: 'rollback' }, txId).catch(() => undefined);
      throw e;
    }
    return result;
  }

  /**
   * The applied schema: declarative name and version (cryb64), and the applied migration files.
   *
   * ```ts
   * const { name, version, migrations } = await db.schema();
   * ```
   */
  schema(): Promise<SchemaInfo> {
    return this.call({ op: 'schemaInfo' }) as Promise<SchemaInfo>;
  }

  /**
   * Makes `table` replicated (cr-sqlite's `crsql_as_crr`): from now on every write to it is
   * recorded as change rows, and existing rows are backfilled. Idempotent. Tables cr-sqlite cannot
   * replicate (no primary key, nullable primary key, AUTOINCREMENT, UNIQUE constraints besides
   * the primary key, foreign keys) are rejected with `CRR_UNSUPPORTED` and the reason.
   * `SELECT crsql_as_crr('songs')` in SQL does the same.
   *
   * ```ts
   * await db.exec('CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT)');
   * await db.asCrr('songs');
   * ```
   */
  async asCrr(table: string): Promise<void> {
    await this.call({ op: 'asCrr', table });
  }

  /**
   * Change rows (cr-sqlite's `crsql_changes` shape) with `db_version > since` (default 0), in
   * `(db_version, seq)` order, optionally without those made by `excludeSite`.
   *
   * ```ts
   * const rows = await db.changes({ since: lastSeen, excludeSite: peerSiteId });
   * ```
   */
  changes(options: { since?: number | bigint; excludeSite?: Uint8Array } = {}): Promise<Change[]> {
    const op: Op = options.excludeSite
      ? { op: 'changes', since: options.since ?? 0, excludeSite: options.excludeSite }
      : { op: 'changes', since: options.since ?? 0 };
    return this.call(op) as Promise<Change[]>;
  }

  /**
   * Merges change rows from another replica (objects or 9-value tuples) with cr-sqlite's rules,
   * in one transaction. Merged rows are not recorded as local writes, fire change listeners with
   * source `'sync'`, and are returned by later `changes()` calls with their original site id.
   * Applying the same rows again, or in another order, gives the same state.
   *
   * ```ts
   * const { applied } = await db.applyChanges(await peer.changes({ since: 0 }));
   * ```
   */
  applyChanges(rows: ReadonlyArray<Change | ChangeTuple>): Promise<{ received: number; applied: number }> {
    return this.call({ op: 'applyChanges', rows }) as Promise<{ received: number; applied: number }>;
  }

  /**
   * Calls `listener` after every committed transaction that changed rows, in any tab, with the
   * changed rows and who changed them (`'local'`: this tab, `'tab'`: another tab, `'sync'`:
   * merged remote changes). Never for rolled-back transactions or CRDT metadata.
   *
   * ```ts
   * const off = db.onAny((changes, source) => console.log(source, changes));
   * off();
   * ```
   */
  onAny(listener: ChangeListener): Unsubscribe {
    return this.hub.onAny(listener);
  }

  /**
   * Like {@link onAny}, for the given tables only; the listener gets only their rows.
   *
   * ```ts
   * db.onRange(['songs', 'playlists'], (changes) => refresh(changes.map((c) => c.table)));
   * ```
   */
  onRange(tables: readonly string[], listener: ChangeListener): Unsubscribe {
    return this.hub.onRange(tables, listener);
  }

  /**
   * Like {@link onAny}, for one row (by rowid; for an `INTEGER PRIMARY KEY` table, the key).
   *
   * ```ts
   * db.onPoint('songs', 42, ([change]) => change.op === 'delete' ? close() : reload());
   * ```
   */
  onPoint(table: string, rowid: number | bigint, listener: ChangeListener): Unsubscribe {
    return this.hub.onPoint(table, rowid, listener);
  }

  /**
   * Runs `sql` now and again whenever a table it reads changes (the tables are found by SQLite,
   * so views, joins and subqueries count), calling `onRows` with the rows each time. Re-runs are
   * coalesced: a burst of commits causes at most one query in flight plus one after it; changes
   * merged by the sync re-run it at most every 100 ms (always once after the last of them).
   *
   * ```ts
   * const stop = db.liveQuery<{ title: string }>('SELECT title FROM songs ORDER BY title', [], (rows) => render(rows));
   * stop();
   * ```
   */
  liveQuery<T extends object = Row>(
    sql: string,
    params: SqlParams | undefined,
    onRows: (rows: T[]) => void,
    onError: (error: SynqliteError) => void = report,
  ): Unsubscribe {
    let tables: Set<string> | null = null;
    let stopped = false;
    const run = coalesced(
      async () => {
        try {
          const rows = rowsFromRaw<T>(await this.liveRead(sql, params));
          if (!stopped) onRows(rows);
        } catch (e) {
          if (!stopped) onError(e instanceof SynqliteError ? e : new SynqliteError('INTERNAL', String(e)));
        }
      },
      () => stopped,
    );
    // Changes merged by the sync come in bursts of commits (an initial sync commits every few
    // ms): re-runs they cause start at most every SYNC_RERUN_MS, the last one after the burst.
    let lastRun = -Infinity;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const runNow = () => {
      clearTimeout(timer);
      timer = undefined;
      lastRun = performance.now();
      run();
    };
    const off = this.hub.onTables((changed, source) => {
      // Until the read set is known, any change may matter.
      if (tables && !changed.some((t) => tables!.has(t))) return;
      if (source !== 'sync') return runNow();
      if (timer !== undefined) return;
      const wait = lastRun + SYNC_RERUN_MS - performance.now();
      if (wait <= 0) runNow();
      else timer = setTimeout(runNow, wait);
    });
    (this.call({ op: 'tables', sql }) as Promise<string[]>).then(
      (t) => {
        tables = new Set(t);
      },
      () => {
        // The query itself reports the error.
      },
    );
    runNow();
    return () => {
      stopped = true;
      clearTimeout(timer);
      off();
    };
  }

  /**
   * A live query's read. The reads asked for in one turn of the event loop (the live queries one
   * change message re-runs) reach the worker as one `queries` call, each with its own outcome.
   */
  private liveRead(sql: string, params: SqlParams | undefined): Promise<RawRows> {
    return new Promise((resolve, reject) => {
      this.reads.push({ sql, params, resolve, reject });
      if (this.reads.length === 1) queueMicrotask(() => this.flushReads());
    });
  }

  private flushReads(): void {
    const reads = this.reads;
    this.reads = [];
    const one = (r: LiveRead) =>
      (this.call(r.params === undefined ? { op: 'query', sql: r.sql } : { op: 'query', sql: r.sql, params: r.params }) as Promise<RawRows>).then(
        r.resolve,
        r.reject,
      );
    if (reads.length === 1) return void one(reads[0]!);
    const items = reads.map((r) => (r.params === undefined ? ([r.sql] as const) : ([r.sql, r.params] as const)));
    (this.call({ op: 'queries', items }) as Promise<QueryOutcome[]>).then(
      (outcomes) =>
        outcomes.forEach((o, i) => {
          const r = reads[i]!;
          if (o.ok) r.resolve(o.value);
          else r.reject(SynqliteError.fromWire(o.error));
        }),
      (e: unknown) => {
        // Parameters that cannot be posted fail the whole call: only their own read may fail.
        if (e instanceof SynqliteError && e.code === 'BAD_PARAMS') for (const r of reads) void one(r);
        else for (const r of reads) r.reject(e);
      },
    );
  }

  /**
   * Starts syncing this database with `room` on a synqlite server (or returns the running sync
   * of this tab for that room). The sync runs in the tab that owns the database and survives
   * that tab closing: another tab with a handle takes it over. Inbound changes arrive in chunks
   * of `chunkSize` change rows (default 4096) and are applied in transactions of whole chunks
   * together with the sync cursor, and
   * fire change listeners with source `'sync'`; local writes are uploaded as they commit,
   * including those made offline.
   *
   * `token` is a string or a function returning a promise of one; a function is asked before
   * every connect and once more when the server refuses a token (see {@link SyncOptions.token}).
   * Calling `db.sync()` again for the same url and room returns the running handle; with another
   * token (string or function) or chunk size, that handle reconnects with the new options.
   *
   * ```js
   * const sync = db.sync({
   *   url: 'ws://127.0.0.1:8080/sync',
   *   room: 'demo',
   *   token: () => fetch('/api/sync-token').then((r) => r.text()),   // or a token string
   * });
   * sync.onProgress(({ applied, total }) => console.log(`${applied}/${total}`));
   * sync.onStatus((status, { error }) => console.log(status, error?.code)); // ... 'up-to-date'
   * ```
   */
  sync(options: SyncOptions): Sync {
    if (typeof options?.url !== 'string' || typeof options.room !== 'string' || options.room === '') {
      throw new SynqliteError('INVALID_ARGUMENT', 'db.sync() needs { url, room }');
    }
    const { token } = options;
    if (token !== undefined && typeof token !== 'string' && typeof token !== 'function') {
      throw new SynqliteError('INVALID_ARGUMENT', `db.sync() token must be a string or a function returning a Promise<string>, not ${token === null ? 'null' : typeof token}`);
    }
    const key = syncKey(options.url, options.room);
    const running = this.syncs.get(key);
    if (running) {
      // Same options: join; another token (or function): reconnect with it.
      if (!running.sameOptions(options)) running.restart(options);
      return running;
    }
    const s = new Sync(this.name, options, (op) => this.call(op), () => this.syncs.delete(key));
    this.syncs.set(key, s);
    void s.start();
    return s;
  }

  /**
   * Closes the database in this tab and terminates its worker. If this tab owned the database,
   * another open tab takes over. Pending and later calls reject with `CLOSED`. This tab's `Sync`
   * handles end with status `'stopped'`; a sync that other tabs also started goes on there.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    for (const s of this.syncs.values()) s.detach();
    this.syncs.clear();
    this.closing = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.fail(new SynqliteError('CLOSED', 'the database is closed'));
        this.worker.terminate();
        resolve();
      };
      // Terminating releases everything anyway; don't wait forever for a stuck worker.
      const timer = setTimeout(done, 5_000);
      this.closeAck = done;
      this.worker.postMessage({ kind: 'close' } satisfies ClientMessage);
    });
    return this.closing;
  }
}

/**
 * Opens (creating if needed) a database in a dedicated worker.
 *
 * Several tabs may open the same database: one tab's worker owns it and the others forward their
 * calls there; if that tab closes, another takes over.
 *
 * ```ts
 * const db = await openDatabase({ name: 'media' });                  // OPFS when available
 * const test = await openDatabase({ name: 'scratch', storage: 'memory' });
 * console.log(db.storage);                                          // 'opfs' | 'idb' | 'memory'
 * ```
 */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  const { name } = options;
  const storage = options.storage ?? 'auto';
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new SynqliteError('INVALID_ARGUMENT', `invalid database name ${JSON.stringify(name)}: use 1-64 letters, digits, '_', '-' or '.', not starting with '.'`);
  }
  if (options.migrate !== undefined && !['strict', 'auto', 'reset'].includes(options.migrate)) {
    throw new SynqliteError('INVALID_ARGUMENT', `unknown migrate ${JSON.stringify(options.migrate)}: use 'strict', 'auto' or 'reset'`);
  }
  if (!['auto', 'opfs', 'idb', 'memory'].includes(storage)) {
    throw new SynqliteError('INVALID_ARGUMENT', `unknown storage ${JSON.stringify(storage)}: use 'auto', 'opfs', 'idb' or 'memory'`);
  }
  const worker = options.worker ?? new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: `synqlite:${name}` });
  const opened = await new Promise<{ storage: StorageKind; worker: string; siteId: Uint8Array }>((resolve, reject) => {
    const onMessage = (e: MessageEvent<WorkerMessage>) => {
      const msg = e.data;
      if (msg.kind === 'opened') {
        cleanup();
        resolve(msg);
      } else if (msg.kind === 'open-failed') {
        cleanup();
        worker.terminate();
        reject(SynqliteError.fromWire(msg.error));
      }
    };
    const onError = (e: ErrorEvent) => {
      cleanup();
      worker.terminate();
      reject(new SynqliteError('WORKER_FAILED', `the synqlite worker failed to start: ${e.message || 'unknown error (is the worker script served?)'}`));
    };
    const cleanup = () => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', onError);
    worker.postMessage({ kind: 'open', options: { name, storage } } satisfies ClientMessage);
  });
  const db = new Database(name, opened.storage, worker, opened.worker, opened.siteId);
  try {
    if (options.schema) {
      await db.call({ op: 'applySchema', name: options.schema.name, sql: options.schema.sql, mode: options.migrate ?? 'strict' });
    }
    if (options.migrations) await db.call({ op: 'applyMigrations', files: options.migrations });
  } catch (e) {
    await db.close();
    throw e;
  }
  return db;
}
