/**
 * Messages between the main-thread client, its worker, and the worker that owns the database.
 *
 * Each tab's client talks only to its own worker (`ClientMessage`/`WorkerMessage`). Workers elect
 * one owner per database name with a Web Lock; the others forward calls to it over
 * BroadcastChannels (`SharedMessage`, `DirectMessage`): requests on the shared channel addressed
 * to the current owner, replies on a per-worker channel.
 */

/** A SQLite value as it crosses postMessage. */
export type SqlValue = null | number | bigint | string | Uint8Array;
/** Parameters: positional array or named object. */
export type SqlParams = readonly unknown[] | Readonly<Record<string, unknown>>;

/** Storage backends. */
export type StorageKind = 'opfs' | 'idb' | 'memory';

/** What a write did. */
export interface ExecResult {
  /** Rows inserted, updated or deleted directly by the statement(s). */
  changes: number;
  /** `last_insert_rowid()` after the call (a bigint beyond 2^53). */
  lastInsertRowid: number | bigint;
}

/**
 * One change row: the columns of cr-sqlite's `crsql_changes`.
 *
 * `val` keeps SQLite's types apart, because merge tie-breaks rank INTEGER above REAL. Out of
 * `changes()`: an INTEGER is a `bigint`, a REAL a `number`, except a REAL whose value is an int32
 * (2.0, -7.0), which is a one-element `Float64Array`; TEXT a string, BLOB a `Uint8Array`. Into
 * `applyChanges`, a `number` binds as crsqlite-wasm binds it: an int32 as INTEGER, any other
 * number as REAL (so rows read from crsqlite-wasm land as they do on its own peers); a `bigint`
 * is an INTEGER, a one-element `Float64Array` a REAL.
 */
export interface Change {
  table: string;
  /** Packed primary key (cr-sqlite's format). */
  pk: Uint8Array;
  /** Column name, or `'-1'` for the row's sentinel (insert / delete / resurrect). */
  cid: string;
  val: null | bigint | number | Float64Array | string | Uint8Array;
  col_version: number | bigint;
  db_version: number | bigint;
  /** 16 bytes. */
  site_id: Uint8Array;
  /** Causal length: odd = row alive, even = deleted. */
  cl: number | bigint;
  seq: number | bigint;
}

/** The same nine values as an array, in column order (vlcn ws-client's wire shape). */
export type ChangeTuple = readonly [
  table: string,
  pk: Uint8Array,
  cid: string,
  val: Change['val'],
  col_version: number | bigint,
  db_version: number | bigint,
  site_id: Uint8Array,
  cl: number | bigint,
  seq: number | bigint,
];

/** Raw query result as it comes from the worker. */
export interface RawRows extends ExecResult {
  columns: string[];
  values: SqlValue[];
}

/** One read of a `queries` call: its rows, or its own error (the others are unaffected). */
export type QueryOutcome = { ok: true; value: RawRows } | { ok: false; error: WireError };

export type Op =
  | { op: 'exec'; sql: string; params?: SqlParams }
  | { op: 'query'; sql: string; params?: SqlParams }
  | { op: 'batch'; items: ReadonlyArray<readonly [string, SqlParams?]> }
  /** Independent reads in one round trip (live queries re-run by one change): one outcome each. */
  | { op: 'queries'; items: ReadonlyArray<readonly [string, SqlParams?]> }
  | { op: 'tables'; sql: string }
  | { op: 'asCrr'; table: string }
  | { op: 'applySchema'; name: string; sql: string; mode: 'strict' | 'auto' | 'reset' }
  | { op: 'applyMigrations'; files: ReadonlyArray<{ name: string; sql: string }> }
  | { op: 'schemaInfo' }
  | { op: 'changes'; since: number | bigint; excludeSite?: Uint8Array }
  | { op: 'applyChanges'; rows: ReadonlyArray<Change | ChangeTuple> }
  | { op: 'stats' }
  | { op: 'syncStart'; options: SyncOptionsWire }
  | { op: 'syncStop'; url: string; room: string }
  | { op: 'begin' }
  | { op: 'commit' }
  | { op: 'rollback' };

