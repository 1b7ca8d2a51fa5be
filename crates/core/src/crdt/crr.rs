//! Making a table replicated: clock table, local-write triggers, backfill.
//!
//! Clock table (one per crr), as cr-sqlite 0.16's `<table>__crsql_clock` but keyed by the packed
//! primary key instead of a `__crsql_pks` lookaside integer:
//!
//! ```sql
//! CREATE TABLE "<t>__crsql_clock" (
//!   key BLOB NOT NULL,            -- crsql_pack_columns(pk columns)
//!   col_name TEXT NOT NULL,       -- a non-pk column, or '-1' (the row's sentinel / causal length)
//!   col_version INTEGER NOT NULL,
//!   db_version INTEGER NOT NULL,
//!   site_id INTEGER NOT NULL DEFAULT 0,   -- ordinal in crsql_site_id; 0 = this database
//!   seq INTEGER NOT NULL,
//!   PRIMARY KEY (key, col_name)) WITHOUT ROWID, STRICT;
//! CREATE INDEX "<t>__crsql_clock_dbv_idx" ON "<t>__crsql_clock" (db_version, seq);
//! ```
//!
//! Triggers (`<t>__crsql_itrig`/`_utrig`/`_dtrig`, `WHEN crsql_internal_sync_bit() = 0`) are plain
//! SQL, compiled once into each writing statement, and do what cr-sqlite's
//! `crsql_after_insert/update/delete` do:
//! - insert: if a sentinel exists (re-insert after delete) move it to the next odd value; then
//!   each non-pk column's clock gets `col_version` 1, or +1 if it exists. A table with only pk
//!   columns gets a sentinel (1, or the next odd value). Like cr-sqlite 0.16, a first insert
//!   writes no sentinel row when the table has other columns: the causal length defaults to 1.
//! - update: each column whose value changed (type-strict, bytewise: `1` -> `1.0` is a change)
//!   gets +1. A primary-key change is a delete of the old key and an insert of the new one
//!   (cr-sqlite moves the old column clocks to the new key without re-stamping them, so peers
//!   that already synced never receive those columns; here they are re-recorded).
//! - delete: the sentinel becomes the next even value (2 if absent) and the other clocks of the
//!   row are dropped.
//!
//! Every clock write takes `crsql_next_db_version()` (one per transaction) and
//! `crsql_increment_and_get_seq()`. A `col_version` (or causal length) that would pass
//! [`MAX_ACCEPTED_VERSION`] aborts the write with `VERSION_EXHAUSTED` (`RAISE(ABORT, ...)` with
//! a message starting with [`VERSION_EXHAUSTED_PREFIX`]), as `crsql_next_db_version()` does for
//! the db_version. Databases whose triggers predate that check get new ones on
//! [`upgrade_triggers`] (run by `init`).
//!
//! Backfill (as cr-sqlite `backfill.rs`): rows present when the table becomes a crr get a clock
//! per non-pk column (`col_version` 1, the next db_version); pk-only tables get a sentinel.
//! Over an existing clock table (after an alter), rows without clocks get them the same way, and
//! every column of the other rows that has no clock and does not hold its default gets one.

use super::pack::{pack_refs, unpack};
use super::state::{self, Shared};
use super::tables::{self, clock_ident, quote_ident, quote_str, TableInfo, CLOCK_SUFFIX};
use super::MAX_ACCEPTED_VERSION;
use crate::error::{Error, Result, VERSION_EXHAUSTED_PREFIX};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

/// Runs `f` inside `SAVEPOINT name`, released on success and rolled back on failure. `name`
/// is a fixed identifier; the statements are prepared once per connection (`prepare_cached`).
pub(crate) fn with_savepoint<T>(
    conn: &Connection,
    name: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let run = |sql: String| -> Result<()> {
        conn.prepare_cached(&sql)?.execute([])?;
        Ok(())
    };
    run(format!("SAVEPOINT {name}"))?;
    match f() {
        Ok(v) => {
            run(format!("RELEASE {name}"))?;
            Ok(v)
        }
        Err(e) => {
            let _ = run(format!("ROLLBACK TO {name}"));
            let _ = run(format!("RELEASE {name}"));
            Err(e)
        }
    }
}

