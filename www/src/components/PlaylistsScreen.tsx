import { For, Show, createSignal, type Accessor } from 'solid-js';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { errorText } from '../lib/errors';
import { positionAtEnd, positionForMove, renumber } from '../lib/order';
import { href } from '../lib/router';
import type { PlaylistEntry, PlaylistRow } from '../types';
import { ErrorLine, Screen, Tip } from './common';
import { Cover } from './Cover';

/**
 * Playlists: create and delete them, add and remove songs, and reorder. Entries live in
 * `playlist_items` (primary key playlist_id + song_id) with a REAL `position`; a move writes only
 * the moved entry, at the midpoint of its new neighbours.
 */
export function PlaylistsScreen(props: { selected: string | undefined }) {
  const db = useDb();
  const [error, setError] = createSignal<string>();
  const playlists = createQuery<PlaylistRow>(
    db,
    `SELECT p.id, p.name, count(i.song_id) AS songs FROM playlists p LEFT JOIN playlist_items i ON i.playlist_id = p.id
     GROUP BY p.id ORDER BY p.created_at, p.name`,
    [],
    { initialValue: [] },
  );
  const selected = () => playlists().find((p) => p.id === props.selected);

  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = String(new FormData(form).get('name') ?? '').trim();
    const id = crypto.randomUUID();
    setError(undefined);
    try {
      await db.exec('INSERT INTO playlists (id, name, created_at) VALUES (?, ?, ?)', [id, name, Date.now()]);
      form.reset();
      location.hash = href('playlists', id);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <Screen id="playlists" title="Playlists">
      <Tip>Reordering writes one row: the moved song gets the midpoint of its new neighbours' positions.</Tip>
      <div class="split">
        <nav class="card playlist-list" aria-label="playlists">
          <form class="row" onSubmit={create} aria-label="new playlist">
            <input name="name" placeholder="New playlist" autocomplete="off" />
            <button type="submit">Create</button>
          </form>
          <ErrorLine error={error()} />
          <ul>
            <For each={playlists()} fallback={<li class="muted">No playlists yet.</li>}>
              {(p) => (
                <li>
                  <a href={href('playlists', p.id)} classList={{ active: p.id === props.selected }}>
                    {p.name} <span class="muted">{p.songs}</span>
                  </a>
                </li>
              )}
            </For>
          </ul>
        </nav>
        <Show when={selected()} fallback={<p class="empty">Pick or create a playlist.</p>}>
          {(p) => <PlaylistDetail playlist={p} />}
        </Show>
      </div>
    </Screen>
  );
}

function PlaylistDetail(props: { playlist: Accessor<PlaylistRow> }) {
  const db = useDb();
  const [error, setError] = createSignal<string>();
  const [filter, setFilter] = createSignal('');
  const id = () => props.playlist().id;
  const entries = createQuery<PlaylistEntry>(
    db,
    `SELECT i.song_id, i.position, s.title, s.artist, s.cover_sha256
     FROM playlist_items i LEFT JOIN songs s ON s.id = i.song_id
     WHERE i.playlist_id = ? ORDER BY i.position, i.song_id`,
    () => [id()],
    { initialValue: [] },
  );
  const candidates = createQuery<{ id: string; title: string; artist: string }>(
    db,
    `SELECT id, title, artist FROM songs
     WHERE (title LIKE ?2 OR artist LIKE ?2)
       AND id NOT IN (SELECT song_id FROM playlist_items WHERE playlist_id = ?1)
     ORDER BY rowid DESC LIMIT 8`,
    () => [id(), `%${filter()}%`],
    { initialValue: [] },
  );

  const run = async (f: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await f();
    } catch (e) {
      setError(errorText(e));
    }
  };

  const add = (songId: string) =>
    run(() =>
      db.exec('INSERT INTO playlist_items (playlist_id, song_id, position, added_at) VALUES (?, ?, ?, ?)', [
        id(),
        songId,
        positionAtEnd(entries().map((e) => e.position)),
        Date.now(),
      ]),
    );

  const remove = (songId: string) =>
    run(() => db.exec('DELETE FROM playlist_items WHERE playlist_id = ? AND song_id = ?', [id(), songId]));

  const move = (from: number, to: number) =>
    run(async () => {
      const list = entries();
      if (to < 0 || to >= list.length) return;
      const p = positionForMove(list.map((e) => e.position), from, to);
      const moved = list[from]!;
      if (p !== null) {
        await db.exec('UPDATE playlist_items SET position = ? WHERE playlist_id = ? AND song_id = ?', [p, id(), moved.song_id]);
        return;
      }
      // Neighbours too close for a midpoint: renumber the whole playlist in the new order.
      const order = list.map((e) => e.song_id).filter((s) => s !== moved.song_id);
      order.splice(to, 0, moved.song_id);
      await db.batch(
        renumber(order).map(([song, pos]) => [
          'UPDATE playlist_items SET position = ? WHERE playlist_id = ? AND song_id = ?',
          [pos, id(), song],
        ] as const),
      );
    });

  const deletePlaylist = () =>
    run(async () => {
      await db.batch([
        ['DELETE FROM playlist_items WHERE playlist_id = ?', [id()]],
        ['DELETE FROM playlists WHERE id = ?', [id()]],
      ]);
      location.hash = href('playlists');
    });

  return (
    <div class="card playlist" data-playlist-id={id()}>
      <header class="row spread">
        <h3>{props.playlist().name}</h3>
        <button type="button" class="ghost danger" onClick={deletePlaylist}>
          Delete playlist
        </button>
      </header>
      <ErrorLine error={error()} />
      <ol class="entries">
        <For each={entries()} fallback={<li class="muted">Empty: add songs below.</li>}>
          {(e, i) => (
            <li class="entry" data-song-id={e.song_id}>
              <Cover sha256={e.cover_sha256} />
              <span class="song-main">
                <span class="song-title">{e.title ?? '(song not available)'}</span>
                <span class="muted song-sub">{e.artist}</span>
              </span>
              <span class="muted num" title="position">
                {e.position}
              </span>
              <button type="button" class="ghost" aria-label="move up" disabled={i() === 0} onClick={() => move(i(), i() - 1)}>
                ↑
              </button>
              <button
                type="button"
                class="ghost"
                aria-label="move down"
                disabled={i() === entries().length - 1}
                onClick={() => move(i(), i() + 1)}
              >
                ↓
              </button>
              <button type="button" class="ghost danger" aria-label="remove" onClick={() => remove(e.song_id)}>
                ✕
              </button>
            </li>
          )}
        </For>
      </ol>
      <div class="add-to-playlist">
        <input
          type="search"
          placeholder="Find a song to add (title or artist)"
          value={filter()}
          onInput={(e) => setFilter(e.currentTarget.value)}
          aria-label="find a song to add"
        />
        <ul class="candidates">
          <For each={candidates()}>
            {(s) => (
              <li>
                <button type="button" class="ghost" onClick={() => add(s.id)}>
                  + {s.title} <span class="muted">{s.artist}</span>
                </button>
              </li>
            )}
          </For>
        </ul>
      </div>
    </div>
  );
}
