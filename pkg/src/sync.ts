/**
 * `db.sync()`: the main-thread handle of a sync with a room on a synqlite server.
 *
 * The sync itself runs in the worker that owns the database (one WebSocket per database and
 * room, whichever tab asked); every tab's handle follows its status and progress over
 * `BroadcastChannel('synqlite:<name>:sync')`. When the owning tab closes, the next owner asks the
 * tabs to start their syncs again there, and the sync resumes after the last chunk committed.
 */
import { SynqliteError } from './errors.js';
import type { Op, SyncMessage, SyncOptionsWire, SyncState, SyncStatus } from './protocol.js';
import { syncChannelName, syncKey } from './protocol.js';
import type { Unsubscribe } from './reactivity.js';

export type { SyncStatus, SyncState } from './protocol.js';

/** Options of `db.sync()`. */
export interface SyncOptions {
  /** The server's WebSocket endpoint, e.g. `'wss://sync.example.com/sync'`. */
  url: string;
  /** The room to join: every client of a room converges to the same data. */
  room: string;
  /** A token for the server's authenticator (`synqlite-server token` mints HMAC room tokens). */
  token?: string;
  /** Change rows per chunk (default 1024): each inbound chunk is one transaction. */
  chunkSize?: number;
}

/** Initial-sync progress in change rows. */
export interface SyncProgress {
  applied: number;
  total: number;
}

type Caller = (op: Op) => Promise<unknown>;

/**
 * A running sync between this database and a room.
 *
 * ```ts
 * const sync = db.sync({ url: 'ws://127.0.0.1:8080/sync', room: 'demo' });
 * sync.onStatus((s) => console.log(s));             // 'connecting' -> 'syncing' -> 'up-to-date'
 * sync.onProgress(({ applied, total }) => bar.value = total ? applied / total : 1);
 * await sync.stop();
 * ```
 */
export class Sync {
  /** The room and server. */
  readonly options: Readonly<SyncOptions>;
  private current: SyncState = { status: 'connecting', applied: 0, total: 0 };
  private readonly statusListeners = new Set<(s: SyncStatus, state: SyncState) => void>();
  private readonly progressListeners = new Set<(p: SyncProgress) => void>();
  private readonly channel: BroadcastChannel;
  private readonly key: string;
  private stopped = false;

  /** @internal */
  constructor(
    dbName: string,
    options: SyncOptions,
    private readonly call: Caller,
    private readonly forget: () => void,
  ) {
    this.options = { ...options };
    this.key = syncKey(options.url, options.room);
    this.channel = new BroadcastChannel(syncChannelName(dbName));
    this.channel.onmessage = (e: MessageEvent<SyncMessage>) => {
      const m = e.data;
      if (m.t === 'restart') {
        if (!this.stopped) void this.start();
      } else if (m.key === this.key) {
        const { t: _t, key: _k, ...state } = m;
        this.update(state);
      }
    };
  }

  /** @internal Asks the owner to run the sync; resolves with its state. */
  async start(): Promise<void> {
    const wire: SyncOptionsWire = { url: this.options.url, room: this.options.room };
    if (this.options.token !== undefined) wire.token = this.options.token;
    if (this.options.chunkSize !== undefined) wire.chunkSize = this.options.chunkSize;
    try {
      this.update((await this.call({ op: 'syncStart', options: wire })) as SyncState);
    } catch (e) {
      const err = e instanceof SynqliteError ? e : new SynqliteError('INTERNAL', String(e));
      // The owner changed while asking: the new owner's 'restart' brings us back.
      if (err.code !== 'OWNER_CHANGED') this.update({ status: 'error', error: { code: err.code, message: err.message }, applied: 0, total: 0 });
    }
  }

  private update(state: SyncState): void {
    if (this.stopped && state.status !== 'stopped') return;
    const prev = this.current;
    this.current = state;
    if (state.status !== prev.status || state.error?.code !== prev.error?.code) {
      for (const cb of this.statusListeners) cb(state.status, state);
    }
    if (state.applied !== prev.applied || state.total !== prev.total) {
      for (const cb of this.progressListeners) cb({ applied: state.applied, total: state.total });
    }
  }

  /** `'connecting'`, `'syncing'` (initial sync or uploads in flight), `'up-to-date'`, `'offline'` (retrying), `'error'` (see `error`), `'stopped'`. */
  get status(): SyncStatus {
    return this.current.status;
  }

  /** Why the sync stopped (`status === 'error'`) or the last failure while `'offline'`. */
  get error(): { code: string; message: string } | undefined {
    return this.current.error;
  }

  /** Progress of the current initial sync. */
  get progress(): SyncProgress {
    return { applied: this.current.applied, total: this.current.total };
  }

  /**
   * Calls `cb` on every status change (not immediately; read `status` for the current one).
   *
   * ```ts
   * const off = sync.onStatus((status, { error }) => { if (status === 'error') alert(error?.code); });
   * ```
   */
  onStatus(cb: (status: SyncStatus, state: SyncState) => void): Unsubscribe {
    this.statusListeners.add(cb);
    return () => this.statusListeners.delete(cb);
  }

  /**
   * Calls `cb` as initial-sync chunks are applied; ends with `applied === total`.
   *
   * ```ts
   * sync.onProgress(({ applied, total }) => (bar.value = total ? applied / total : 1));
   * ```
   */
  onProgress(cb: (p: SyncProgress) => void): Unsubscribe {
    this.progressListeners.add(cb);
    return () => this.progressListeners.delete(cb);
  }

  /** @internal This tab's database closed: stop following the sync (it goes on in other tabs). */
  detach(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.update({ status: 'stopped', applied: 0, total: 0 });
    this.channel.close();
  }

  /** Stops syncing this database with the room (for every tab) and closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.forget();
    try {
      await this.call({ op: 'syncStop', url: this.options.url, room: this.options.room });
    } finally {
      this.update({ status: 'stopped', applied: 0, total: 0 });
      this.channel.close();
    }
  }
}
