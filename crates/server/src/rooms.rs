//! Rooms: one SQLite file per room under the data folder (`<data>/<room>.db`), opened on first
//! use with the migrations of the schema folder, shared by every connection of the room.
//!
//! - Database work runs on tokio's blocking pool ([`Room::with`]). A room has one connection
//!   behind an async, first-come-first-served lock that is taken *before* a blocking thread is
//!   used: a room's transactions are serialized, waiting connections wait as cheap tasks (not
//!   as parked blocking threads), and the async workers never block on SQLite.
//! - A `watch` channel per room tells its connections that the room changed. It coalesces: a
//!   connection that is busy (or slow) sees one notification however many commits it missed,
//!   so notifying never queues memory per connection.
//! - Rooms nobody uses are closed by [`Rooms::close_idle`] (the server calls it periodically)
//!   and every room is checkpointed and closed by [`Rooms::close_all`] at shutdown.

use crate::error::ServerError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use synqlite_core::crdt;
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::{apply_migrations, Migration};
use tokio::sync::{watch, OnceCell, OwnedMutexGuard};

/// How hard SQLite syncs the room files to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL` in WAL mode: safe against process crashes (a power loss may lose
    /// the last commits, never consistency).
    #[default]
    Normal,
    /// `synchronous=FULL`: also durable across power loss, slower commits.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Whether `name` is a valid room name: 1-64 of `[A-Za-z0-9_.-]`, starting with a letter or
/// digit, without `..` (so no path separators, no parent folders, no hidden files).
pub fn valid_room(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        && !name.contains("..")
}

/// Opens (creating it if needed) a room database: WAL journal, the sync level, the CRDT
/// functions, then the migrations not applied yet.
pub fn open_room_db(
    path: &std::path::Path,
    migrations: &[Migration],
    synchronous: Synchronous,
) -> Result<Connection, ServerError> {
    let core = synqlite_core::Error::from;
    let mut conn = Connection::open(path).map_err(core)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(core)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "the room database is not in WAL mode");
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000;",
        synchronous.pragma()
    ))
    .map_err(core)?;
    prepare_db(&mut conn, migrations)?;
    Ok(conn)
}

/// Installs the CRDT functions on `conn` and applies the migrations not applied yet.
pub fn prepare_db(conn: &mut Connection, migrations: &[Migration]) -> Result<(), ServerError> {
    crdt::init(conn)?;
    apply_migrations(conn, migrations)?;
    Ok(())
}

/// A room's connection while a task uses it; rolls back a transaction the task left open (a
/// panic in the middle of one), so the next user always starts from a committed state.
struct Settled(OwnedMutexGuard<Connection>);

impl Drop for Settled {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            tracing::error!("a room task left a transaction open; rolling it back");
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// One room: its database and its change notifications.
pub struct Room {
    /// The room's name.
    pub name: String,
    conn: Arc<tokio::sync::Mutex<Connection>>,
    changed: watch::Sender<u64>,
    connections: AtomicUsize,
}

/// Counts a joined connection in its room while it lives ([`Room::join`]).
pub struct Joined(Arc<Room>);

impl Drop for Joined {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Room {
    /// Runs `f` with the room's connection on the blocking pool, after the room's earlier
    /// users (first come, first served). Cancelling the returned future does not interrupt
    /// `f` once it started: the lock is released when `f` returns.
    pub async fn with<T, F>(&self, f: F) -> Result<T, ServerError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> T + Send + 'static,
    {
        let guard = self.conn.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let conn = Settled(guard);
            f(&conn.0)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("database task failed: {e}")))
    }

    /// Tells the room's connections that the room database changed.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Counts a joined connection until the returned guard is dropped.
    pub fn join(self: &Arc<Self>) -> Joined {
        self.connections.fetch_add(1, Ordering::AcqRel);
        Joined(self.clone())
    }

