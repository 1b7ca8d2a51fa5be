//! Declarative schemas: apply, compare by name and version, automigrate or reset.
//!
//! Decision table (`stored` = what `crsql_master` holds, `wanted` = the caller's name and the
//! [`cryb64`](super::cryb64) of its text):
//!
//! | stored                     | Strict                 | Auto        | Reset            |
//! |----------------------------|------------------------|-------------|------------------|
//! | nothing                    | apply                  | apply       | apply            |
//! | same name, same version    | no-op                  | no-op       | no-op            |
//! | same name, other version   | `SCHEMA_MISMATCH`      | automigrate | wipe, apply      |
//! | other name                 | `SCHEMA_NAME_MISMATCH` | same error  | wipe, apply      |
//!
//! Applying runs the schema twice: a schema that fails the second time cannot be re-run by
//! automigration, and the error (`SCHEMA_NOT_IDEMPOTENT`) says to use `IF NOT EXISTS`. Every
//! path that writes runs in one transaction, including storing the new name and version.

use super::automigrate::{self, MigrationReport};
use super::{atomically, is_internal, pin_db_version, quote_ident, store_schema, stored_schema};
use crate::crdt;
use crate::error::{Error, Result};
use crate::exec::exec;
use crate::params::Params;
use rusqlite::Connection;

/// What to do when the database holds a different schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaMode {
    /// Refuse: `SCHEMA_MISMATCH` (other version) or `SCHEMA_NAME_MISMATCH` (other name).
    #[default]
    Strict,
    /// Automigrate to a new version of the same schema name; refuse another name.
    Auto,
    /// Drop every table, view and trigger of the app and apply the schema from scratch.
    Reset,
}

impl SchemaMode {
    /// Parses the JS option spelling: `"strict"` (or empty), `"auto"`, `"reset"`.
    pub fn parse(s: &str) -> Result<SchemaMode> {
        match s {
            "" | "strict" => Ok(SchemaMode::Strict),
            "auto" => Ok(SchemaMode::Auto),
            "reset" => Ok(SchemaMode::Reset),
            other => Err(Error::InvalidArgument(format!(
                "unknown schema migration mode {other:?}: expected 'strict', 'auto' or 'reset'"
            ))),
        }
    }
}

/// What [`apply_schema`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaOutcome {
    /// The database had no schema; it was applied.
    Applied,
    /// The database already had this name and version.
    Unchanged,
    /// The database was automigrated from another version.
    Migrated(MigrationReport),
    /// The database's tables were dropped and the schema applied.
    Reset,
}

impl SchemaOutcome {
    /// Short name: `apply`, `noop`, `migrate`, `reset` (vlcn's `automigrateTo` spelling).
    pub fn as_str(&self) -> &'static str {
        match self {
            SchemaOutcome::Applied => "apply",
            SchemaOutcome::Unchanged => "noop",
            SchemaOutcome::Migrated(_) => "migrate",
            SchemaOutcome::Reset => "reset",
        }
    }
}