/// Makes `table` a replicated table (`crsql_as_crr`). Validates it first (each rule has its own
/// `CRR_UNSUPPORTED` message); does nothing more when it already is one.
pub fn as_crr(conn: &Connection, table: &str) -> Result<()> {
    let shared = state::get(conn)?;
    let name = tables::validate(conn, table)?;
    if is_crr(conn, &name)? {
        return Ok(());
    }
    with_savepoint(conn, "crsql_as_crr", || {
        create_crr(conn, &shared, &name, false)
    })
}

/// Whether `table` is currently replicated (its clock table and insert trigger exist).
pub fn is_crr(conn: &Connection, table: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM sqlite_master WHERE (type = 'trigger' AND name = ?1 || '__crsql_itrig') \
             OR (type = 'table' AND name = ?1 || '__crsql_clock')",
        )?
        .query_row([table], |r| r.get(0))?;
    Ok(n == 2)
}

pub(crate) fn clock_exists(conn: &Connection, table: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([format!("{table}{CLOCK_SUFFIX}")], |r| r.get(0))?;
    Ok(n > 0)
}

/// Creates the clock table, the triggers and backfills. `alter`: called by `commit_alter`
/// (backfilled clocks keep the current db_version, as in cr-sqlite, since every peer runs the
/// same migration).
pub(crate) fn create_crr(
    conn: &Connection,
    shared: &Shared,
    table: &str,
    alter: bool,
) -> Result<()> {
    let info = TableInfo::load(conn, table)?.ok_or_else(|| {
        Error::CrrUnsupported(format!("cannot replicate table {table}: no such table"))
    })?;
    let fresh = !clock_exists(conn, table)?;
    let clock = clock_ident(table);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {clock} (
           key BLOB NOT NULL, col_name TEXT NOT NULL, col_version INTEGER NOT NULL,
           db_version INTEGER NOT NULL, site_id INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL,
           PRIMARY KEY (key, col_name)) WITHOUT ROWID, STRICT;
         CREATE INDEX IF NOT EXISTS {idx} ON {clock} (db_version, seq);",
        idx = quote_ident(&format!("{table}{CLOCK_SUFFIX}_dbv_idx")),
    ))?;
    recreate_triggers(conn, &info)?;
    let dbv = if alter {
        "crsql_db_version()"
    } else {
        "crsql_next_db_version()"
    };
    if fresh {
        backfill_all(conn, &info, dbv)?;
    } else {
        backfill_incremental(conn, shared, &info, alter)?;
    }
    store_layout(conn, &info)
}

/// Drops the local-write triggers of `table` (`crsql_begin_alter`, `crsql_as_table`).
pub(crate) fn drop_triggers(conn: &Connection, table: &str) -> Result<()> {
    for suffix in ["__crsql_itrig", "__crsql_utrig", "__crsql_dtrig"] {
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS {}",
            quote_ident(&format!("{table}{suffix}"))
        ))?;
    }
    Ok(())
}

/// Drops and re-creates the local-write triggers of a table.
pub(crate) fn recreate_triggers(conn: &Connection, info: &TableInfo) -> Result<()> {
    drop_triggers(conn, &info.name)?;
    create_triggers(conn, info)
}

const NEXT_ODD: &str = "CASE col_version % 2 WHEN 0 THEN col_version + 1 ELSE col_version + 2 END";
const PLUS_ONE: &str = "col_version + 1";
const STAMP: &str = "db_version = excluded.db_version, seq = excluded.seq, site_id = 0";
const NEW_CLOCK: &str = "crsql_next_db_version(), crsql_increment_and_get_seq(), 0";

