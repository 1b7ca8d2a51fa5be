//! Schema versioning: declarative schemas with automigration, and ordered migration files.
//!
//! Two ways to give a database its schema, both usable by the wasm worker and the sync server:
//!
//! - **Declarative** ([`apply_schema`]): one idempotent SQL text (`CREATE TABLE IF NOT EXISTS`,
//!   `CREATE INDEX IF NOT EXISTS`, `SELECT crsql_as_crr(...)`) under a name. Its version is
//!   [`cryb64`] of the text; `schema_name` and `schema_version` are kept in `crsql_master`
//!   (key/value), exactly where vlcn's crsqlite-wasm and ws-server keep them. A different text
//!   under the same name is refused (`SCHEMA_MISMATCH`) or automigrated ([`SchemaMode::Auto`]);
//!   a different name is refused (`SCHEMA_NAME_MISMATCH`) or wiped and applied
//!   ([`SchemaMode::Reset`]).
//! - **Ordered migrations** ([`apply_migrations`]): files named `<unix-ts>_<name>.sql`, applied
//!   in timestamp order, each in its own transaction together with its row in
//!   `schema_versions(filename, applied_at, checksum)`. [`check_migrations`] is the offline
//!   check behind `synqlite-server migrate check` (names, order, idempotence).
//!
//! [`schema_info`] reports both. Modules:
//! - `cryb64`: vlcn's schema hash;
//! - `declarative`: [`apply_schema`], reset;
//! - `automigrate`: the diff between the live database and the target schema built in a
//!   scratch in-memory database;
//! - `sql_text`: column definitions cut out of `CREATE TABLE` text (for `ADD COLUMN`);
//! - `migrations`: [`apply_migrations`], [`check_migrations`], migration file names.
//!
//! Bookkeeping tables: `crsql_master` (CRDT metadata, never announced to listeners) and
//! `schema_versions` (a user-visible table, as in seed 000; automigration and reset leave it
//! alone and drop it respectively).

mod automigrate;
mod cryb64;
mod declarative;
mod migrations;
mod sql_text;

pub use self::cryb64::{cryb64, cryb64_seeded};
pub use automigrate::MigrationReport;
pub use declarative::{apply_schema, SchemaMode, SchemaOutcome};
pub use migrations::{
    apply_migrations, check_migrations, migration_timestamp, CheckProblem, Migration,
    SCHEMA_VERSIONS,
};

use crate::error::Result;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

/// The key/value table holding `schema_name` and `schema_version` (shared with the CRDT layer).
pub const MASTER_TABLE: &str = "crsql_master";

/// What a database says about its schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaInfo {
    /// `schema_name` of the declarative schema, if one was applied.
    pub name: Option<String>,
    /// `schema_version` ([`cryb64`] of the schema text), if one was applied.
    pub version: Option<i64>,
    /// Applied migration files in the order they were applied: `(filename, applied_at)`, with
    /// `applied_at` an ISO-8601 UTC timestamp.
    pub migrations: Vec<(String, String)>,
}

/// Reads the schema name, version and applied migrations. Creates nothing.
pub fn schema_info(conn: &Connection) -> Result<SchemaInfo> {
    let (name, version) = stored_schema(conn)?;
    let migrations = if table_exists(conn, SCHEMA_VERSIONS)? {
        let mut stmt = conn.prepare(
            "SELECT filename, CAST(applied_at AS TEXT) FROM schema_versions ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(f, at)| (f, at.unwrap_or_default()))
            .collect()
    } else {
        Vec::new()
    };
    Ok(SchemaInfo {
        name,
        version,
        migrations,
    })
}

/// Whether a table named `name` exists in the main schema (case-insensitive).
pub(crate) fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        )?
        .query_row([name], |r| r.get(0))?;
    Ok(n > 0)
}

/// `schema_name` and `schema_version` as stored (None when absent or when there is no master
/// table yet). A version stored as text (some JS bindings store BigInts as text) is parsed.
pub(crate) fn stored_schema(conn: &Connection) -> Result<(Option<String>, Option<i64>)> {
    if !table_exists(conn, MASTER_TABLE)? {
        return Ok((None, None));
    }
    let get = |key: &str| -> Result<Option<Value>> {
        Ok(conn
            .prepare_cached("SELECT value FROM crsql_master WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, Value>(0))
            .optional()?)
    };
    let name = match get("schema_name")? {
        Some(Value::Text(s)) => Some(s),
        Some(Value::Integer(i)) => Some(i.to_string()),
        _ => None,
    };
    let version = match get("schema_version")? {
        Some(Value::Integer(i)) => Some(i),
        Some(Value::Text(s)) => s.trim().parse().ok(),
        Some(Value::Real(f)) => Some(f as i64),
        _ => None,
    };
    Ok((name, version))
}

/// Stores `schema_name` and `schema_version`, creating the master table when needed.
pub(crate) fn store_schema(conn: &Connection, name: &str, version: i64) -> Result<()> {
    ensure_master(conn)?;
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO crsql_master (key, value) VALUES (?1, ?2)")?;
    stmt.execute(rusqlite::params!["schema_name", name])?;
    stmt.execute(rusqlite::params!["schema_version", version])?;
    Ok(())
}

/// Creates `crsql_master` with the shape the CRDT layer gives it (for databases that never ran
/// `crdt::init`).
fn ensure_master(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS crsql_master (key TEXT PRIMARY KEY, value ANY)",
    )?;
    Ok(())
}

/// Runs `f` atomically: in a transaction of its own (`BEGIN IMMEDIATE`, so concurrent openers
/// queue up instead of both migrating) or, inside the caller's transaction, in a savepoint.
pub(crate) fn atomically<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let own = conn.is_autocommit();
    let (begin, commit, undo) = if own {
        ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
    } else {
        (
            "SAVEPOINT synqlite_schema",
            "RELEASE synqlite_schema",
            "ROLLBACK TO synqlite_schema; RELEASE synqlite_schema",
        )
    };
    conn.execute_batch(begin)?;
    let result = f().and_then(|v| {
        conn.execute_batch(commit)?;
        Ok(v)
    });
    if result.is_err() && !conn.is_autocommit() {
        // SQLite may already have rolled back (ON CONFLICT ROLLBACK); then nothing is left to undo.
        let _ = conn.execute_batch(undo);
    }
    result
}

/// Keeps `crsql_db_version()` from going back when replicated tables (and their clocks) are
/// dropped: peers remember our versions. No-op on connections without CRDT state.
pub(crate) fn pin_db_version(conn: &Connection) -> Result<()> {
    if let Ok(v) = crate::crdt::db_version(conn) {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO crsql_master (key, value) VALUES ('pre_compact_dbversion', \
             max(?1, coalesce((SELECT CAST(value AS INTEGER) FROM crsql_master \
             WHERE key = 'pre_compact_dbversion'), 0)))",
        )?
        .execute([v])?;
    }
    Ok(())
}

/// `"ident"` with embedded quotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Whether a schema object belongs to synqlite's bookkeeping rather than to the app.
pub(crate) fn is_internal(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("sqlite_")
        || crate::crdt::is_metadata_table(&lower)
        || lower == SCHEMA_VERSIONS
}
