-- create_config: app settings, one row (id = 'config') that every device shares.
CREATE TABLE IF NOT EXISTS config (
  id TEXT PRIMARY KEY NOT NULL DEFAULT 'config' CHECK (id = 'config'),
  theme TEXT NOT NULL DEFAULT 'system' CHECK (theme IN ('system', 'light', 'dark')),
  volume REAL NOT NULL DEFAULT 0.8 CHECK (volume BETWEEN 0 AND 1),
  show_tips INTEGER NOT NULL DEFAULT 1 CHECK (show_tips IN (0, 1))
);

SELECT crsql_as_crr('config');

-- The singleton row (every device inserts the same defaults; later writes win by clock).
INSERT OR IGNORE INTO config (id) VALUES ('config');
