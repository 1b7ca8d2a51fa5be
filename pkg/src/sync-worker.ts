/**
 * The sync client, in the worker that owns the database: one WebSocket per `(url, room)`, the
 * protocol itself in wasm (`SyncSession`, from the Rust core).
 *
 * Received frames are handled by tasks of the owner's executor, so they never run inside a
 * tab's open transaction; the `Changes` frames queued when such a task runs are applied in one
 * transaction together with the last one's cursor, made durable (`flush`, for IndexedDB) and
 * announced to listeners with source `'sync'` before they are acknowledged. Killing the worker at any instant therefore leaves a
 * consistent database that resumes after its last committed chunk.
 *
 * After local commits the executor calls `localCommitted`, which uploads them. A lost connection
 * is retried with jittered exponential backoff; errors that a retry cannot fix (a refused token,
 * another schema) stop the sync with status `'error'`. State changes are broadcast on
 * `synqlite:<name>:sync` to every tab.
 *
 * Token functions live in the tabs: before every connect the owner asks the tab whose handle
 * supplied the function (a `token?` request on the sync channel, answered with `token`); a tab
 * holds the Web Lock `synqlite:token:<source>` while it can answer, so when it is gone the owner
 * asks another tab that registered a function for the same room. A refused token is refreshed
 * once before the sync gives up.
 */
import { SyncSession, type Database as WasmDatabase } from '../wasm/synqlite.js';
import {
  type ChangeMessage,
  type SyncMessage,
  type SyncOptionsWire,
  type SyncState,
  type SyncStatus,
  type WireTx,
  syncChannelName,
  syncKey,
  tokenLockName,
} from './protocol.js';

/**
 * Error codes a reconnect cannot fix, for errors that do not say themselves (a `retryable`
 * property wins, except that `UNAUTHORIZED` is never retried with the same token). Everything else (`SERVER_BUSY`, `SITE_IN_USE`, `SHUTTING_DOWN`, `INTERNAL`, a
 * lost connection, ...) is retried with backoff.
 */
const FATAL = new Set([
  'UNAUTHORIZED',
  'FORBIDDEN',
  'SCHEMA_MISMATCH',
  'SCHEMA_NAME_MISMATCH',
  'INVALID_ROOM',
  'PROTOCOL_VERSION',
  'PROTOCOL_ERROR',
  'INVALID_ARGUMENT',
]);
/** Most received frames handled by one task (the server's window keeps it to a few). */
const MAX_BATCH_FRAMES = 16;
/**
 * Most frames, and bytes, received and not handled yet. A server keeps at most its window of
 * change chunks unacknowledged (4), plus acknowledgements of ours and a few control frames: more
 * means it ignores flow control, and the sync stops with `PROTOCOL_ERROR` instead of queueing
 * a flood in the worker's memory.
 */
const MAX_INBOX_FRAMES = 64;
const MAX_INBOX_BYTES = 64 * 1024 * 1024;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** How long a tab's token function may take before the connect attempt counts as failed. */
const TOKEN_TIMEOUT_MS = 10_000;

/** A sync failure: the stable code, the message, and whether a retry may help (when known). */
interface Failure {
  code: string;
  message: string;
  retryable?: boolean;
}

/** What asking the tabs for a token gave. */
type TokenResult =
  | { ok: true; token: string }
  /** The function failed or timed out: a failed connect attempt. */
  | { ok: false; message: string }
  /** No tab that registered a function is left. */
  | { ok: false; none: true; message: string };

/** Whether the tab whose handle registered `source` can still be asked (it holds the source's lock). */
async function sourceAlive(source: string): Promise<boolean> {
  const { held = [] } = await navigator.locks.query();
  return held.some((l) => l.name === tokenLockName(source));
}

/** Runs `task` on the database when no transaction of a tab is open (the owner's executor). */
export type Schedule = (task: (db: WasmDatabase) => Promise<void>) => void;

interface HandleResult {
  send: Uint8Array[];
  receivedRows: number;
  committed: boolean;
  joined: boolean;
  applied: number;
  total: number;
  caughtUp: boolean;
  upToDate: boolean;
}

function codeOf(e: unknown): Failure {
  const err = e as { code?: unknown; message?: unknown; retryable?: unknown };
  const out: Failure = {
    code: typeof err?.code === 'string' ? err.code : 'INTERNAL',
    message: typeof err?.message === 'string' ? err.message : String(e),
  };
  // The server's own verdict, when the error frame carries one.
  if (typeof err?.retryable === 'boolean') out.retryable = err.retryable;
  return out;
}