/** `db.sync()` options as they cross postMessage. */
export interface SyncOptionsWire {
  url: string;
  room: string;
  /** A static token. */
  token?: string;
  /**
   * A token function instead: the id of the tab's handle holding it (functions cannot be
   * posted). The owner asks for tokens with `token?` messages on the sync channel; the handle
   * holds the Web Lock {@link tokenLockName} while it can answer.
   */
  tokenSource?: string;
  chunkSize?: number;
  /** The tab's handle was asked again with another token: reconnect with these options now. */
  restart?: boolean;
}

/** Where a sync stands. */
export type SyncStatus = 'connecting' | 'syncing' | 'up-to-date' | 'offline' | 'error' | 'stopped';

/** A sync's state, as the owner broadcasts it. */
export interface SyncState {
  status: SyncStatus;
  /** Set when `status` is `'error'` (and for the last failure while `'offline'`). */
  error?: { code: string; message: string };
  /** Change rows of the current initial sync applied so far. */
  applied: number;
  /** Change rows the server announced for the current initial sync. */
  total: number;
}

/** Between the owner worker and every tab on `synqlite:<name>:sync`. */
export type SyncMessage =
  | ({ t: 'state'; key: string } & SyncState)
  /** A new owner asks every tab that started a sync to start it again there. */
  | { t: 'restart' }
  /** Owner -> the tab whose handle is `source`: call your token function (request `req`). */
  | { t: 'token?'; key: string; source: string; req: string }
  /** That tab -> owner: the token, or why there is none. */
  | { t: 'token'; req: string; token?: string; error?: string };

export const syncChannelName = (db: string): string => `synqlite:${db}:sync`;
export const syncKey = (url: string, room: string): string => `${room}@${url}`;
/** Held by a tab's sync handle while its token function can be asked (released when it stops or the tab dies). */
export const tokenLockName = (source: string): string => `synqlite:token:${source}`;

/** A call, optionally inside the transaction `tx` of its sender. */
export type Call = Op & { id: number; tx?: number };

/** An error as it crosses postMessage (Error objects lose their `code` when cloned). */
export interface WireError {
  name: string;
  message: string;
  code: string;
  extendedCode?: string;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

export interface OpenOptionsWire {
  name: string;
  storage: 'auto' | StorageKind;
}

/** Main thread -> own worker. */
export type ClientMessage =
  | { kind: 'open'; options: OpenOptionsWire }
  | { kind: 'call'; call: Call }
  | { kind: 'close' };

/** Own worker -> main thread. */
export type WorkerMessage =
  | { kind: 'opened'; storage: StorageKind; owner: boolean; worker: string; siteId: Uint8Array }
  | { kind: 'open-failed'; error: WireError }
  | { kind: 'reply'; reply: Reply }
  | { kind: 'closed' };

/** Between workers on `synqlite:<name>` (requests, ownership). */
export type SharedMessage =
  | { t: 'who' }
  | { t: 'owner'; owner: string; storage: StorageKind; siteId: Uint8Array }
  | { t: 'req'; to: string; from: string; call: Call };

/** Owner -> one worker on `synqlite:<name>:to:<worker id>`. */
export type DirectMessage =
  | { t: 'ack'; id: number }
  | { t: 'res'; reply: Reply };

/** What a committed transaction changed: `[op, table, rowid]` per row. */
/**
 * One committed transaction's changed rows, columnar (typed arrays clone in one copy): row `i`
 * is `ops[i]` (0 insert, 1 update, 2 delete) on `tables[table[i]]` with rowid `rowids[i]` (a
 * `BigInt64Array` only when some rowid is beyond ±2^53). Made by the wasm `takeChanges`.
 */
export interface WireTx {
  tables: string[];
  ops: Uint8Array;
  table: Uint32Array;
  rowids: Float64Array | BigInt64Array;
}

/** Owner worker -> every tab on `BroadcastChannel(<name>)`: one message per call that committed. */
export interface ChangeMessage {
  /** The worker whose call made the change. */
  from: string;
  /** `sync` for merged remote changes, `call` for SQL run by a tab. */
  source: 'call' | 'sync';
  /** One entry per committed transaction. */
  txs: WireTx[];
}

export const channelName = (db: string): string => `synqlite:${db}`;
export const directChannelName = (db: string, worker: string): string => `synqlite:${db}:to:${worker}`;
export const ownerLockName = (db: string): string => `synqlite:${db}:owner`;
export const workerLockName = (worker: string): string => `synqlite:worker:${worker}`;
