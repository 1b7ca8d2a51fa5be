//! Rooms: one SQLite file per room under the data folder, opened on first use with the
//! migrations of the schema folder, shared by every connection of the room.
//!
//! Database work runs on tokio's blocking pool ([`Room::with`]) under the room's mutex, so one
//! room's transactions are serialized and never block the async workers. A `watch` channel
//! per room tells its connections that the room changed (coalescing: a slow connection sees
//! one notification, however many commits it missed).

use crate::error::ServerError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use synqlite_core::crdt;
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::{apply_migrations, Migration};
use tokio::sync::watch;

/// How hard SQLite syncs the room files to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL` in WAL mode: safe against process crashes.
    #[default]
    Normal,
    /// `synchronous=FULL`: also safe against power loss, slower commits.
    Full,
}

/// Whether `name` is a valid room name: 1-64 of `[A-Za-z0-9_.-]`, starting with a letter or
/// digit (so no `..`, no separators, no hidden files).
pub fn valid_room(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        && !name.contains("..")
}

/// One room: its database and its change notifications.
pub struct Room {
    /// The room's name.
    pub name: String,
    conn: Mutex<Connection>,
    changed: watch::Sender<u64>,
}

impl Room {
    /// Runs `f` with the room's connection on the blocking pool.
    pub async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, ServerError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> T + Send + 'static,
    {
        let room = self.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves SQLite consistent (the transaction rolls
            // back with the statement), so a poisoned lock is still usable.
            let conn = room.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("database task failed: {e}")))
    }

    /// Tells the room's connections that the room database changed.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver of the room's change notifications.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// The rooms of a server.
pub struct Rooms {
    data: PathBuf,
    migrations: Arc<Vec<Migration>>,
    synchronous: Synchronous,
    open: tokio::sync::Mutex<HashMap<String, Arc<Room>>>,
}

impl Rooms {
    /// Rooms stored under `data` (created if missing) with `migrations` applied on open.
    pub fn new(
        data: PathBuf,
        migrations: Vec<Migration>,
        synchronous: Synchronous,
    ) -> Result<Rooms, ServerError> {
        std::fs::create_dir_all(&data).map_err(|source| ServerError::Io {
            path: data.display().to_string(),
            source,
        })?;
        Ok(Rooms {
            data,
            migrations: Arc::new(migrations),
            synchronous,
            open: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The room `name`, opening (and creating) its database on first use.
    pub async fn get(&self, name: &str) -> Result<Arc<Room>, ServerError> {
        if !valid_room(name) {
            return Err(ServerError::InvalidRoom(name.to_owned()));
        }
        let mut open = self.open.lock().await;
        if let Some(room) = open.get(name) {
            return Ok(room.clone());
        }
        let path = self.data.join(format!("{name}.db"));
        let migrations = self.migrations.clone();
        let synchronous = self.synchronous;
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, ServerError> {
            let mut conn = Connection::open(&path).map_err(synqlite_core::Error::from)?;
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000;",
                match synchronous {
                    Synchronous::Normal => "NORMAL",
                    Synchronous::Full => "FULL",
                }
            ))
            .map_err(synqlite_core::Error::from)?;
            crdt::init(&mut conn)?;
            apply_migrations(&conn, &migrations)?;
            Ok(conn)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("opening room {name}: {e}")))??;
        tracing::info!(room = name, "room opened");
        let room = Arc::new(Room {
            name: name.to_owned(),
            conn: Mutex::new(conn),
            changed: watch::channel(0).0,
        });
        open.insert(name.to_owned(), room.clone());
        Ok(room)
    }

    /// Checkpoints and closes every open room (at shutdown, after the connections ended).
    pub async fn close_all(&self) {
        let rooms: Vec<Arc<Room>> = self.open.lock().await.drain().map(|(_, r)| r).collect();
        for room in rooms {
            let name = room.name.clone();
            let done = room
                .with(|conn| conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
                .await;
            match done {
                Ok(Ok(())) => tracing::info!(room = name, "room closed"),
                Ok(Err(e)) => tracing::warn!(room = name, error = %e, "checkpoint failed"),
                Err(e) => tracing::warn!(room = name, error = %e, "checkpoint failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_room;

    #[test]
    fn room_names_are_plain() {
        for ok in ["a", "demo", "Room_1", "x.y-z", &"a".repeat(64)] {
            assert!(valid_room(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "-x",
            "a..b",
            "é",
            &"a".repeat(65),
            "a b",
        ] {
            assert!(!valid_room(bad), "{bad}");
        }
    }
}