/** Whether a retry may fix `f`: its `retryable` flag when it has one, else its code. */
function isRetryable(f: Failure): boolean {
  return f.retryable ?? !FATAL.has(f.code);
}

class SyncConnection {
  private ws: WebSocket | null = null;
  private session: SyncSession | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Bumped by every connect and stop: async steps of an older attempt see it and give up. */
  private gen = 0;
  /** A token is being fetched for attempt `gen` (no socket yet). */
  private fetching = false;
  /** A refused token was already refreshed once since the last successful join. */
  private refreshed = false;
  /** Token functions registered for this room, by the handles' source ids (oldest first). */
  readonly sources: string[] = [];
  /** The room (for messages). */
  get room(): string {
    return this.options.room;
  }
  state: SyncState = { status: 'connecting', applied: 0, total: 0 };

  constructor(
    readonly key: string,
    private options: SyncOptionsWire,
    private readonly schedule: Schedule,
    private readonly publish: (key: string, state: SyncState) => void,
    private readonly announce: (m: ChangeMessage) => void,
    private readonly fetchToken: (conn: SyncConnection, primary: string) => Promise<TokenResult>,
  ) {}

  start(options: SyncOptionsWire): void {
    const { restart, ...rest } = options;
    if (rest.tokenSource !== undefined && !this.sources.includes(rest.tokenSource)) this.sources.push(rest.tokenSource);
    this.options = rest;
    if (restart) {
      // The tab asked again with another token: drop the connection and use it now.
      this.attempt = 0;
      this.refreshed = false;
      this.drop();
      this.connect();
    } else if (this.state.status === 'error' || this.state.status === 'offline') {
      // Asked again: retry now.
      this.attempt = 0;
      this.refreshed = false;
      this.drop();
      this.connect();
    } else if (!this.ws && !this.fetching) {
      this.connect();
    }
  }

  private set(status: SyncStatus, extra: Partial<SyncState> = {}): void {
    const next: SyncState = { ...this.state, ...extra, status };
    if (status !== 'error' && status !== 'offline' && !('error' in extra)) delete next.error;
    // Only code and message cross to the tabs.
    if (next.error) next.error = { code: next.error.code, message: next.error.message };
    this.state = next;
    this.publish(this.key, next);
  }

  /** Forgets the current attempt (socket, session, token request, retry timer). */
  private drop(): void {
    this.gen++;
    this.fetching = false;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.session?.free();
    this.session = null;
    try {
      ws?.close(1000);
    } catch {
      // Already closed.
    }
  }

  /** A connect attempt: fetch a token from a tab when the token is a function, then open the socket. */
  private connect(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const gen = ++this.gen;
    this.set('connecting', { applied: 0, total: 0 });
    const source = this.options.tokenSource;
    if (source === undefined) {
      this.open(this.options.token);
      return;
    }
    this.fetching = true;
    void this.fetchToken(this, source).then((r) => {
      if (gen !== this.gen || this.stopped) return;
      this.fetching = false;
      if (r.ok) this.open(r.token);
      else if ('none' in r) this.set('error', { error: { code: 'UNAUTHORIZED', message: r.message } });
      else {
        this.set('offline', { error: { code: 'TOKEN_FAILED', message: r.message } });
        this.retry();
      }
    });
  }

