//! Table introspection and the rules a replicated table (crr) must satisfy.
//!
//! The rules are cr-sqlite 0.16's (`tableinfo.rs`, `is_table_compatible`), checked in the same
//! order, each with its own message:
//! 1. no UNIQUE index besides the primary key (`pragma_index_list`: `origin != 'pk' AND unique`);
//! 2. a primary key whose columns are NOT NULL (`pragma_table_info`: `pk > 0 AND notnull`),
//!    so `id INTEGER PRIMARY KEY` must be written `id INTEGER PRIMARY KEY NOT NULL`;
//! 3. no nullable part of a composite primary key;
//! 4. no AUTOINCREMENT (`sqlite_master.sql LIKE '%autoincrement%'`);
//! 5. no checked foreign keys (`pragma_foreign_key_list` is empty);
//! 6. no NOT NULL column without a DEFAULT outside the primary key (`pragma_table_xinfo`).
//!
//! Added here: the table must exist (found case-insensitively, as SQL finds it, and recorded
//! under its stored spelling; change rows must then name tables and columns exactly, as in
//! cr-sqlite), be an ordinary table (not a view or virtual table), and not be CRDT metadata
//! itself.
//!
//! Metadata naming follows cr-sqlite: `<table>__crsql_clock` holds the clocks; `crsql_master`,
//! `crsql_site_id` and `crsql_tracked_peers` are shared. Unlike cr-sqlite there is no
//! `<table>__crsql_pks` lookaside table: the clock key is the packed primary key itself.

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

/// Suffix of clock tables.
pub const CLOCK_SUFFIX: &str = "__crsql_clock";

/// `"ident"` with embedded quotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled.
pub(crate) fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quoted name of a table's clock table.
pub(crate) fn clock_ident(table: &str) -> String {
    quote_ident(&format!("{table}{CLOCK_SUFFIX}"))
}

/// Whether `name` is CRDT metadata (never replicated, never announced to listeners).
pub fn is_metadata_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("crsql_") || lower.contains("__crsql_")
}

/// Columns of a table as the CRDT layer sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableInfo {
    /// Table name as stored in `sqlite_master`.
    pub name: String,
    /// Primary-key columns in primary-key order.
    pub pks: Vec<String>,
    /// Other (non-hidden) columns in declaration order.
    pub cols: Vec<String>,
}

