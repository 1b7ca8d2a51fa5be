import { createSignal } from 'solid-js';
import type { BatchItem } from 'synqlite';
import { useDb } from '../db';
import { errorText } from '../lib/errors';
import { audioSeconds, readFile, type StoredFile } from '../lib/media';
import { ErrorLine } from './common';

/**
 * Adds a song: its files go into `media_blobs` under their sha256 (the same file twice is stored
 * once), the song row references them, and `metadata` holds the JSON extras (artist, genre, tags;
 * the schema CHECKs `json_valid`). Everything is one atomic batch, so a rejected song (e.g. the
 * blank-title CHECK) leaves no orphan files; the error is shown with its code.
 */
export function AddSongForm(props: { onAdded?: () => void }) {
  const db = useDb();
  const [error, setError] = createSignal<string>();
  const [busy, setBusy] = createSignal(false);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const text = (k: string) => String(data.get(k) ?? '').trim();
    const file = (k: string) => {
      const f = data.get(k);
      return f instanceof File && f.size > 0 ? f : undefined;
    };
    setBusy(true);
    setError(undefined);
    try {
      const audioFile = file('audio');
      const coverFile = file('cover');
      const [audio, cover, seconds] = await Promise.all([
        audioFile ? readFile(audioFile) : undefined,
        coverFile ? readFile(coverFile) : undefined,
        audioFile ? audioSeconds(audioFile) : 0,
      ]);
      const artist = text('artist');
      const genre = text('genre');
      const tags = text('tags').split(',').map((t) => t.trim()).filter(Boolean);
      const metadata: Record<string, unknown> = { artist };
      if (genre) metadata.genre = genre;
      if (tags.length) metadata.tags = tags;
      if (audioFile) metadata.file = audioFile.name;
      const batch: BatchItem[] = [];
      for (const f of [audio, cover].filter((x): x is StoredFile => !!x)) {
        batch.push(['INSERT OR IGNORE INTO media_blobs (sha256, mime, size, data) VALUES (?, ?, ?, ?)', [f.sha256, f.mime, f.size, f.data]]);
      }
      batch.push([
        `INSERT INTO songs (id, title, artist, album, seconds, metadata, audio_sha256, cover_sha256, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [crypto.randomUUID(), text('title'), artist, text('album'), seconds, JSON.stringify(metadata), audio?.sha256 ?? null, cover?.sha256 ?? null, Date.now()],
      ]);
      await db.batch(batch);
      form.reset();
      props.onAdded?.();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card add-song" onSubmit={submit} aria-label="add a song">
      <div class="grid">
        <label>
          Title <input name="title" placeholder="Song title" autocomplete="off" />
        </label>
        <label>
          Artist <input name="artist" placeholder="Artist" autocomplete="off" />
        </label>
        <label>
          Album <input name="album" placeholder="Album" autocomplete="off" />
        </label>
        <label>
          Genre <input name="genre" placeholder="e.g. ambient" autocomplete="off" />
        </label>
        <label>
          Tags <input name="tags" placeholder="comma, separated" autocomplete="off" />
        </label>
        <label>
          Audio file <input name="audio" type="file" accept="audio/*" />
        </label>
        <label>
          Cover image <input name="cover" type="file" accept="image/*" />
        </label>
      </div>
      <div class="row">
        <button type="submit" disabled={busy()}>
          {busy() ? 'Adding…' : 'Add song'}
        </button>
      </div>
      <ErrorLine error={error()} />
    </form>
  );
}
