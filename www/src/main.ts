import { openDatabase, storage, SynqliteError, type Sync } from 'synqlite';

// The schema is the repository's ordered migrations (the sync server applies the same files).
const files = import.meta.glob('../../schema/*.sql', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const migrations = Object.entries(files)
  .map(([path, sql]) => ({ name: path.slice(path.lastIndexOf('/') + 1), sql }))
  .sort((a, b) => (a.name < b.name ? -1 : 1));

interface Song {
  id: string;
  title: string;
  artist: string;
  album: string;
  seconds: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const syncUrl = params.get('sync') ?? import.meta.env.VITE_SYNC_URL ?? 'ws://127.0.0.1:8080/sync';
const room = params.get('room') ?? 'demo';
const httpBase = syncUrl.replace(/^ws/, 'http').replace(/\/sync$/, '');

const db = await openDatabase({ name: params.get('db') ?? 'media', migrations });

async function render(): Promise<void> {
  const [{ n }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM songs');
  const songs = await db.query<Song>('SELECT id, title, artist, album, seconds FROM songs ORDER BY created_at DESC, rowid DESC LIMIT 100');
  $('songs').replaceChildren(
    ...songs.map((s) => {
      const tr = document.createElement('tr');
      for (const v of [s.title, s.artist, s.album, s.seconds]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }),
  );
  $('status').textContent = `database "${db.name}" on ${db.storage}, ${n} song(s)${n > 100 ? ' (newest 100 shown)' : ''}; storage ${await storage.persisted()}`;
}

$<HTMLFormElement>('add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  const data = new FormData(form);
  const artist = String(data.get('artist') ?? '').trim();
  try {
    await db.exec('INSERT INTO songs (id, title, artist, metadata, created_at) VALUES (?, ?, ?, ?, ?)', [
      crypto.randomUUID(),
      String(data.get('title') ?? '').trim(),
      artist,
      JSON.stringify({ artist }),
      Date.now(),
    ]);
    $('error').textContent = '';
    form.reset();
  } catch (err) {
    $('error').textContent = err instanceof SynqliteError ? `${err.code}: ${err.message}` : String(err);
  }
});

// Every committed change, from this tab, another tab or the sync, re-renders (coalesced).
let queued = false;
db.onAny(() => {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    void render();
  });
});

let sync: Sync | null = null;
function startSync(): void {
  const s = db.sync({ url: syncUrl, room });
  sync = s;
  const show = () => {
    $('sync-status').textContent = s.status + (s.error ? ` (${s.error.code})` : '');
    $('sync-status').dataset.status = s.status;
    const { applied, total } = s.progress;
    $<HTMLProgressElement>('sync-progress').value = total ? applied / total : s.status === 'up-to-date' ? 1 : 0;
    $('sync-count').textContent = total ? `${applied} / ${total} changes` : '';
  };
  s.onStatus(show);
  s.onProgress(show);
  show();
  $('sync-toggle').textContent = 'Go offline';
}
$('sync-toggle').addEventListener('click', async () => {
  if (sync && sync.status !== 'stopped') {
    const s = sync;
    sync = null;
    await s.stop();
    $('sync-status').textContent = 'offline (stopped)';
    $('sync-toggle').textContent = 'Go online';
  } else {
    startSync();
  }
});
$('sync-seed').addEventListener('click', async () => {
  try {
    const r = await fetch(`${httpBase}/rooms/${encodeURIComponent(room)}/seed?rows=50000`, { method: 'POST' });
    if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  } catch (err) {
    $('error').textContent = `seeding failed (is the server running with --dev?): ${String(err)}`;
  }
});
$('sync-room').textContent = `room "${room}" on ${syncUrl}`;
startSync();
await render();
