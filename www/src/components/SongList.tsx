import { For, Show, createSignal, type JSX } from 'solid-js';
import type { Database } from 'synqlite';
import { useDb } from '../db';
import { errorText } from '../lib/errors';
import { duration } from '../lib/format';
import { nowPlaying, setNowPlaying } from '../lib/player';
import type { SongRow } from '../types';
import { ErrorLine } from './common';
import { Cover } from './Cover';

/** Columns every song list selects (no blob bytes). */
export const SONG_COLUMNS =
  "id, title, artist, album, seconds, json_extract(metadata, '$.genre') AS genre, audio_sha256, cover_sha256";

/**
 * Deletes a song, its playlist entries, and its files unless another song uses them, atomically.
 */
export async function deleteSong(db: Database, song: SongRow): Promise<void> {
  await db.batch([
    ['DELETE FROM playlist_items WHERE song_id = ?', [song.id]],
    ['DELETE FROM songs WHERE id = ?', [song.id]],
    [
      `DELETE FROM media_blobs WHERE sha256 IN (?, ?)
         AND NOT EXISTS (SELECT 1 FROM songs WHERE audio_sha256 = media_blobs.sha256 OR cover_sha256 = media_blobs.sha256)`,
      [song.audio_sha256, song.cover_sha256],
    ],
  ]);
}

/** A list of songs with cover, play and delete. `empty` shows when there are none. */
export function SongList(props: { songs: SongRow[]; empty: JSX.Element }) {
  const db = useDb();
  const [error, setError] = createSignal<string>();
  const remove = async (s: SongRow) => {
    setError(undefined);
    try {
      if (nowPlaying() === s.id) setNowPlaying(null);
      await deleteSong(db, s);
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <>
      <ErrorLine error={error()} />
      <Show when={props.songs.length > 0} fallback={<p class="empty">{props.empty}</p>}>
        <ul class="songs">
          <For each={props.songs}>
            {(s) => (
              <li class="song" data-song-id={s.id} classList={{ playing: nowPlaying() === s.id }}>
                <Cover sha256={s.cover_sha256} />
                <div class="song-main">
                  <span class="song-title">{s.title}</span>
                  <span class="muted song-sub">
                    {[s.artist, s.album].filter(Boolean).join(' · ') || 'Unknown artist'}
                  </span>
                </div>
                <Show when={s.genre}>
                  <span class="chip">{s.genre}</span>
                </Show>
                <span class="muted num">{duration(s.seconds)}</span>
                <button type="button" class="ghost" title="play" disabled={!s.audio_sha256} onClick={() => setNowPlaying(s.id)}>
                  ▶ Play
                </button>
                <button type="button" class="ghost danger" title="delete" onClick={() => remove(s)}>
                  Delete
                </button>
              </li>
            )}
          </For>
        </ul>
      </Show>
    </>
  );
}