/// Brings the database to schema `name` with text `sql` (see the module docs for the rules).
///
/// On success `crsql_master` holds `schema_name = name` and `schema_version = cryb64(sql)`. On
/// failure nothing changed. Replicated tables need a connection prepared with `crdt::init`.
pub fn apply_schema(
    conn: &Connection,
    name: &str,
    sql: &str,
    mode: SchemaMode,
) -> Result<SchemaOutcome> {
    if name.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "the schema name must not be empty".into(),
        ));
    }
    let version = super::cryb64(sql);
    let unchanged = |stored: &(Option<String>, Option<i64>)| {
        stored.0.as_deref() == Some(name) && stored.1 == Some(version)
    };
    // Fast path for every open after the first: a read, no write lock.
    if unchanged(&stored_schema(conn)?) {
        return Ok(SchemaOutcome::Unchanged);
    }
    atomically(conn, || {
        // Re-read under the write lock: another connection may have migrated meanwhile.
        let stored = stored_schema(conn)?;
        if unchanged(&stored) {
            return Ok(SchemaOutcome::Unchanged);
        }
        let outcome = match (stored, mode) {
            ((None, _), _) => {
                run_twice(conn, name, sql)?;
                SchemaOutcome::Applied
            }
            (_, SchemaMode::Reset) => {
                reset(conn)?;
                run_twice(conn, name, sql)?;
                SchemaOutcome::Reset
            }
            ((Some(stored_name), _), _) if stored_name != name => {
                return Err(Error::SchemaNameMismatch(format!(
                    "the database holds schema {stored_name:?}, not {name:?}; open it with \
                     migrate: 'reset' to drop its tables and apply {name:?}"
                )));
            }
            ((Some(_), stored_version), SchemaMode::Strict) => {
                let stored_version =
                    stored_version.map_or_else(|| "unknown".to_owned(), |v| v.to_string());
                return Err(Error::SchemaMismatch(format!(
                    "schema {name:?} changed: the database is at version {stored_version}, the \
                     app wants version {version}; open it with migrate: 'auto' to automigrate \
                     (or 'reset' to start over)"
                )));
            }
            ((Some(_), _), SchemaMode::Auto) => {
                SchemaOutcome::Migrated(automigrate::migrate(conn, name, sql)?)
            }
        };
        store_schema(conn, name, version)?;
        Ok(outcome)
    })
}

/// Runs `sql` as the schema `name`: its own errors carry the schema name.
pub(crate) fn run(conn: &Connection, name: &str, sql: &str) -> Result<()> {
    exec(conn, sql, &Params::None)
        .map(drop)
        .map_err(|e| e.context(&format!("schema {name:?}")))
}

/// Runs `sql` twice; the second run failing means the schema is not idempotent.
pub(crate) fn run_twice(conn: &Connection, name: &str, sql: &str) -> Result<()> {
    run(conn, name, sql)?;
    exec(conn, sql, &Params::None)
        .map(drop)
        .map_err(|e| not_idempotent(&format!("schema {name:?}"), &e))
}

/// The `SCHEMA_NOT_IDEMPOTENT` error for a schema (`what`: `schema "init"`) whose second run
/// failed with `e`.
pub(crate) fn not_idempotent(what: &str, e: &Error) -> Error {
    Error::SchemaNotIdempotent(format!(
        "{what} is not idempotent: running it a second time fails ({e}). Write \
         CREATE TABLE IF NOT EXISTS, CREATE INDEX IF NOT EXISTS, CREATE VIEW IF NOT EXISTS, \
         CREATE TRIGGER IF NOT EXISTS and INSERT OR IGNORE, so it can be re-run"
    ))
}

/// Drops every view, trigger and table of the app (replicated tables stop being replicated
/// first, so their clocks go too). CRDT metadata and the site id stay.
pub(crate) fn reset(conn: &Connection) -> Result<()> {
    pin_db_version(conn)?;
    let objects: Vec<(String, String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('view', 'trigger', 'table') \
             ORDER BY CASE type WHEN 'view' THEN 0 WHEN 'trigger' THEN 1 ELSE 2 END, name",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    };
    for (kind, name, table) in objects {
        let ours = kind == "table" && name.eq_ignore_ascii_case(super::SCHEMA_VERSIONS);
        if !ours && (is_internal(&name) || is_internal(&table)) {
            continue;
        }
        if kind == "table" && crdt::is_replicated(conn, &name)? {
            crdt::as_table(conn, &name)?;
        }
        let keyword = match kind.as_str() {
            "view" => "VIEW",
            "trigger" => "TRIGGER",
            _ => "TABLE",
        };
        conn.execute_batch(&format!("DROP {keyword} IF EXISTS {}", quote_ident(&name)))
            .map_err(|e| Error::from(e).context(&format!("reset: dropping {kind} {name}")))?;
    }
    Ok(())
}