  private open(token: string | undefined): void {
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url);
    } catch (e) {
      this.set('error', { error: { code: 'INVALID_ARGUMENT', message: `bad sync url ${this.options.url}: ${codeOf(e).message}` } });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const { room, chunkSize } = this.options;
    ws.onopen = () => {
      this.schedule(async (db) => {
        if (this.ws !== ws) return;
        this.session?.free();
        this.session = new SyncSession(room, token, chunkSize);
        ws.send(this.session.hello(db));
      });
    };
    // Frames received and not handled yet. One task handles all that are queued when it runs
    // (consecutive change chunks in one transaction), so a device slower than the network
    // commits less often; the server's window of unacknowledged chunks bounds the batch.
    const inbox: Uint8Array[] = [];
    let inboxBytes = 0;
    const drain = async (db: WasmDatabase): Promise<void> => {
      const batch = inbox.splice(0, MAX_BATCH_FRAMES);
      for (const f of batch) inboxBytes -= f.byteLength;
      // Already handled by the close task (which takes what is left).
      if (batch.length === 0) return;
      if (inbox.length > 0) this.schedule(drain);
      await this.handle(db, ws, batch);
    };
    ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
      if (typeof e.data === 'string' || this.ws !== ws) return;
      inbox.push(new Uint8Array(e.data));
      inboxBytes += e.data.byteLength;
      if (inbox.length > MAX_INBOX_FRAMES || inboxBytes > MAX_INBOX_BYTES) {
        const message = `the server sent ${inbox.length} frames (${inboxBytes} bytes) that were not handled yet, past the ` +
          `${MAX_INBOX_FRAMES} frames / ${MAX_INBOX_BYTES} bytes a server within its window can send: it ignores flow control`;
        inbox.length = 0;
        inboxBytes = 0;
        this.fail(ws, { code: 'PROTOCOL_ERROR', message });
        return;
      }
      // In a task of its own, after the message events already queued (frames that arrived
      // while the previous batch was applied) joined the inbox.
      if (inbox.length === 1) setTimeout(() => this.schedule(drain), 0);
    };
    // Queued behind the frames received before it: an error frame is handled (and its code
    // kept) before the close it precedes.
    ws.onclose = () =>
      this.schedule(async (db) => {
        if (inbox.length > 0) await this.handle(db, ws, inbox.splice(0));
        inboxBytes = 0;
        this.lost(ws, null);
      });
    ws.onerror = () => {
      // onclose follows with the details we need.
    };
  }

  private async handle(db: WasmDatabase, ws: WebSocket, frames: Uint8Array[]): Promise<void> {
    if (this.ws !== ws || !this.session) return;
    let out: HandleResult;
    try {
      out = this.session.handleBatch(db, frames) as HandleResult;
      const durable = db.flush();
      if (durable) await durable;
    } catch (e) {
      db.takeChanges();
      this.fail(ws, codeOf(e));
      return;
    }
    const txs = db.takeChanges() as WireTx[];
    if (txs.length > 0) this.announce({ from: 'sync', source: 'sync', txs });
    for (const f of out.send) ws.send(f);
    if (out.joined) {
      this.attempt = 0;
      this.refreshed = false;
    }
    const progress = { applied: out.applied, total: out.total };
    if (out.upToDate) this.set('up-to-date', progress);
    else this.set(out.joined ? 'syncing' : 'connecting', progress);
  }

  /** Uploads local commits (called as an executor task). */
  pump(db: WasmDatabase): void {
    const ws = this.ws;
    if (!ws || !this.session || ws.readyState !== WebSocket.OPEN) return;
    try {
      const frames = this.session.pump(db) as Uint8Array[];
      for (const f of frames) ws.send(f);
      if (frames.length > 0 && this.state.status === 'up-to-date') this.set('syncing');
    } catch (e) {
      this.fail(ws, codeOf(e));
    }
  }

  private fail(ws: WebSocket, error: Failure): void {
    this.lost(ws, error);
    try {
      ws.close(1000);
    } catch {
      // Already closing.
    }
  }

  private lost(ws: WebSocket, error: Failure | null): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.session?.free();
    this.session = null;
    if (this.stopped) return;
    if (error?.code === 'UNAUTHORIZED' && this.options.tokenSource !== undefined && !this.refreshed) {
      // Expired or revoked: ask the token function for a fresh one and reconnect at once.
      this.refreshed = true;
      this.connect();
      return;
    }
    // A refused token stays refused whatever the frame says: retrying it would only hammer the server.
    if (error && (error.code === 'UNAUTHORIZED' || !isRetryable(error))) {
      this.set('error', { error });
      return;
    }
    this.set('offline', error ? { error } : {});
    this.retry();
  }

  private retry(): void {
    clearTimeout(this.timer);
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 20);
    // Full jitter: many clients losing one server do not come back in lockstep.
    this.timer = setTimeout(() => this.connect(), Math.random() * cap);
  }

  /** The network came back: retry at once instead of waiting out the backoff. */
  online(): void {
    if (this.state.status === 'offline' && !this.ws && !this.fetching) this.connect();
  }

  /** Ends the sync; `publish: false` when the owner is closing and the next owner resumes it. */
  stop(publish = true): void {
    this.stopped = true;
    this.drop();
    if (publish) this.set('stopped', { applied: 0, total: 0 });
    else this.state = { status: 'stopped', applied: 0, total: 0 };
  }
}

/** The syncs of the owned database. */
export class SyncManager {
  private readonly syncs = new Map<string, SyncConnection>();
  private readonly channel: BroadcastChannel;
  private readonly onOnline = () => {
    for (const s of this.syncs.values()) s.online();
  };
  /** Token requests waiting for a tab's answer, by request id. */
  private readonly tokenRequests = new Map<string, (answer: { token?: string; error?: string }) => void>();
  private readonly id = crypto.randomUUID();
  private nextRequest = 0;