/// Version of the local-write triggers (`synqlite_triggers_version` in `crsql_master`; absent
/// means 1): 2 added the `col_version` range check.
pub(crate) const TRIGGERS_VERSION: i64 = 2;

/// `next` (a `col_version` computed from the stored one), or a `VERSION_EXHAUSTED` abort when
/// it would pass [`MAX_ACCEPTED_VERSION`].
fn bump(table: &str, next: &str) -> String {
    let msg = quote_str(&format!(
        "{VERSION_EXHAUSTED_PREFIX}a write to a row of table {table} needs a col_version or \
         causal length past {MAX_ACCEPTED_VERSION}, the largest version synqlite records (a \
         peer sent versions at the limit); that row cannot be changed any more"
    ));
    format!(
        "CASE WHEN ({next}) > {MAX_ACCEPTED_VERSION} THEN RAISE(ABORT, {msg}) ELSE ({next}) END"
    )
}

/// `(NEW."c" IS NOT OLD."c" ...)`: a type-strict, bytewise change test.
fn changed(col: &str) -> String {
    let c = quote_ident(col);
    format!("(NEW.{c} IS NOT OLD.{c} COLLATE BINARY OR typeof(NEW.{c}) != typeof(OLD.{c}))")
}

fn create_triggers(conn: &Connection, info: &TableInfo) -> Result<()> {
    let t = quote_ident(&info.name);
    let clock = clock_ident(&info.name);
    let name = |s: &str| quote_ident(&format!("{}{s}", info.name));
    let cols = "(key, col_name, col_version, db_version, seq, site_id)";
    let new_key = info.pack_expr("NEW.");
    let old_key = info.pack_expr("OLD.");
    let next_odd = bump(&info.name, NEXT_ODD);
    let plus_one = bump(&info.name, PLUS_ONE);

    // INSERT
    let mut body = String::new();
    if info.cols.is_empty() {
        body.push_str(&format!(
            "INSERT INTO {clock} {cols} VALUES ({new_key}, '-1', 1, {NEW_CLOCK}) \
             ON CONFLICT DO UPDATE SET col_version = {next_odd}, {STAMP};\n"
        ));
    } else {
        body.push_str(&format!(
            "UPDATE {clock} SET col_version = {next_odd}, db_version = crsql_next_db_version(), \
             seq = crsql_increment_and_get_seq(), site_id = 0 WHERE key = {new_key} AND col_name = '-1';\n"
        ));
        let rows = info
            .cols
            .iter()
            .map(|c| format!("({new_key}, {}, 1, {NEW_CLOCK})", quote_str(c)))
            .collect::<Vec<_>>()
            .join(", ");
        body.push_str(&format!(
            "INSERT INTO {clock} {cols} VALUES {rows} \
             ON CONFLICT DO UPDATE SET col_version = {plus_one}, {STAMP};\n"
        ));
    }
    conn.execute_batch(&format!(
        "CREATE TRIGGER {} AFTER INSERT ON {t} WHEN crsql_internal_sync_bit() = 0 BEGIN\n{body}END;",
        name("__crsql_itrig")
    ))?;

    // UPDATE
    let pk_changed = info
        .pks
        .iter()
        .map(|c| changed(c))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut body = format!(
        "INSERT INTO {clock} {cols} SELECT {old_key}, '-1', 2, {NEW_CLOCK} WHERE {pk_changed} \
         ON CONFLICT DO UPDATE SET col_version = {plus_one}, {STAMP};\n\
         DELETE FROM {clock} WHERE ({pk_changed}) AND key = {old_key} AND col_name != '-1';\n\
         INSERT INTO {clock} {cols} SELECT {new_key}, '-1', 1, {NEW_CLOCK} WHERE {pk_changed} \
         ON CONFLICT DO UPDATE SET col_version = {next_odd}, {STAMP};\n"
    );
    for c in &info.cols {
        body.push_str(&format!(
            "INSERT INTO {clock} {cols} SELECT {new_key}, {q}, 1, {NEW_CLOCK} WHERE {pk_changed} OR {ch} \
             ON CONFLICT DO UPDATE SET col_version = {plus_one}, {STAMP};\n",
            q = quote_str(c),
            ch = changed(c)
        ));
    }
    conn.execute_batch(&format!(
        "CREATE TRIGGER {} AFTER UPDATE ON {t} WHEN crsql_internal_sync_bit() = 0 BEGIN\n{body}END;",
        name("__crsql_utrig")
    ))?;

    // DELETE
    conn.execute_batch(&format!(
        "CREATE TRIGGER {} AFTER DELETE ON {t} WHEN crsql_internal_sync_bit() = 0 BEGIN\n\
         INSERT INTO {clock} {cols} VALUES ({old_key}, '-1', 2, {NEW_CLOCK}) \
         ON CONFLICT DO UPDATE SET col_version = {plus_one}, {STAMP};\n\
         DELETE FROM {clock} WHERE key = {old_key} AND col_name != '-1';\n\
         END;",
        name("__crsql_dtrig")
    ))?;
    Ok(())
}

