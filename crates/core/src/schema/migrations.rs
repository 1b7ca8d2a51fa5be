//! Ordered migrations: `<unix-ts>_<name>.sql` files applied once each, in timestamp order.
//!
//! Rules (seed 000's runner, made safe to interrupt):
//! - a name starts with a unix timestamp (ASCII digits) and `_`, then at least one character:
//!   `1718000000_create_songs.sql`; otherwise `MIGRATION_NAME` (also for duplicate names);
//! - files run in `(timestamp, name)` order; each one runs in its own transaction together
//!   with the insert of its `schema_versions` row, so a crash between two files leaves the first
//!   recorded and the second absent, and the next call continues with the second;
//! - `schema_versions(filename, applied_at, checksum)`: `checksum` is [`cryb64`] of the file's
//!   text; an applied file whose text changed is refused (`MIGRATION_CHANGED`) before anything
//!   runs: add a new migration instead of editing one that databases already ran;
//! - a failing file rolls back alone (the files before it stay applied) and the error
//!   (`MIGRATION_FAILED`) names the file and carries SQLite's message and code.
//!
//! [`check_migrations`] is the offline check for a folder of such files: names, order, and that
//! each file runs, and runs again, on an in-memory database.

use super::declarative::not_idempotent;
use super::{atomically, cryb64, table_exists};
use crate::crdt;
use crate::error::{Error, Result};
use crate::exec::exec;
use crate::params::Params;
use crate::result_codes;
use rusqlite::{Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};

/// The table recording applied migrations.
pub const SCHEMA_VERSIONS: &str = "schema_versions";

const CREATE_SCHEMA_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS schema_versions (
  filename TEXT PRIMARY KEY NOT NULL,
  applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  checksum INTEGER)";

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// File name, `<unix-ts>_<name>.sql`.
    pub name: String,
    /// Its SQL text.
    pub sql: String,
}

impl Migration {
    /// A migration from a file name and its text.
    pub fn new(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Migration {
            name: name.into(),
            sql: sql.into(),
        }
    }
}

/// The unix timestamp a migration file name starts with (`MIGRATION_NAME` if it does not).
pub fn migration_timestamp(name: &str) -> Result<u64> {
    let bad = |why: &str| {
        Error::MigrationName(format!(
            "bad migration name {name:?}: {why}; name migrations <unix-timestamp>_<name>.sql, \
             e.g. 1718000000_create_songs.sql"
        ))
    };
    let (ts, rest) = name
        .split_once('_')
        .ok_or_else(|| bad("no '_' after the timestamp"))?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("it does not start with a unix timestamp"));
    }
    if rest.is_empty() {
        return Err(bad("nothing after the timestamp"));
    }
    ts.parse()
        .map_err(|_| bad("the timestamp does not fit in 64 bits"))
}

/// Validates names (format, duplicates) and returns the migrations in application order.
fn ordered(migrations: &[Migration]) -> Result<Vec<(u64, &Migration)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(migrations.len());
    for m in migrations {
        let ts = migration_timestamp(&m.name)?;
        if !seen.insert(m.name.as_str()) {
            return Err(Error::MigrationName(format!(
                "migration {:?} is given twice",
                m.name
            )));
        }
        out.push((ts, m));
    }
    out.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    Ok(out)
}

/// Creates `schema_versions` if needed (and its `checksum` column in a seed-000 table).
fn ensure_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(CREATE_SCHEMA_VERSIONS)?;
    let has_checksum: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('schema_versions') WHERE name = 'checksum'",
        [],
        |r| r.get(0),
    )?;
    if has_checksum == 0 {
        conn.execute_batch("ALTER TABLE schema_versions ADD COLUMN checksum INTEGER")?;
    }
    Ok(())
}

