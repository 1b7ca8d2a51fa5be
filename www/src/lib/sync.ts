/**
 * The app's sync with its room: one `db.sync()` per tab, exposed as Solid signals, with an
 * online/offline switch that `localStorage` remembers (for this database, across tabs and reloads).
 *
 * Stopping a sync stops it for every tab of the database (the sync runs once, in the tab that owns
 * the database); the other tabs see their handle go `'stopped'`, and any tab can start it again.
 */
import { createContext, createSignal, onCleanup, useContext, type Accessor } from 'solid-js';
import { SynqliteError, type Database, type Sync, type SyncProgress, type SyncStatus, type Unsubscribe } from 'synqlite';
import { room, storageKey, syncUrl } from '../params';

/** A sync status, or `'unavailable'` when this build of the package has no `db.sync`. */
export type SyncView = SyncStatus | 'unavailable';

export interface SyncController {
  url: string;
  room: string;
  status: Accessor<SyncView>;
  progress: Accessor<SyncProgress>;
  error: Accessor<{ code: string; message: string } | undefined>;
  /** Starts (true) or stops (false) syncing and remembers the choice. */
  setOnline(online: boolean): Promise<void>;
}

const OFFLINE = storageKey('offline');

export function createSyncController(db: Database): SyncController {
  const [status, setStatus] = createSignal<SyncView>('stopped');
  const [progress, setProgress] = createSignal<SyncProgress>({ applied: 0, total: 0 }, {
    equals: (a, b) => a.applied === b.applied && a.total === b.total,
  });
  const [error, setError] = createSignal<{ code: string; message: string }>();
  let handle: Sync | undefined;
  let listeners: Unsubscribe[] = [];

  const detach = () => {
    for (const off of listeners) off();
    listeners = [];
  };

  const show = (s: Sync) => {
    if (s !== handle) return;
    setStatus(s.status);
    setError(s.error);
    setProgress(s.progress);
  };

  const start = async () => {
    if (typeof (db as Partial<Database>).sync !== 'function') {
      setStatus('unavailable');
      return;
    }
    // A handle another tab stopped says 'stopped' but is still this tab's registered sync:
    // release it, so db.sync() starts a new one.
    if (handle) {
      const old = handle;
      handle = undefined;
      detach();
      await old.stop().catch(() => undefined);
    }
    try {
      const s = db.sync({ url: syncUrl, room });
      handle = s;
      listeners = [s.onStatus(() => show(s)), s.onProgress(() => show(s))];
      show(s);
    } catch (e) {
      setStatus('error');
      setError(e instanceof SynqliteError ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: String(e) });
    }
  };

  const stop = async () => {
    const s = handle;
    handle = undefined;
    detach();
    setProgress({ applied: 0, total: 0 });
    setStatus('stopped');
    await s?.stop();
  };

  onCleanup(detach);
  if (localStorage.getItem(OFFLINE) !== '1') void start();

  return {
    url: syncUrl,
    room,
    status,
    progress,
    error,
    async setOnline(online) {
      if (online) localStorage.removeItem(OFFLINE);
      else localStorage.setItem(OFFLINE, '1');
      await (online ? start() : stop());
    },
  };
}

const SyncContext = createContext<SyncController>();
export const SyncProvider = SyncContext.Provider;

export function useSync(): SyncController {
  const s = useContext(SyncContext);
  if (!s) throw new Error('useSync() outside <SyncProvider>');
  return s;
}
