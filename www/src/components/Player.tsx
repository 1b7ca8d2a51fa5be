import { Show, createEffect } from 'solid-js';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { useConfig } from '../lib/config';
import { createMediaBlob, createObjectUrl } from '../lib/media';
import { nowPlaying, setNowPlaying } from '../lib/player';
import type { SongRow } from '../types';
import { Cover } from './Cover';

/**
 * The player bar: the song picked with "Play", its audio read from `media_blobs` into an object
 * URL (revoked when another song is picked, the song is deleted, or the player closes), at the
 * volume from the config row.
 */
export function Player() {
  const db = useDb();
  const config = useConfig();
  const rows = createQuery<SongRow>(
    db,
    () => (nowPlaying() ? 'SELECT id, title, artist, album, seconds, NULL AS genre, audio_sha256, cover_sha256 FROM songs WHERE id = ?' : null),
    () => [nowPlaying()],
    { initialValue: [] },
  );
  const song = () => {
    const s = rows()[0];
    return s && s.id === nowPlaying() ? s : undefined;
  };
  const src = createObjectUrl(createMediaBlob(db, () => song()?.audio_sha256));
  let audio: HTMLAudioElement | undefined;
  createEffect(() => {
    if (audio) audio.volume = config.row().volume;
  });
  return (
    <Show when={song()}>
      {(s) => (
        <footer class="player" aria-label="player">
          <Cover sha256={s().cover_sha256} />
          <div class="player-title">
            <strong>{s().title}</strong>
            <span class="muted">{s().artist}</span>
          </div>
          <Show when={src()} fallback={<span class="muted">{s().audio_sha256 ? 'audio not synced yet…' : 'no audio file'}</span>}>
            {(u) => <audio ref={audio} controls autoplay src={u()} onLoadedMetadata={(e) => (e.currentTarget.volume = config.row().volume)} />}
          </Show>
          <button type="button" class="ghost" onClick={() => setNowPlaying(null)} aria-label="close player">
            ✕
          </button>
        </footer>
      )}
    </Show>
  );
}