/// Applied files and their checksums (None: recorded without one).
fn applied(conn: &Connection) -> Result<HashMap<String, Option<i64>>> {
    if !table_exists(conn, SCHEMA_VERSIONS)? {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare("SELECT filename, checksum FROM schema_versions")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
    Ok(rows)
}

/// Applies the migrations not applied yet, in timestamp order, each in its own transaction
/// (see the module docs). Returns the names applied by this call, in order.
pub fn apply_migrations(conn: &Connection, migrations: &[Migration]) -> Result<Vec<String>> {
    let order = ordered(migrations)?;
    let done = applied(conn)?;
    let changed: Vec<String> = order
        .iter()
        .filter_map(|(_, m)| {
            let stored = (*done.get(&m.name)?)?;
            let now = cryb64(&m.sql);
            (stored != now)
                .then(|| format!("{} (applied with checksum {stored}, now {now})", m.name))
        })
        .collect();
    if !changed.is_empty() {
        return Err(Error::MigrationChanged(format!(
            "already applied migration(s) changed: {}; never edit an applied migration, add a \
             new one instead",
            changed.join(", ")
        )));
    }
    let mut ran = Vec::new();
    for (_, m) in order
        .into_iter()
        .filter(|(_, m)| !done.contains_key(&m.name))
    {
        let checksum = cryb64(&m.sql);
        let applied_now = atomically(conn, || {
            ensure_table(conn)?;
            // Another connection may have applied it since we looked.
            let there: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM schema_versions WHERE filename = ?1")?
                .query_row([&m.name], |r| r.get(0))
                .optional()?;
            if there.is_some() {
                return Ok(false);
            }
            exec(conn, &m.sql, &Params::None).map_err(|e| failed(&m.name, e))?;
            conn.prepare_cached(
                "INSERT INTO schema_versions (filename, checksum) VALUES (?1, ?2)",
            )?
            .execute(rusqlite::params![m.name, checksum])
            .map_err(|e| failed(&m.name, e.into()))?;
            Ok(true)
        })?;
        if applied_now {
            ran.push(m.name.clone());
        }
    }
    Ok(ran)
}

/// `MIGRATION_FAILED` for file `name`, keeping SQLite's code and message.
fn failed(name: &str, e: Error) -> Error {
    let extended_code = match &e {
        Error::Sqlite { extended_code, .. } => *extended_code,
        Error::MigrationFailed { extended_code, .. } => *extended_code,
        _ => rusqlite::ffi::SQLITE_ERROR,
    };
    Error::MigrationFailed {
        file: name.to_owned(),
        extended_code,
        message: format!(
            "migration {name} failed ({}): {e}",
            result_codes::extended_name(extended_code)
        ),
    }
}

/// A problem [`check_migrations`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    /// The file concerned.
    pub file: String,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// Checks a set of migration files without a real database: every name has the
/// `<unix-ts>_<name>` form, no two files share a name or a timestamp (their order would be
/// ambiguous), name order equals timestamp order, and, on a fresh in-memory database prepared with `crdt::init`, each file runs
/// in order and runs a second time without error (idempotence). Stops at the first file that
/// fails to run (later files depend on it). An empty result means all is well.
pub fn check_migrations(migrations: &[Migration]) -> Result<Vec<CheckProblem>> {
    let mut problems = Vec::new();
    let problem = |file: &str, message: String| CheckProblem {
        file: file.to_owned(),
        message,
    };
    let mut valid = Vec::new();
    let mut names = HashSet::new();
    let mut stamps: HashMap<u64, &str> = HashMap::new();
    for m in migrations {
        match migration_timestamp(&m.name) {
            Err(e) => problems.push(problem(&m.name, e.to_string())),
            Ok(_) if !names.insert(m.name.as_str()) => {
                problems.push(problem(&m.name, "the name is given twice".into()))
            }
            Ok(ts) => {
                if let Some(other) = stamps.insert(ts, &m.name) {
                    problems.push(problem(
                        &m.name,
                        format!(
                            "shares timestamp {ts} with {other}: give each migration its own \
                             timestamp so the order is explicit"
                        ),
                    ));
                }
                valid.push(m.clone());
            }
        }
    }
    // Tools that list files by name (a shell glob, `import.meta.glob`) must see the same order.
    let mut by_name: Vec<&Migration> = valid.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    let by_time = ordered(&valid)?;
    if let Some((named, (_, timed))) = by_name
        .iter()
        .zip(&by_time)
        .find(|(named, (_, timed))| named.name != timed.name)
    {
        problems.push(problem(
            &timed.name,
            format!(
                "sorts after {} by name but runs before it by timestamp: give every migration a                  timestamp with the same number of digits (10-digit unix seconds)",
                named.name
            ),
        ));
    }
    let mut db = Connection::open_in_memory()?;
    crdt::init(&mut db)?;
    for (_, m) in ordered(&valid)? {
        if let Err(e) = exec(&db, &m.sql, &Params::None) {
            problems.push(problem(
                &m.name,
                format!("fails on a fresh database after the files before it: {e}"),
            ));
            break;
        }
        if let Err(e) = exec(&db, &m.sql, &Params::None) {
            let message = not_idempotent(&format!("migration {}", m.name), &e).to_string();
            problems.push(problem(&m.name, message));
        }
    }
    Ok(problems)
}
