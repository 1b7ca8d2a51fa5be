import { Show, createSignal } from 'solid-js';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { count } from '../lib/format';
import type { SongRow } from '../types';
import { AddSongForm } from './AddSongForm';
import { Screen, Tip } from './common';
import { SONG_COLUMNS, SongList } from './SongList';

/** How many of the most recently added songs the library lists. */
const LIMIT = 100;

/**
 * The library: the songs most recently added on this device (rowid order: a synced song counts
 * as added when it arrived, and walking the rowid backwards stays cheap with 50k rows), the total,
 * and the add form. Both queries are live: songs added in another tab or synced in appear at once.
 */
export function LibraryScreen() {
  const db = useDb();
  const [adding, setAdding] = createSignal(false);
  const songs = createQuery<SongRow>(db, `SELECT ${SONG_COLUMNS} FROM songs ORDER BY rowid DESC LIMIT ${LIMIT}`, [], {
    initialValue: [],
  });
  const total = createQuery<{ n: number }>(db, 'SELECT count(*) AS n FROM songs', [], { initialValue: [] });
  const n = () => total()[0]?.n ?? 0;
  return (
    <Screen
      id="library"
      title="Library"
      actions={
        <button type="button" onClick={() => setAdding(!adding())} aria-expanded={adding()}>
          {adding() ? 'Close' : '+ Add song'}
        </button>
      }
    >
      <Tip>
        Songs, covers and audio live in SQLite in this browser (files in <code>media_blobs</code>, keyed by their
        sha256). Open a second tab: it updates as you add or delete.
      </Tip>
      <Show when={adding()}>
        <AddSongForm />
      </Show>
      <p class="muted" id="song-count">
        {count(n())} song{n() === 1 ? '' : 's'}
        {n() > LIMIT ? ` (the ${LIMIT} most recently added shown)` : ''}
      </p>
      <SongList songs={songs()} empty="No songs yet: add one with its audio file and a cover." />
    </Screen>
  );
}
