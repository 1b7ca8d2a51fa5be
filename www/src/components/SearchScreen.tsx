import { For, Show, createSignal } from 'solid-js';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { count } from '../lib/format';
import type { SongRow } from '../types';
import { Screen, Tip } from './common';
import { SONG_COLUMNS, SongList } from './SongList';

/** The indexed expression (schema: `songs_metadata_artist`); queries must spell it the same way to use the index. */
const ARTIST = "json_extract(metadata, '$.artist')";

/**
 * Search by artist: a prefix range on the `json_extract(metadata, '$.artist')` index (so it stays
 * fast with 50k songs; case-sensitive), the query plan that proves it, and the artists with
 * their song counts (an index scan too).
 */
export function SearchScreen() {
  const db = useDb();
  const [term, setTerm] = createSignal('');
  const sql = `SELECT ${SONG_COLUMNS} FROM songs WHERE ${ARTIST} >= ? AND ${ARTIST} < ? ORDER BY ${ARTIST}, title LIMIT 100`;
  // [prefix, prefix + U+FFFF): every text that starts with the prefix, as a range on the index.
  const range = () => [term(), term() + '\uffff'];
  const results = createQuery<SongRow>(db, () => (term() ? sql : null), range, { initialValue: [] });
  const plan = createQuery<{ detail: string }>(db, () => (term() ? `EXPLAIN QUERY PLAN ${sql}` : null), range, {
    initialValue: [],
  });
  const artists = createQuery<{ artist: string; n: number }>(
    db,
    `SELECT ${ARTIST} AS artist, count(*) AS n FROM songs WHERE ${ARTIST} > '' GROUP BY ${ARTIST} ORDER BY n DESC, artist LIMIT 24`,
    [],
    { initialValue: [] },
  );
  return (
    <Screen id="search" title="Search by artist">
      <Tip>
        Artists are read from each song's JSON <code>metadata</code> through an expression index; the plan below shows
        SQLite using it.
      </Tip>
      <input
        class="search"
        type="search"
        placeholder="Artist starts with… (case-sensitive)"
        value={term()}
        onInput={(e) => setTerm(e.currentTarget.value)}
        aria-label="artist"
      />
      <Show
        when={term()}
        fallback={
          <div class="chips" aria-label="artists">
            <For each={artists()}>
              {(a) => (
                <button type="button" class="chip" onClick={() => setTerm(a.artist)}>
                  {a.artist} <span class="muted">{count(a.n)}</span>
                </button>
              )}
            </For>
          </div>
        }
      >
        <p class="muted plan" id="search-plan">
          {plan().map((p) => p.detail).join('; ')}
        </p>
        <SongList songs={term() ? results() : []} empty={`No artist starts with “${term()}”.`} />
      </Show>
    </Screen>
  );
}
