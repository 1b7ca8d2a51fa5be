/**
 * `db.sync()`: the main-thread handle of a sync with a room on a synqlite server.
 *
 * The sync itself runs in the worker that owns the database (one WebSocket per database and
 * room, whichever tab asked); every tab's handle follows its status and progress over
 * `BroadcastChannel('synqlite:<name>:sync')`. When the owning tab closes, the next owner asks the
 * tabs to start their syncs again there, and the sync resumes after the last chunk committed.
 * A token function stays in its tab: the owner asks for tokens on the same channel (`token?`,
 * answered with `token`), and the handle holds a Web Lock while it can answer.
 */
import { SynqliteError } from './errors.js';
import type { Op, SyncMessage, SyncOptionsWire, SyncState, SyncStatus } from './protocol.js';
import { syncChannelName, syncKey, tokenLockName } from './protocol.js';
import type { Unsubscribe } from './reactivity.js';

export type { SyncStatus, SyncState } from './protocol.js';

/** A function that fetches a token for the sync server (e.g. from your backend). */
export type TokenFunction = () => Promise<string>;

/** Options of `db.sync()`. */
export interface SyncOptions {
  /** The server's WebSocket endpoint, e.g. `'wss://sync.example.com/sync'`. */
  url: string;
  /** The room to join: every client of a room converges to the same data. */
  room: string;
  /**
   * Credentials for the server's authenticator (`synqlite-server token` mints HMAC room tokens;
   * JWTs work with `--jwt-*`): a string, or a function returning a promise of one.
   *
   * A string is sent as is; the server refusing it (`UNAUTHORIZED`) stops the sync with status
   * `'error'`. A function is called in this tab before every connect and reconnect, so tokens
   * can be short-lived. When the server refuses a token (or ends the session because it
   * expired), the function is called once more and the sync reconnects at once; only a second
   * refusal in a row stops it with `'error'` / `UNAUTHORIZED`. A function that rejects, returns
   * something other than a string or takes more than 10 s counts as a failed connect: status
   * `'offline'` (error `TOKEN_FAILED`), retried with backoff. If this tab closes, the sync (which
   * runs in the tab owning the database) asks another tab that passed a token function for the
   * same url and room; when none is left it stops with `UNAUTHORIZED`.
   *
   * ```js
   * const sync = db.sync({
   *   url: 'wss://sync.example.com/sync',
   *   room: 'team-42',
   *   token: async () => {
   *     const r = await fetch('/api/sync-token?room=team-42', { credentials: 'include' });
   *     if (!r.ok) throw new Error(`token endpoint: ${r.status}`);   // retried with backoff
   *     return (await r.json()).token;
   *   },
   * });
   * ```
   */
  token?: string | TokenFunction;
  /** Change rows per chunk (default 4096, the server may lower it); inbound chunks are applied in transactions of whole chunks. */
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
 * const sync = db.sync({ url: 'ws://127.0.0.1:8080/sync', room: 'demo', token: getToken });
 * sync.onStatus((s) => console.log(s));             // 'connecting' -> 'syncing' -> 'up-to-date'
 * sync.onProgress(({ applied, total }) => bar.value = total ? applied / total : 1);
 * await sync.stop();
 * ```
 */
export class Sync {
  private opts: SyncOptions;
  private current: SyncState = { status: 'connecting', applied: 0, total: 0 };
  private readonly statusListeners = new Set<(s: SyncStatus, state: SyncState) => void>();
  private readonly progressListeners = new Set<(p: SyncProgress) => void>();
  private readonly channel: BroadcastChannel;
  private readonly key: string;
  private stopped = false;
  /** Counts the owner's state broadcasts, so a late `syncStart` reply cannot undo a newer one. */
  private broadcasts = 0;
  /** The id under which the owner asks for tokens, while `token` is a function. */
  private source: string | null = null;
  /** Resolves once this handle holds the source's lock (the owner's sign that it is alive). */
  private sourceReady: Promise<void> = Promise.resolve();
  private releaseSource: (() => void) | null = null;

  /** @internal */
  constructor(
    dbName: string,
    options: SyncOptions,
    private readonly call: Caller,
    private readonly forget: () => void,
  ) {
    this.opts = { ...options };
    this.key = syncKey(options.url, options.room);
    this.channel = new BroadcastChannel(syncChannelName(dbName));
    this.channel.onmessage = (e: MessageEvent<SyncMessage>) => {
      const m = e.data;
      switch (m.t) {
        case 'restart':
          if (!this.stopped) void this.start();
          break;
        case 'state':
          if (m.key === this.key) {
            const { t: _t, key: _k, ...state } = m;
            this.broadcasts++;
            this.update(state);
          }
          break;
        case 'token?':
          if (!this.stopped && this.source !== null && m.source === this.source) void this.answer(m.req);
          break;
        case 'token':
          // A tab's answer, for the owner.
          break;
      }
    };
    this.adopt(options);
  }

  /** The room, server and token this handle syncs with. */
  get options(): Readonly<SyncOptions> {
    return this.opts;
  }

  /** Takes `options`; a token function gets a new source id, held by a Web Lock while it can answer. */
  private adopt(options: SyncOptions): void {
    this.opts = { ...options };
    this.releaseSource?.();
    this.releaseSource = null;
    this.source = null;
    this.sourceReady = Promise.resolve();
    if (typeof options.token !== 'function') return;
    const source = crypto.randomUUID();
    this.source = source;
    this.sourceReady = new Promise<void>((held) => {
      navigator.locks
        .request(tokenLockName(source), () => {
          held();
          // Replaced or stopped before the lock came: let it go at once.
          if (this.source !== source || this.stopped) return undefined;
          return new Promise<void>((release) => (this.releaseSource = release));
        })
        .catch(() => held());
    });
  }

  /** The owner asks for a token: call the function and answer on the sync channel. */
  private async answer(req: string): Promise<void> {
    const fn = this.opts.token;
    if (typeof fn !== 'function') return;
    let reply: SyncMessage;
    try {
      const token: unknown = await fn();
      reply =
        typeof token === 'string'
          ? { t: 'token', req, token }
          : { t: 'token', req, error: `the token function resolved with ${token === null ? 'null' : typeof token}, not a string` };
    } catch (e) {
      reply = { t: 'token', req, error: `the token function failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (!this.stopped) this.channel.postMessage(reply);
  }

  /** @internal Whether `options` asks for what this handle already runs (same token and chunk size). */
  sameOptions(options: SyncOptions): boolean {
    return options.token === this.opts.token && options.chunkSize === this.opts.chunkSize;
  }

  /** @internal Asked again with another token: the owner reconnects with it at once. */
  restart(options: SyncOptions): void {
    this.adopt(options);
    void this.start(true);
  }

  /** @internal Asks the owner to run the sync; resolves with its state. */
  async start(restart = false): Promise<void> {
    const { url, room, token, chunkSize } = this.opts;
    const wire: SyncOptionsWire = { url, room };
    if (typeof token === 'string') wire.token = token;
    const source = this.source;
    if (source !== null) {
      // The owner checks the lock before asking; hold it first.
      await this.sourceReady;
      if (this.stopped || this.source !== source) return;
      wire.tokenSource = source;
    }
    if (chunkSize !== undefined) wire.chunkSize = chunkSize;
    if (restart) wire.restart = true;
    const seen = this.broadcasts;
    try {
      const state = (await this.call({ op: 'syncStart', options: wire })) as SyncState;
      // The owner's broadcasts that arrived meanwhile are newer than the state in its reply.
      if (this.broadcasts === seen) this.update(state);
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
    this.dropSource();
    this.update({ status: 'stopped', applied: 0, total: 0 });
    this.channel.close();
  }

  /** Stops syncing this database with the room (for every tab) and closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.dropSource();
    this.forget();
    try {
      await this.call({ op: 'syncStop', url: this.options.url, room: this.options.room });
    } finally {
      this.update({ status: 'stopped', applied: 0, total: 0 });
      this.channel.close();
    }
  }

  /** No more token requests for this handle: the owner sees its lock free and asks another tab. */
  private dropSource(): void {
    this.releaseSource?.();
    this.releaseSource = null;
    this.source = null;
  }
}