    /// Number of joined connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// A receiver of the room's change notifications (the current state counts as seen).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

type Slot = Arc<OnceCell<Arc<Room>>>;

/// The rooms of a server.
pub struct Rooms {
    data: PathBuf,
    migrations: Arc<Vec<Migration>>,
    synchronous: Synchronous,
    /// Open (or opening) rooms. A slot is shared by everyone asking for the room while it
    /// opens, so a room is opened once and opening one room never delays the others.
    open: Mutex<HashMap<String, Slot>>,
    closed: AtomicBool,
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
            open: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Nothing panics while holding this lock; a poisoned map is still a valid map.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room `name`, opening (and creating) its database on first use.
    pub async fn get(&self, name: &str) -> Result<Arc<Room>, ServerError> {
        if !valid_room(name) {
            return Err(ServerError::InvalidRoom(name.to_owned()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(ServerError::ShuttingDown);
        }
        let slot = self.slots().entry(name.to_owned()).or_default().clone();
        let room = slot
            .get_or_try_init(|| async {
                let path = self.data.join(format!("{name}.db"));
                let migrations = self.migrations.clone();
                let synchronous = self.synchronous;
                let conn = tokio::task::spawn_blocking(move || {
                    open_room_db(&path, &migrations, synchronous)
                })
                .await
                .map_err(|e| ServerError::Internal(format!("opening room {name}: {e}")))?
                .inspect_err(|e| {
                    tracing::error!(room = name, code = e.code(), error = %e, "cannot open room");
                })?;
                tracing::info!(room = name, "room opened");
                Ok::<_, ServerError>(Arc::new(Room {
                    name: name.to_owned(),
                    conn: Arc::new(tokio::sync::Mutex::new(conn)),
                    changed: watch::channel(0).0,
                    connections: AtomicUsize::new(0),
                }))
            })
            .await?;
        Ok(room.clone())
    }

    /// Number of rooms open (or opening).
    pub fn open_count(&self) -> usize {
        self.slots().len()
    }

    /// Checkpoints and closes the rooms nobody holds (no connection, no request); returns how
    /// many were closed. A room asked for again later is simply reopened.
    pub async fn close_idle(&self) -> usize {
        let idle: Vec<Slot> = {
            let mut slots = self.slots();
            let names: Vec<String> = slots
                .iter()
                .filter(|(_, slot)| {
                    // Only the map holds the slot, and only the slot holds the room: nobody
                    // can reach it but us (taking a slot needs this lock).
                    Arc::strong_count(slot) == 1
                        && slot.get().is_none_or(|room| Arc::strong_count(room) == 1)
                })
                .map(|(name, _)| name.clone())
                .collect();
            names.iter().filter_map(|n| slots.remove(n)).collect()
        };
        let mut closed = 0;
        for slot in idle {
            if let Some(room) = slot.get() {
                close_room(room).await;
                closed += 1;
            }
        }
        closed
    }

    /// Refuses new rooms, then checkpoints and closes every open room (at shutdown, after the
    /// connections ended or the grace period ran out).
    pub async fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        let slots: Vec<Slot> = self.slots().drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Some(room) = slot.get() {
                close_room(room).await;
            }
        }
    }
}

/// Checkpoints a room's WAL into the database file (after its current user, if any).
async fn close_room(room: &Arc<Room>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_plain() {
        for ok in ["a", "demo", "Room_1", "x.y-z", "0", &"a".repeat(64)] {
            assert!(valid_room(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "/abs",
            ".hidden",
            "-x",
            "_x",
            "a..b",
            "é",
            "a\0b",
            "a:b",
            &"a".repeat(65),
            "a b",
        ] {
            assert!(!valid_room(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn rooms_open_once_close_when_idle_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let migrations = vec![Migration::new(
            "1700000000_t.sql",
            "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY NOT NULL, v TEXT);\n\
             SELECT crsql_as_crr('t');",
        )];
        let rooms = Rooms::new(dir.path().join("data"), migrations, Synchronous::Full).unwrap();
        assert!(matches!(
            rooms.get("../x").await,
            Err(ServerError::InvalidRoom(_))
        ));
        let (a, b) = tokio::join!(rooms.get("r"), rooms.get("r"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        a.with(|c| c.execute("INSERT INTO t VALUES (1, 'x')", []))
            .await
            .unwrap()
            .unwrap();
        // Held: not idle.
        assert_eq!(rooms.close_idle().await, 0);
        drop((a, b));
        assert_eq!(rooms.close_idle().await, 1);
        assert_eq!(rooms.open_count(), 0);
        let again = rooms.get("r").await.unwrap();
        let (n, mode, sync): (i64, String, i64) = again
            .with(|c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM t), (SELECT journal_mode FROM pragma_journal_mode), \
                     (SELECT synchronous FROM pragma_synchronous)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n, mode.as_str(), sync), (1, "wal", 2));
        // A task that leaves a transaction open (a bug or a panic) does not poison the room.
        let r: Result<(), _> = again
            .with(|c| {
                c.execute_batch("BEGIN; INSERT INTO t VALUES (2, 'y');")
                    .unwrap();
                panic!("boom");
            })
            .await;
        assert!(matches!(r, Err(ServerError::Internal(_))));
        let n: i64 = again
            .with(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        drop(again);
        rooms.close_all().await;
        assert!(matches!(
            rooms.get("r").await,
            Err(ServerError::ShuttingDown)
        ));
    }
}
