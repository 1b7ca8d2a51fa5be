import { Show, createSignal } from 'solid-js';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { count } from '../lib/format';
import { useSync, type SyncView } from '../lib/sync';
import { httpBase } from '../params';
import { ErrorLine, Screen, Tip } from './common';

const LABELS: Record<SyncView, string> = {
  connecting: 'connecting…',
  syncing: 'syncing…',
  'up-to-date': 'up to date',
  offline: 'offline (retrying)',
  error: 'error',
  stopped: 'offline',
  unavailable: 'sync unavailable',
};

/** The sync status as a small pill (header and sync screen). */
export function SyncBadge() {
  const sync = useSync();
  return (
    <span class="badge" data-status={sync.status()} title={sync.error()?.message ?? `room “${sync.room}” on ${sync.url}`}>
      {LABELS[sync.status()]}
    </span>
  );
}

/** Whether the sync is running (or trying to). */
const running = (s: SyncView) => s !== 'stopped' && s !== 'error' && s !== 'unavailable';

/**
 * The sync panel: status, the initial-sync progress bar (`{applied, total}` change rows), the
 * online/offline switch, and the server's dev endpoint that seeds the room with 50k songs.
 */
export function SyncScreen() {
  const db = useDb();
  const sync = useSync();
  const [seeding, setSeeding] = createSignal(false);
  const [seedResult, setSeedResult] = createSignal<string>();
  const [seedError, setSeedError] = createSignal<string>();
  const songs = createQuery<{ n: number }>(db, 'SELECT count(*) AS n FROM songs', [], { initialValue: [] });
  const fraction = () => {
    const { applied, total } = sync.progress();
    if (total > 0) return applied / total;
    return sync.status() === 'up-to-date' ? 1 : 0;
  };

  const seed = async () => {
    setSeeding(true);
    setSeedError(undefined);
    setSeedResult(undefined);
    try {
      const r = await fetch(`${httpBase}/rooms/${encodeURIComponent(sync.room)}/seed?rows=50000`, { method: 'POST' });
      const body = (await r.json().catch(() => ({}))) as { rows?: number; changes?: number; code?: string; message?: string };
      if (!r.ok) throw new Error(body.code ? `${body.code}: ${body.message}` : `HTTP ${r.status}`);
      setSeedResult(`The server added ${count(body.rows ?? 0)} songs; the room holds ${count(body.changes ?? 0)} change rows.`);
    } catch (e) {
      setSeedError(`Seeding failed (is the server running with --dev at ${httpBase}?): ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setSeeding(false);
    }
  };

  return (
    <Screen id="sync" title="Sync">
      <Tip>
        Every change is a cr-sqlite change row, sent to the room's server and on to the other browsers. Go offline,
        seed the room, and go online again to watch the initial sync apply 50k songs in chunks.
      </Tip>
      <div class="card sync">
        <div class="row spread">
          <span>
            Room <strong>{sync.room}</strong> <span class="muted">on {sync.url}</span>
          </span>
          <SyncBadge />
        </div>
        <div class="progress-row">
          <progress id="sync-progress" max="1" value={fraction()} />
          <span class="num muted" id="sync-count">
            {sync.progress().total > 0
              ? `${count(sync.progress().applied)} / ${count(sync.progress().total)} changes`
              : `${Math.round(fraction() * 100)}%`}
          </span>
        </div>
        <Show when={sync.error()}>{(e) => <ErrorLine error={`${e().code}: ${e().message}`} />}</Show>
        <div class="row">
          <Show when={sync.status() !== 'unavailable'}>
            <button type="button" id="sync-toggle" onClick={() => sync.setOnline(!running(sync.status()))}>
              {running(sync.status()) ? 'Go offline' : 'Go online'}
            </button>
          </Show>
          <button type="button" id="sync-seed" disabled={seeding()} onClick={seed}>
            {seeding() ? 'Seeding…' : 'Seed 50k rows on the server'}
          </button>
          <span class="muted">{count(songs()[0]?.n ?? 0)} songs here</span>
        </div>
        <Show when={seedResult()}>
          <p class="ok">{seedResult()}</p>
        </Show>
        <ErrorLine error={seedError()} />
      </div>
    </Screen>
  );
}
