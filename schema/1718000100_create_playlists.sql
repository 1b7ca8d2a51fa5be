-- create_playlists: playlists and their songs (composite primary key playlist_id + song_id).
CREATE TABLE IF NOT EXISTS playlists (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL DEFAULT 'New playlist' CHECK (length(trim(name)) > 0),
  created_at INTEGER NOT NULL DEFAULT 0
);

SELECT crsql_as_crr('playlists');

-- position: a sortable number; reordering writes the midpoint of the new neighbours, so a move
-- changes one row and concurrent moves merge.
CREATE TABLE IF NOT EXISTS playlist_items (
  playlist_id TEXT NOT NULL,
  song_id TEXT NOT NULL,
  position REAL NOT NULL DEFAULT 0,
  added_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (playlist_id, song_id)
);

CREATE INDEX IF NOT EXISTS playlist_items_order ON playlist_items (playlist_id, position);

SELECT crsql_as_crr('playlist_items');