/// Clocks for every row of a table whose clock table was just created.
fn backfill_all(conn: &Connection, info: &TableInfo, dbv: &str) -> Result<()> {
    let t = quote_ident(&info.name);
    let clock = clock_ident(&info.name);
    let key = info.pack_expr("src.");
    let sql = if info.cols.is_empty() {
        format!(
            "INSERT OR IGNORE INTO {clock} (key, col_name, col_version, db_version, seq, site_id) \
             SELECT {key}, '-1', 1, {dbv}, crsql_increment_and_get_seq(), 0 FROM {t} AS src"
        )
    } else {
        let values = info
            .cols
            .iter()
            .map(|c| format!("({})", quote_str(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT OR IGNORE INTO {clock} (key, col_name, col_version, db_version, seq, site_id) \
             SELECT {key}, c.column1, 1, {dbv}, crsql_increment_and_get_seq(), 0 \
             FROM {t} AS src CROSS JOIN (VALUES {values}) AS c"
        )
    };
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Reconciles an existing clock table with the rows of its table, in O(rows) with one pass
/// over each (cr-sqlite's NOT EXISTS join here is what made its alter take minutes, #247), plus
/// one index probe per row for each column that some row lacks a clock for:
/// - rows without any clock get clocks as in [`backfill_all`];
/// - `compact`: clocks of rows that no longer exist are dropped, tombstones (even sentinels) kept;
/// - every column gets a clock on the rows that have none for it and whose value is not the
///   column's default (cr-sqlite `backfill_missing_columns` / `fill_column`): added columns, and
///   columns written while the triggers were off on rows a merge created without them.
///
/// `alter` (from `commit_alter`): also compacts, and stamps the current db_version instead of
/// the next one.
pub(crate) fn backfill_incremental(
    conn: &Connection,
    shared: &Shared,
    info: &TableInfo,
    alter: bool,
) -> Result<()> {
    let compact = alter;
    let t = quote_ident(&info.name);
    let clock = clock_ident(&info.name);
    // Columns tracked per row in a bit set (the first 128; more are always filled).
    let tracked: HashMap<&str, usize> = info
        .cols
        .iter()
        .take(128)
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut known: HashMap<Vec<u8>, Known> = HashMap::new();
    {
        // In key order (the clock table's primary key: no sort): one entry per key, built from
        // consecutive rows.
        let mut stmt = conn.prepare(&format!(
            "SELECT key, col_name, col_version FROM {clock} ORDER BY key, col_name"
        ))?;
        let mut rows = stmt.query([])?;
        let mut current: Option<(Vec<u8>, Known)> = None;
        while let Some(r) = rows.next()? {
            let key = match r.get_ref(0)? {
                ValueRef::Blob(b) => b,
                _ => &[],
            };
            if current.as_ref().is_none_or(|(k, _)| k[..] != *key) {
                if let Some((k, e)) = current.take() {
                    known.insert(k, e);
                }
                current = Some((key.to_vec(), Known::default()));
            }
            let Some((_, entry)) = current.as_mut() else {
                continue;
            };
            let name = r.get_ref(1)?.as_str().unwrap_or("");
            if name == "-1" {
                entry.removable |= r.get::<_, i64>(2)? % 2 == 1;
            } else {
                entry.removable = true;
                if let Some(&i) = tracked.get(name) {
                    entry.cols |= 1 << i;
                }
            }
        }
        if let Some((k, e)) = current {
            known.insert(k, e);
        }
    }
    let mut missing: Vec<Vec<u8>> = Vec::new();
    let mut live = 0usize;
    // Per tracked column: how many rows of the table have a clock for it.
    let mut clocked = vec![0usize; tracked.len()];
    {
        let pk_list = info
            .pks
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!("SELECT {pk_list} FROM {t}"))?;
        let n = info.pks.len();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let mut vals: Vec<ValueRef<'_>> = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(r.get_ref(i)?);
            }
            let key = pack_refs(vals)?;
            live += 1;
            match known.get_mut(&key) {
                Some(entry) => {
                    entry.seen = true;
                    for (i, n) in clocked.iter_mut().enumerate() {
                        *n += usize::from(entry.cols & (1 << i) != 0);
                    }
                }
                None => missing.push(key),
            }
        }
    }
    if compact {
        // As cr-sqlite: of a row that is gone, only a tombstone (even sentinel) stays.
        let mut del = conn.prepare(&format!(
            "DELETE FROM {clock} WHERE key = ?1 AND (col_name != '-1' OR col_version % 2 = 1)"
        ))?;
        for (key, e) in &known {
            if !e.seen && e.removable {
                del.execute([key])?;
            }
        }
    }
    if !missing.is_empty() {
        let dbv = if alter {
            shared.db_version(conn)?
        } else {
            shared.next_db_version(conn, None)?
        };
        let mut ins = conn.prepare(&format!(
            "INSERT OR IGNORE INTO {clock} (key, col_name, col_version, db_version, seq, site_id) \
             VALUES (?1, ?2, 1, ?3, ?4, 0)"
        ))?;
        for key in &missing {
            if info.cols.is_empty() {
                ins.execute(rusqlite::params![key, "-1", dbv, shared.next_seq()])?;
            }
            for c in &info.cols {
                ins.execute(rusqlite::params![key, c, dbv, shared.next_seq()])?;
            }
        }
    }
    let dbv = if alter {
        "crsql_db_version()"
    } else {
        "crsql_next_db_version()"
    };
    let key = info.pack_expr("src.");
    for (i, c) in info.cols.iter().enumerate() {
        // Rows that had no clock at all got one for every column above.
        if clocked.get(i).is_some_and(|n| n + missing.len() == live) {
            continue;
        }
        let cond = match default_value(conn, &info.name, c)? {
            Some(d) => format!("WHERE src.{} IS NOT {d}", quote_ident(c)),
            None => String::new(),
        };
        conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO {clock} (key, col_name, col_version, db_version, seq, site_id) \
             SELECT {key}, {q}, 1, {dbv}, crsql_increment_and_get_seq(), 0 FROM {t} AS src {cond}",
            q = quote_str(c)
        ))?;
    }
    Ok(())
}

