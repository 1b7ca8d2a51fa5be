-- create_media_blobs: audio files and cover images, content-addressed by their sha256 (hex).
CREATE TABLE IF NOT EXISTS media_blobs (
  sha256 TEXT PRIMARY KEY NOT NULL CHECK (length(sha256) = 64),
  mime TEXT NOT NULL DEFAULT 'application/octet-stream',
  size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  data BLOB
);

SELECT crsql_as_crr('media_blobs');
