//! Rooms: one SQLite file per room under the data folder (`<data>/<room>.db`), opened on first
//! use with the migrations of the schema folder, each served by its own thread.
//!
//! - [`store`]: opening, tuning and checkpointing a room file.
//! - [`actor`]: the room's thread, sole user of its connection and keeper of its clients'
//!   sessions (group commit, fan-out of committed rows from memory).
//! - [`Rooms`]: the open rooms. A room is opened once however many ask for it at the same
//!   time, at most `max_rooms_open` are open (idle rooms are closed to make room, else the
//!   newcomer gets `SERVER_BUSY`), rooms nobody uses are closed by [`Rooms::close_idle`] (the
//!   server calls it periodically), and every room is checkpointed and closed by
//!   [`Rooms::close_all`] at shutdown.

pub mod actor;
pub mod store;

pub use actor::{Cmd, OutQueue, Outbound, Refusal, Ticket};
pub use store::{open_room_db, prepare_db, Synchronous};

use crate::error::ServerError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::Migration;
use synqlite_core::sync::{Changes, Hello, ServerOptions};
use tokio::sync::{mpsc, oneshot, OnceCell};

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

/// One open room: a handle to its thread.
pub struct Room {
    /// The room's name.
    pub name: String,
    tx: mpsc::UnboundedSender<Cmd>,
    connections: AtomicUsize,
}

/// Counts a joined connection in its room while it lives ([`Room::joined`]).
pub struct Joined(Arc<Room>);

impl Drop for Joined {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

fn gone() -> ServerError {
    ServerError::Internal("the room closed".into())
}

impl Room {
    fn cmd(&self, c: Cmd) -> Result<(), ServerError> {
        self.tx.send(c).map_err(|_| gone())
    }

    /// Runs `f` with the room's connection on the room's thread, after the commands queued
    /// before it. A panic in `f` is an `Internal` error (and an open transaction it left is
    /// rolled back); the room's clients are told about any change `f` committed.
    pub async fn with<T, F>(&self, f: F) -> Result<T, ServerError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.cmd(Cmd::Run(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        })))?;
        rx.await
            .map_err(|_| ServerError::Internal("a room task panicked or the room closed".into()))
    }

    /// Joins the room with `hello`; the room's frames for the client go to `out`.
    pub async fn join(&self, hello: Hello, out: OutQueue) -> Result<Ticket, Refusal> {
        let (reply, rx) = oneshot::channel();
        let refused = |e: ServerError| {
            let f = crate::connection::error_frame(&e);
            (e, f)
        };
        self.cmd(Cmd::Join {
            hello: Box::new(hello),
            out,
            reply,
        })
        .map_err(refused)?;
        rx.await.map_err(|_| refused(gone()))?
    }

    /// Applies an uploaded chunk; resolves after the commit, with the rows applied.
    pub async fn upload(&self, id: u64, changes: Changes) -> Result<usize, ServerError> {
        let (reply, rx) = oneshot::channel();
        self.cmd(Cmd::Upload { id, changes, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// The client acknowledged a `Changes` frame.
    pub fn ack(&self, id: u64) {
        let _ = self.cmd(Cmd::Ack { id });
    }

    /// The connection `id` ended.
    pub fn leave(&self, id: u64) {
        let _ = self.cmd(Cmd::Leave { id });
    }

    /// Counts a joined connection until the returned guard is dropped.
    pub fn joined(self: &Arc<Self>) -> Joined {
        self.connections.fetch_add(1, Ordering::AcqRel);
        Joined(self.clone())
    }

    /// Number of joined connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.cmd(Cmd::Close(done)).is_ok() {
            let _ = rx.await;
        }
    }
}

type Slot = Arc<OnceCell<Arc<Room>>>;

/// How rooms are opened.
#[derive(Debug, Clone, Copy)]
pub struct RoomOptions {
    /// Disk sync level.
    pub synchronous: Synchronous,
    /// Exclusive locking (no other process can read a room file while it is open).
    pub exclusive: bool,
    /// Rooms open at once.
    pub max_open: usize,
    /// Chunk cap and window of the sessions.
    pub session: ServerOptions,
}