/// What [`backfill_incremental`] knows of a key of the clock table.
#[derive(Default)]
struct Known {
    /// Its row is in the table.
    seen: bool,
    /// It has clocks besides a tombstone (an even sentinel).
    removable: bool,
    /// Bit `i`: it has a clock for tracked column `i`.
    cols: u128,
}

/// The DEFAULT of a column as SQL text: `NULL` for nullable columns without one, `None` for
/// NOT NULL columns without one (cr-sqlite `get_dflt_value`).
fn default_value(conn: &Connection, table: &str, col: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>, i64)> = conn
        .prepare_cached(
            "SELECT dflt_value, \"notnull\" FROM pragma_table_info(?1) WHERE name = ?2",
        )?
        .query_row([table, col], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((Some(d), _)) => Some(d),
        Some((None, 0)) => Some("NULL".into()),
        _ => None,
    })
}

fn layout_keys(table: &str) -> (String, String) {
    (format!("synq.pks.{table}"), format!("synq.cols.{table}"))
}

fn pack_names(names: &[String]) -> Result<Vec<u8>> {
    pack_refs(names.iter().map(|n| ValueRef::Text(n.as_bytes())))
}

/// Remembers the primary-key and other columns of a crr (to detect changes at `commit_alter`).
pub(crate) fn store_layout(conn: &Connection, info: &TableInfo) -> Result<()> {
    let (pk_key, col_key) = layout_keys(&info.name);
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO crsql_master (key, value) VALUES (?1, ?2)")?;
    stmt.execute(rusqlite::params![pk_key, pack_names(&info.pks)?])?;
    stmt.execute(rusqlite::params![col_key, pack_names(&info.cols)?])?;
    Ok(())
}

