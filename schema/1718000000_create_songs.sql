-- create_songs: the media library's songs.
-- Replicated (cr-sqlite rules): TEXT primary key NOT NULL (ids are generated on the device, e.g.
-- crypto.randomUUID()), no other UNIQUE, no foreign keys, every NOT NULL column has a DEFAULT
-- that satisfies its CHECK (merges insert a row's columns one at a time, the others defaulted).
CREATE TABLE IF NOT EXISTS songs (
  id TEXT PRIMARY KEY NOT NULL,
  title TEXT NOT NULL DEFAULT 'Untitled' CHECK (length(trim(title)) > 0),
  artist TEXT NOT NULL DEFAULT '',
  album TEXT NOT NULL DEFAULT '',
  seconds INTEGER NOT NULL DEFAULT 0 CHECK (seconds >= 0),
  -- JSON object for everything else (the seed's JSONB column): '{}' instead of NULL.
  metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  -- sha256 of the audio file and the cover image in media_blobs (no FK: replicated tables
  -- cannot have them; a song may arrive before its blobs).
  audio_sha256 TEXT,
  cover_sha256 TEXT,
  created_at INTEGER NOT NULL DEFAULT 0
);

-- Search by artist inside the JSON metadata.
CREATE INDEX IF NOT EXISTS songs_metadata_artist ON songs (json_extract(metadata, '$.artist'));

SELECT crsql_as_crr('songs');