impl TableInfo {
    /// Reads the columns of `table` (exact stored name). `None` when it has no columns.
    pub fn load(conn: &Connection, table: &str) -> Result<Option<TableInfo>> {
        let mut stmt =
            conn.prepare_cached("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        let mut rows = stmt.query([table])?;
        let mut pks: Vec<(i64, String)> = Vec::new();
        let mut cols = Vec::new();
        let mut any = false;
        while let Some(r) = rows.next()? {
            any = true;
            let name: String = r.get(0)?;
            let pk: i64 = r.get(1)?;
            if pk > 0 {
                pks.push((pk, name));
            } else {
                cols.push(name);
            }
        }
        if !any {
            return Ok(None);
        }
        pks.sort_by_key(|(k, _)| *k);
        Ok(Some(TableInfo {
            name: table.to_owned(),
            pks: pks.into_iter().map(|(_, n)| n).collect(),
            cols,
        }))
    }

    /// Index of non-primary-key column `name` (exact, case-sensitive, as cr-sqlite matches it).
    pub fn col_index(&self, name: &str) -> Option<usize> {
        self.cols.iter().position(|c| c == name)
    }

    /// `crsql_pack_columns(<prefix>"a", <prefix>"b")` over the primary-key columns.
    pub fn pack_expr(&self, prefix: &str) -> String {
        let cols: Vec<String> = self
            .pks
            .iter()
            .map(|c| format!("{prefix}{}", quote_ident(c)))
            .collect();
        format!("crsql_pack_columns({})", cols.join(", "))
    }

    /// `"a" = ?1 AND "b" = ?2`-style condition on the primary key, parameters from `first`.
    pub fn pk_where(&self, first: usize) -> String {
        self.pks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} IS ?{}", quote_ident(c), first + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// Names of the tables that have a clock table (replicated now or in the middle of an alter).
pub(crate) fn clock_table_names(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_\\_crsql\\_clock' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// Replicated tables: base tables that have a clock table.
pub(crate) fn crr_tables(conn: &Connection) -> Result<Vec<TableInfo>> {
    let mut out = Vec::new();
    for clock in clock_table_names(conn)? {
        let base = &clock[..clock.len() - CLOCK_SUFFIX.len()];
        if let Some(info) = TableInfo::load(conn, base)? {
            out.push(info);
        }
    }
    Ok(out)
}

fn unsupported(table: &str, rule: &str, advice: &str) -> Error {
    Error::CrrUnsupported(format!("cannot replicate table {table}: {rule}. {advice}"))
}

fn count(conn: &Connection, sql: &str, table: &str) -> Result<i64> {
    Ok(conn.prepare_cached(sql)?.query_row([table], |r| r.get(0))?)
}

/// Finds `table` in the main schema and checks every crr rule; returns the stored name.
pub(crate) fn validate(conn: &Connection, table: &str) -> Result<String> {
    if table.is_empty() {
        return Err(Error::CrrUnsupported(
            "cannot replicate a table with an empty name".into(),
        ));
    }
    let found: Option<(String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT name, type, sql FROM sqlite_master WHERE name = ?1 COLLATE NOCASE \
             AND type IN ('table', 'view') LIMIT 1",
        )?
        .query_row([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((name, kind, sql)) = found else {
        return Err(unsupported(
            table,
            "no such table",
            "Create the table (in the main schema) before making it replicated.",
        ));
    };
    let sql = sql.unwrap_or_default();
    if kind != "table"
        || sql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("CREATE VIRTUAL")
    {
        return Err(unsupported(
            &name,
            "not an ordinary table (view or virtual table)",
            "Only ordinary tables can be replicated.",
        ));
    }
    if is_metadata_table(&name) {
        return Err(unsupported(
            &name,
            "it is CRDT metadata (crsql_* or *__crsql_*)",
            "Replicate your own tables only.",
        ));
    }
    let t = name.as_str();
    let unique: Option<String> = conn
        .prepare_cached(
            "SELECT name FROM pragma_index_list(?1) WHERE origin != 'pk' AND \"unique\" = 1 LIMIT 1",
        )?
        .query_row([t], |r| r.get(0))
        .optional()?;
    if let Some(index) = unique {
        return Err(unsupported(
            t,
            &format!("UNIQUE index {index} besides the primary key"),
            "Two replicas can each insert rows that violate it; drop the UNIQUE constraint or index.",
        ));
    }
    let valid_pks = count(
        conn,
        "SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0 AND \"notnull\" > 0",
        t,
    )?;
    if valid_pks == 0 {
        return Err(unsupported(
            t,
            "no primary key, or a nullable primary key",
            "Declare a PRIMARY KEY whose columns are NOT NULL, e.g. `id INTEGER PRIMARY KEY NOT NULL`.",
        ));
    }
    let all_pks = count(
        conn,
        "SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0",
        t,
    )?;
    if all_pks != valid_pks {
        return Err(unsupported(
            t,
            "part of its composite primary key is nullable",
            "Declare every primary-key column NOT NULL.",
        ));
    }
    if sql.to_ascii_lowercase().contains("autoincrement") {
        return Err(unsupported(
            t,
            "AUTOINCREMENT primary key",
            "Concurrent replicas would give unrelated rows the same key; use a key that identifies \
             the row, or a random one such as a UUIDv7.",
        ));
    }
    let fks = count(conn, "SELECT count(*) FROM pragma_foreign_key_list(?1)", t)?;
    if fks != 0 {
        return Err(unsupported(
            t,
            "checked FOREIGN KEY constraint",
            "Replication can deliver rows in any order and violate it; keep the column but drop \
             its REFERENCES clause.",
        ));
    }
    let strict_col: Option<String> = conn
        .prepare_cached(
            "SELECT name FROM pragma_table_xinfo(?1) \
             WHERE \"notnull\" = 1 AND dflt_value IS NULL AND pk = 0 LIMIT 1",
        )?
        .query_row([t], |r| r.get(0))
        .optional()?;
    if let Some(col) = strict_col {
        return Err(unsupported(
            t,
            &format!("NOT NULL column {col} has no DEFAULT"),
            "Give it a DEFAULT or make it nullable, so peers on other schema versions can still \
             insert rows.",
        ));
    }
    Ok(name)
}
