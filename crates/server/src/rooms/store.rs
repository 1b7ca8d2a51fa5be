//! A room's SQLite file: how it is opened, tuned and closed.
//!
//! - WAL journal, the operator's `synchronous` level, exclusive locking unless turned off (one
//!   process owns a room file, so no file-lock system calls per transaction; other processes
//!   cannot read it while the server runs), a bounded page cache, the CRDT
//!   functions, then the migrations not applied yet.
//! - [`tune_sqlite`] turns SQLite's global memory statistics off before the first connection
//!   opens: they take a process-wide mutex on every allocation, which every room thread would
//!   contend for.

use crate::error::ServerError;
use std::path::Path;
use std::sync::Once;
use synqlite_core::crdt;
use synqlite_core::rusqlite::{ffi, Connection};
use synqlite_core::schema::{apply_migrations, Migration};

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

/// Page cache of one room connection, in KiB (SQLite's default is 2 MiB; a server holds many
/// rooms, and a room's hot pages are the newest changes).
const ROOM_CACHE_KIB: i64 = 1024;

/// Turns SQLite's memory statistics off (process-wide; a no-op once SQLite was initialized,
/// e.g. by a test that opened a connection first).
pub fn tune_sqlite() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection exists in the server (or
        // returns SQLITE_MISUSE, changing nothing, when SQLite is already initialized).
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int);
        }
    });
}

/// Opens (creating it if needed) a room database; see the module docs.
pub fn open_room_db(
    path: &Path,
    migrations: &[Migration],
    synchronous: Synchronous,
    exclusive: bool,
) -> Result<Connection, ServerError> {
    tune_sqlite();
    let core = synqlite_core::Error::from;
    let mut conn = Connection::open(path).map_err(core)?;
    if exclusive {
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .map_err(core)?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(core)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "the room database is not in WAL mode");
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -{ROOM_CACHE_KIB};",
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

/// Checkpoints the WAL into the database file.
pub fn checkpoint(conn: &Connection) -> Result<(), ServerError> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| ServerError::Core(e.into()))
}
