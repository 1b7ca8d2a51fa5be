//! A room's SQLite file: how it is opened, tuned and closed.
//!
//! - WAL journal, the operator's `synchronous` level, exclusive locking unless turned off (one
//!   process owns a room file, so no file-lock system calls per transaction; other processes
//!   cannot read it while the server runs), a bounded page cache, the CRDT
//!   functions, then the migrations not applied yet.
//! - **Incarnation**: each room database carries a random 16-byte incarnation id, sent to
//!   clients in `Welcome`; a client whose cursor belongs to another incarnation syncs again from
//!   the start (merging is idempotent, so nothing is duplicated). A new incarnation is drawn
//!   whenever the database may have gone back in time: it was not closed cleanly (a crash, a
//!   power loss under `synchronous=NORMAL`, a copy taken while it was open), or its
//!   `db_version` or incarnation differ from what the server wrote beside it at its last clean
//!   close (`<room>.db.epoch`: a restored backup).
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

const KEY_INCARNATION: &str = "synqlite.incarnation";
const KEY_OPEN: &str = "synqlite.open";

/// The file beside a room database that records its incarnation and `db_version` at the last
/// clean close.
fn epoch_path(db: &Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".epoch");
    p.into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn core(e: synqlite_core::rusqlite::Error) -> ServerError {
    ServerError::Core(e.into())
}

/// The room's incarnation for this run (see the module docs): kept when the database was
/// closed cleanly and matches its epoch file, else drawn anew; the database is then marked
/// open (durably) until [`close_clean`].
pub fn open_incarnation(conn: &Connection, db: &Path) -> Result<[u8; 16], ServerError> {
    let get = |key: &str| -> Result<Option<synqlite_core::rusqlite::types::Value>, ServerError> {
        conn.query_row(
            "SELECT value FROM crsql_master WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(core)
    };
    use synqlite_core::rusqlite::types::Value;
    use synqlite_core::rusqlite::OptionalExtension;
    let stored = match get(KEY_INCARNATION)? {
        Some(Value::Blob(b)) => <[u8; 16]>::try_from(b.as_slice()).ok(),
        _ => None,
    };
    let was_open = !matches!(get(KEY_OPEN)?, Some(Value::Integer(0)));
    let db_version = crdt::db_version(conn)?;
    let epoch = std::fs::read_to_string(epoch_path(db)).ok();
    let keep = match (stored, epoch) {
        (Some(inc), Some(epoch)) if !was_open => {
            epoch.trim() == format!("{} {db_version}", hex(&inc))
        }
        _ => false,
    };
    let inc = match (keep, stored) {
        (true, Some(inc)) => inc,
        _ => {
            let fresh: Vec<u8> = conn
                .query_row("SELECT randomblob(16)", [], |r| r.get(0))
                .map_err(core)?;
            let fresh = <[u8; 16]>::try_from(fresh.as_slice())
                .map_err(|_| ServerError::Internal("randomblob(16) gave another size".into()))?;
            if stored.is_some() {
                tracing::warn!(
                    path = %db.display(),
                    db_version,
                    "the room was not closed cleanly or was restored: new incarnation, its \
                     clients will sync again from the start"
                );
            }
            fresh
        }
    };
    // Durable before any client hears of this incarnation.
    let level: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(core)?;
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(core)?;
    let marked = conn.execute(
        "INSERT OR REPLACE INTO crsql_master (key, value) VALUES (?1, ?2), (?3, 1)",
        synqlite_core::rusqlite::params![KEY_INCARNATION, &inc[..], KEY_OPEN],
    );
    conn.execute_batch(&format!("PRAGMA synchronous = {level}"))
        .map_err(core)?;
    marked.map_err(core)?;
    Ok(inc)
}

/// Checkpoints the WAL into the database file.
pub fn checkpoint(conn: &Connection) -> Result<(), ServerError> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| ServerError::Core(e.into()))
}

/// Marks the room closed cleanly: checkpointed, flagged in the database, and its incarnation
/// and `db_version` written (and synced) to the epoch file.
pub fn close_clean(
    conn: &Connection,
    db: &Path,
    incarnation: &[u8; 16],
) -> Result<(), ServerError> {
    conn.execute(
        "INSERT OR REPLACE INTO crsql_master (key, value) VALUES (?1, 0)",
        [KEY_OPEN],
    )
    .map_err(core)?;
    checkpoint(conn)?;
    let db_version = crdt::db_version(conn)?;
    let path = epoch_path(db);
    let io = |source| ServerError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("epoch.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        writeln!(f, "{} {db_version}", hex(incarnation)).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}