/// The layout stored by [`store_layout`]: (primary-key columns, other columns).
pub(crate) fn load_layout(
    conn: &Connection,
    table: &str,
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let (pk_key, col_key) = layout_keys(table);
    let mut stmt = conn.prepare_cached("SELECT value FROM crsql_master WHERE key = ?1")?;
    let mut read = |k: &str| -> Result<Option<Vec<String>>> {
        let blob: Option<Vec<u8>> = stmt.query_row([k], |r| r.get(0)).optional()?;
        let Some(blob) = blob else { return Ok(None) };
        let names = unpack(&blob)?
            .into_iter()
            .map(|v| match v {
                rusqlite::types::Value::Text(s) => Ok(s),
                _ => Err(Error::Internal(format!("corrupt crr layout for {table}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(names))
    };
    Ok(match (read(&pk_key)?, read(&col_key)?) {
        (Some(p), Some(c)) => Some((p, c)),
        _ => None,
    })
}

/// Forgets the stored layout of `table`.
pub(crate) fn forget_layout(conn: &Connection, table: &str) -> Result<()> {
    let (pk_key, col_key) = layout_keys(table);
    conn.prepare_cached("DELETE FROM crsql_master WHERE key IN (?1, ?2)")?
        .execute([pk_key, col_key])?;
    Ok(())
}

/// Re-creates the local-write triggers of every replicated table when they are older than
/// [`TRIGGERS_VERSION`] (run by `init`; a read-only database keeps its triggers).
pub(crate) fn upgrade_triggers(conn: &Connection) -> Result<()> {
    let stored: Option<i64> = conn
        .prepare_cached(
            "SELECT CAST(value AS INTEGER) FROM crsql_master WHERE key = 'synqlite_triggers_version'",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    if stored.unwrap_or(1) >= TRIGGERS_VERSION || conn.is_readonly("main").unwrap_or(true) {
        return Ok(());
    }
    with_savepoint(conn, "crsql_upgrade", || {
        for info in tables::crr_tables(conn)? {
            // Tables between begin_alter and commit_alter have no triggers; commit_alter makes
            // current ones.
            if is_crr(conn, &info.name)? {
                recreate_triggers(conn, &info)?;
            }
        }
        conn.execute(
            "INSERT OR REPLACE INTO crsql_master (key, value) VALUES ('synqlite_triggers_version', ?1)",
            [TRIGGERS_VERSION],
        )?;
        Ok(())
    })
}
