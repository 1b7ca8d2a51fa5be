/**
 * The sync client, in the worker that owns the database: one WebSocket per `(url, room)`, the
 * protocol itself in wasm (`SyncSession`, from the Rust core).
 *
 * Every received frame is handled as a task of the owner's executor, so it never runs inside a
 * tab's open transaction; a `Changes` frame is applied in one transaction together with its
 * cursor, made durable (`flush`, for IndexedDB) and announced to listeners with source `'sync'`
 * before its acknowledgement is sent. Killing the worker at any instant therefore leaves a
 * consistent database that resumes after its last committed chunk.
 *
 * After local commits the executor calls `localCommitted`, which uploads them. A lost connection
 * is retried with jittered exponential backoff; errors that a retry cannot fix (a refused token,
 * another schema) stop the sync with status `'error'`. State changes are broadcast on
 * `synqlite:<name>:sync` to every tab.
 */
import { SyncSession, type Database as WasmDatabase } from '../wasm/synqlite.js';
import { type SyncMessage, type SyncOptionsWire, type SyncState, type SyncStatus, syncChannelName, syncKey, type WireRowChange, type ChangeMessage } from './protocol.js';

/** Errors a reconnect cannot fix. */
const FATAL = new Set(['UNAUTHORIZED', 'SCHEMA_MISMATCH', 'SCHEMA_NAME_MISMATCH', 'INVALID_ROOM', 'PROTOCOL_VERSION', 'INVALID_ARGUMENT']);
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;

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

function codeOf(e: unknown): { code: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  return {
    code: typeof err?.code === 'string' ? err.code : 'INTERNAL',
    message: typeof err?.message === 'string' ? err.message : String(e),
  };
}

class SyncConnection {
  private ws: WebSocket | null = null;
  private session: SyncSession | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  state: SyncState = { status: 'connecting', applied: 0, total: 0 };

  constructor(
    readonly key: string,
    private options: SyncOptionsWire,
    private readonly schedule: Schedule,
    private readonly publish: (key: string, state: SyncState) => void,
    private readonly announce: (m: ChangeMessage) => void,
  ) {}

  start(options: SyncOptionsWire): void {
    this.options = options;
    if (this.state.status === 'error' || this.state.status === 'offline') {
      // Asked again: retry now.
      clearTimeout(this.timer);
      this.attempt = 0;
      this.connect();
    } else if (!this.ws) {
      this.connect();
    }
  }

  private set(status: SyncStatus, extra: Partial<SyncState> = {}): void {
    const next: SyncState = { ...this.state, ...extra, status };
    if (status !== 'error' && status !== 'offline' && !('error' in extra)) delete next.error;
    this.state = next;
    this.publish(this.key, next);
  }

  private connect(): void {
    if (this.stopped) return;
    this.set('connecting', { applied: 0, total: 0 });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url);
    } catch (e) {
      this.set('error', { error: { code: 'INVALID_ARGUMENT', message: `bad sync url ${this.options.url}: ${codeOf(e).message}` } });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.schedule(async (db) => {
        if (this.ws !== ws) return;
        this.session?.free();
        this.session = new SyncSession(this.options.room, this.options.token, this.options.chunkSize);
        ws.send(this.session.hello(db));
      });
    };
    ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
      if (typeof e.data === 'string') return;
      const bytes = new Uint8Array(e.data);
      this.schedule((db) => this.handle(db, ws, bytes));
    };
    // Queued behind the frames received before it: an error frame is handled (and its code
    // kept) before the close it precedes.
    ws.onclose = () => this.schedule(async () => this.lost(ws, null));
    ws.onerror = () => {
      // onclose follows with the details we need.
    };
  }

  private async handle(db: WasmDatabase, ws: WebSocket, bytes: Uint8Array): Promise<void> {
    if (this.ws !== ws || !this.session) return;
    let out: HandleResult;
    try {
      out = this.session.handle(db, bytes) as HandleResult;
      const durable = db.flush();
      if (durable) await durable;
    } catch (e) {
      db.takeChanges();
      this.fail(ws, codeOf(e));
      return;
    }
    const txs = db.takeChanges() as WireRowChange[][];
    if (txs.length > 0) this.announce({ from: 'sync', source: 'sync', txs });
    for (const f of out.send) ws.send(f);
    if (out.joined) this.attempt = 0;
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

  private fail(ws: WebSocket, error: { code: string; message: string }): void {
    this.lost(ws, error);
    try {
      ws.close(1000);
    } catch {
      // Already closing.
    }
  }

  private lost(ws: WebSocket, error: { code: string; message: string } | null): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.session?.free();
    this.session = null;
    if (this.stopped) return;
    if (error && FATAL.has(error.code)) {
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
    if (this.state.status === 'offline' && !this.ws) {
      clearTimeout(this.timer);
      this.connect();
    }
  }

  /** Ends the sync; `publish: false` when the owner is closing and the next owner resumes it. */
  stop(publish = true): void {
    this.stopped = true;
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

  constructor(
    name: string,
    private readonly schedule: Schedule,
    private readonly announce: (m: ChangeMessage) => void,
  ) {
    this.channel = new BroadcastChannel(syncChannelName(name));
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
      s = new SyncConnection(key, options, this.schedule, (k, st) => this.publish(k, st), this.announce);
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
    self.removeEventListener('online', this.onOnline);
    this.channel.close();
  }
}
