import { openDatabase, storage, SynqliteError } from 'synqlite';

interface Song {
  id: number;
  title: string;
  artist: string | null;
  added_at: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const db = await openDatabase({ name: 'media' });
await db.exec(`CREATE TABLE IF NOT EXISTS songs (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL CHECK (length(title) > 0),
  artist TEXT,
  added_at TEXT NOT NULL DEFAULT (datetime('now'))
)`);

async function render(): Promise<void> {
  const songs = await db.query<Song>('SELECT id, title, artist, added_at FROM songs ORDER BY id');
  $('songs').replaceChildren(
    ...songs.map((s) => {
      const tr = document.createElement('tr');
      for (const v of [s.id, s.title, s.artist ?? '', s.added_at]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }),
  );
  $('status').textContent = `database "${db.name}" on ${db.storage}, ${songs.length} song(s); storage ${await storage.persisted()}`;
}

$<HTMLFormElement>('add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget as HTMLFormElement;
  const data = new FormData(form);
  try {
    await db.exec('INSERT INTO songs (title, artist) VALUES (:title, :artist)', {
      title: String(data.get('title') ?? '').trim(),
      artist: String(data.get('artist') ?? '').trim() || null,
    });
    $('error').textContent = '';
    form.reset();
  } catch (err) {
    $('error').textContent = err instanceof SynqliteError ? `${err.code}: ${err.message}` : String(err);
  }
  await render();
});

await render();
