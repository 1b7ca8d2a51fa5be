/** Row shapes of the demo's tables (schema/*.sql at the repository root). */

/** A song as the lists show it (no blob bytes). */
export interface SongRow {
  id: string;
  title: string;
  artist: string;
  album: string;
  seconds: number;
  genre: string | null;
  audio_sha256: string | null;
  cover_sha256: string | null;
}

/** A file in `media_blobs`, content-addressed by the sha256 (hex) of `data`. */
export interface MediaBlob {
  sha256: string;
  mime: string;
  data: Uint8Array | null;
}

export interface PlaylistRow {
  id: string;
  name: string;
  songs: number;
}

/** A playlist entry joined with its song (which may be missing: deleted, or not synced yet). */
export interface PlaylistEntry {
  song_id: string;
  position: number;
  title: string | null;
  artist: string | null;
  cover_sha256: string | null;
}

export type Theme = 'system' | 'light' | 'dark';

/** The `config` singleton row (id = 'config'). */
export interface ConfigRow {
  theme: Theme;
  volume: number;
  show_tips: number;
}