  constructor(
    name: string,
    private readonly schedule: Schedule,
    private readonly announce: (m: ChangeMessage) => void,
  ) {
    this.channel = new BroadcastChannel(syncChannelName(name));
    this.channel.onmessage = (e: MessageEvent<SyncMessage>) => {
      const m = e.data;
      if (m.t === 'token') this.tokenRequests.get(m.req)?.(m);
    };
    // Tabs whose sync ran in the previous owner start it again here.
    this.channel.postMessage({ t: 'restart' } satisfies SyncMessage);
    self.addEventListener('online', this.onOnline);
  }

  /** Starts (or joins) the sync with `options.room` at `options.url`; returns its state. */
  start(options: SyncOptionsWire): SyncState {
    if (typeof options?.url !== 'string' || typeof options.room !== 'string' || options.room === '') {
      throw Object.assign(new Error('db.sync() needs { url, room }'), { code: 'INVALID_ARGUMENT' });
    }
    const key = syncKey(options.url, options.room);
    let s = this.syncs.get(key);
    if (!s) {
      s = new SyncConnection(key, options, this.schedule, (k, st) => this.publish(k, st), this.announce, (c, p) => this.fetchToken(c, p));
      this.syncs.set(key, s);
    }
    s.start(options);
    return s.state;
  }

  /** Stops the sync (for every tab); returns its final state. */
  stop(url: string, room: string): SyncState {
    const key = syncKey(url, room);
    const s = this.syncs.get(key);
    if (!s) return { status: 'stopped', applied: 0, total: 0 };
    this.syncs.delete(key);
    s.stop();
    return s.state;
  }

  /** Local writes committed: upload them on every sync. */
  localCommitted(): void {
    if (this.syncs.size === 0) return;
    this.schedule(async (db) => {
      for (const s of this.syncs.values()) s.pump(db);
    });
  }

  /**
   * Asks a tab for a token for `conn`: the tab of `primary` (the handle whose options are in
   * use), else any other tab that registered a function for the room. Tabs that are gone (their
   * source lock is free) are forgotten.
   */
  private async fetchToken(conn: SyncConnection, primary: string): Promise<TokenResult> {
    const candidates = [primary, ...conn.sources.filter((s) => s !== primary)];
    for (const source of candidates) {
      const answer = (await sourceAlive(source)) ? await this.askToken(conn.key, source) : 'gone';
      if (answer !== 'gone') return answer;
      const i = conn.sources.indexOf(source);
      if (i >= 0) conn.sources.splice(i, 1);
    }
    return {
      ok: false,
      none: true,
      message: `no token source is left for room "${conn.room}": every tab that passed a token function to db.sync() for it has closed or stopped its sync; call db.sync() again with a token`,
    };
  }

  /** One token request to the tab of `source`; `'gone'` if that tab goes away before answering. */
  private askToken(key: string, source: string): Promise<TokenResult | 'gone'> {
    const req = `${this.id}:${++this.nextRequest}`;
    return new Promise((resolve) => {
      const watch = new AbortController();
      const done = (r: TokenResult | 'gone') => {
        if (!this.tokenRequests.delete(req)) return;
        clearTimeout(timer);
        watch.abort();
        resolve(r);
      };
      const timer = setTimeout(
        () => done({ ok: false, message: `the token function did not answer within ${TOKEN_TIMEOUT_MS / 1000} s` }),
        TOKEN_TIMEOUT_MS,
      );
      this.tokenRequests.set(req, (m) =>
        done(typeof m.token === 'string' ? { ok: true, token: m.token } : { ok: false, message: m.error ?? 'the token function failed' }),
      );
      // The lock comes free when the tab closes (or its handle stops) while its function runs.
      navigator.locks
        .request(tokenLockName(source), { signal: watch.signal }, () => done('gone'))
        .catch(() => {
          // Aborted: the tab answered.
        });
      this.channel.postMessage({ t: 'token?', key, source, req } satisfies SyncMessage);
    });
  }

  private publish(key: string, state: SyncState): void {
    this.channel.postMessage({ t: 'state', key, ...state } satisfies SyncMessage);
  }

  /**
   * The owner is closing: drop the connections without telling the tabs the sync stopped, since
   * the next owner asks them to start it again (their handles go on from their last state).
   */
  close(): void {
    for (const s of this.syncs.values()) s.stop(false);
    this.syncs.clear();
    for (const answer of [...this.tokenRequests.values()]) answer({ error: 'the database is closing' });
    self.removeEventListener('online', this.onOnline);
    this.channel.close();
  }
}