impl Default for RoomOptions {
    fn default() -> Self {
        RoomOptions {
            synchronous: Synchronous::Normal,
            exclusive: true,
            max_open: crate::limits::Limits::default().max_rooms_open,
            session: ServerOptions::default(),
        }
    }
}

/// The rooms of a server.
pub struct Rooms {
    data: PathBuf,
    migrations: Arc<Vec<Migration>>,
    opts: RoomOptions,
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
        opts: RoomOptions,
    ) -> Result<Rooms, ServerError> {
        std::fs::create_dir_all(&data).map_err(|source| ServerError::Io {
            path: data.display().to_string(),
            source,
        })?;
        store::tune_sqlite();
        Ok(Rooms {
            data,
            migrations: Arc::new(migrations),
            opts,
            open: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Nothing panics while holding this lock; a poisoned map is still a valid map.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of room `name`, making room for it under the cap.
    async fn slot(&self, name: &str) -> Result<Slot, ServerError> {
        for attempt in 0..2 {
            {
                let mut slots = self.slots();
                if let Some(s) = slots.get(name) {
                    return Ok(s.clone());
                }
                if slots.len() < self.opts.max_open.max(1) {
                    let s = Slot::default();
                    slots.insert(name.to_owned(), s.clone());
                    return Ok(s);
                }
            }
            if attempt == 0 && self.close_idle().await == 0 {
                break;
            }
        }
        Err(ServerError::ServerBusy(format!(
            "{} rooms are open, the most this server keeps open; retry later",
            self.opts.max_open
        )))
    }

    /// The room `name`, opening (and creating) its database on first use.
    pub async fn get(&self, name: &str) -> Result<Arc<Room>, ServerError> {
        if !valid_room(name) {
            return Err(ServerError::InvalidRoom(crate::limits::clip(name)));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(ServerError::ShuttingDown);
        }
        let slot = self.slot(name).await?;
        let opened = slot
            .get_or_try_init(|| async {
                let path = self.data.join(format!("{name}.db"));
                let migrations = self.migrations.clone();
                let opts = self.opts;
                let room_name = name.to_owned();
                let actor = tokio::task::spawn_blocking(move || {
                    let conn = open_room_db(&path, &migrations, opts.synchronous, opts.exclusive)?;
                    actor::Actor::new(room_name, conn, path, opts.session)
                })
                .await
                .map_err(|e| ServerError::Internal(format!("opening room {name}: {e}")))?
                .inspect_err(|e| {
                    tracing::error!(room = name, code = e.code(), error = %e, "cannot open room");
                })?;
                let (tx, rx) = mpsc::unbounded_channel();
                std::thread::Builder::new()
                    .name(format!("room {name}"))
                    .spawn(move || actor.run(rx))
                    .map_err(|e| ServerError::Internal(format!("room thread: {e}")))?;
                tracing::info!(room = name, "room opened");
                Ok::<_, ServerError>(Arc::new(Room {
                    name: name.to_owned(),
                    tx,
                    connections: AtomicUsize::new(0),
                }))
            })
            .await;
        match opened {
            Ok(room) => Ok(room.clone()),
            Err(e) => {
                // Forget the failed slot (if still ours) so a later attempt opens afresh.
                let mut slots = self.slots();
                if slots
                    .get(name)
                    .is_some_and(|s| Arc::ptr_eq(s, &slot) && s.get().is_none())
                {
                    slots.remove(name);
                }
                Err(e)
            }
        }
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
                        && slot.get().is_some_and(|room| Arc::strong_count(room) == 1)
                })
                .map(|(name, _)| name.clone())
                .collect();
            names.iter().filter_map(|n| slots.remove(n)).collect()
        };
        let mut closed = 0;
        for slot in idle {
            if let Some(room) = slot.get() {
                room.close().await;
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
                room.close().await;
            }
        }
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
        let rooms = Rooms::new(
            dir.path().join("data"),
            migrations,
            RoomOptions {
                synchronous: Synchronous::Full,
                ..RoomOptions::default()
            },
        )
        .unwrap();
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
