//! Schema changes on replicated tables: `crsql_begin_alter` / `crsql_commit_alter`, and
//! `crsql_as_table` (stop replicating).
//!
//! As in cr-sqlite 0.16 (`crsqlite.c`, `alter.rs`): `begin_alter` opens `SAVEPOINT alter_crr`
//! and drops the table's triggers; the caller alters the table; `commit_alter` compacts the
//! clocks, re-creates the triggers, backfills, and releases the savepoint (on failure it rolls
//! back to it, restoring the table as it was).
//!
//! Compaction:
//! - primary-key columns changed: the clock table is dropped and rebuilt (every row identity
//!   changed), backfilled at the current db_version;
//! - dropped columns lose their clocks (one pass over the clock table, only when a column was
//!   actually dropped);
//! - rows deleted while the triggers were off lose their clocks (tombstones stay); rows inserted
//!   meanwhile get clocks; added columns get clocks where the value is not the column default.
//!   All at the current (committed) db_version: peers run the same migration.
//! - `pre_compact_dbversion` in `crsql_master` keeps `crsql_db_version()` from going back.
//!
//! Cost is linear in rows (hash join in memory), not the quadratic NOT EXISTS that made
//! cr-sqlite's take 672 s on 100k rows (cr-sqlite #247).

use super::crr::{
    added_columns, backfill_incremental, clock_exists, create_crr, drop_triggers, forget_layout,
    is_crr, load_layout, recreate_triggers, store_layout, with_savepoint,
};
use super::state::{self, Shared};
use super::tables::{self, clock_ident, quote_ident, quote_str, TableInfo};
use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

/// Stored spelling of `table` in the main schema (case-insensitive lookup).
fn stored_name(conn: &Connection, table: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE LIMIT 1",
        )?
        .query_row([table], |r| r.get(0))
        .optional()?)
}

/// Starts a schema change of `table` (`crsql_begin_alter`): opens `SAVEPOINT alter_crr` and
/// drops the local-write triggers until [`commit_alter`].
pub fn begin_alter(conn: &Connection, table: &str) -> Result<()> {
    let shared = state::get(conn)?;
    let name = stored_name(conn, table)?.unwrap_or_else(|| table.to_owned());
    conn.execute_batch("SAVEPOINT alter_crr")?;
    if let Err(e) = drop_triggers(conn, &name) {
        let _ = conn.execute_batch("ROLLBACK TO alter_crr; RELEASE alter_crr");
        return Err(e);
    }
    shared.start_alter(&name);
    Ok(())
}

/// Finishes a schema change of `table` (`crsql_commit_alter`): compacts and backfills the
/// clocks, re-creates the triggers and releases the savepoint of [`begin_alter`]. The altered
/// table must still satisfy the crr rules (`CRR_UNSUPPORTED` otherwise, and the alter is rolled
/// back). Also usable without `begin_alter` (then it runs in its own savepoint).
pub fn commit_alter(conn: &Connection, table: &str) -> Result<()> {
    let shared = state::get(conn)?;
    let name = stored_name(conn, table)?.unwrap_or_else(|| table.to_owned());
    let opened = shared.finish_alter(&name);
    let result = with_savepoint(conn, "crsql_commit_alter", || {
        compact_and_recreate(conn, &shared, &name)
    });
    if opened {
        match &result {
            Ok(()) => conn.execute_batch("RELEASE alter_crr")?,
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK TO alter_crr; RELEASE alter_crr");
            }
        }
    }
    result
}

fn compact_and_recreate(conn: &Connection, shared: &Shared, table: &str) -> Result<()> {
    let name = tables::validate(conn, table)?;
    let info = TableInfo::load(conn, &name)?.ok_or_else(|| {
        Error::CrrUnsupported(format!("cannot replicate table {name}: no such table"))
    })?;
    let current = shared.db_version(conn)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO crsql_master (key, value) VALUES ('pre_compact_dbversion', ?1)",
    )?
    .execute([current])?;
    let clock = clock_ident(&name);
    let layout = load_layout(conn, &name)?;
    if clock_exists(conn, &name)? {
        let pk_changed = layout.as_ref().is_some_and(|(pks, _)| *pks != info.pks);
        if pk_changed {
            conn.execute_batch(&format!("DROP TABLE {clock}"))?;
        } else {
            let dropped = match &layout {
                Some((_, old_cols)) => old_cols.iter().any(|c| !info.cols.contains(c)),
                None => true,
            };
            if dropped {
                let keep = info
                    .cols
                    .iter()
                    .map(|c| quote_str(c))
                    .chain(std::iter::once("'-1'".to_owned()))
                    .collect::<Vec<_>>()
                    .join(", ");
                conn.execute_batch(&format!(
                    "DELETE FROM {clock} WHERE col_name NOT IN ({keep})"
                ))?;
            }
            let new_cols = added_columns(&info, layout);
            backfill_incremental(conn, shared, &info, true, new_cols.as_deref())?;
            recreate_triggers(conn, &info)?;
            return store_layout(conn, &info);
        }
    }
    create_crr(conn, shared, &name, true)
}

/// Stops replicating `table` (`crsql_as_table`): drops its triggers and clock table. The rows
/// stay; their history is forgotten.
pub fn as_table(conn: &Connection, table: &str) -> Result<()> {
    state::get(conn)?;
    let name = stored_name(conn, table)?.unwrap_or_else(|| table.to_owned());
    with_savepoint(conn, "crsql_as_table", || {
        drop_triggers(conn, &name)?;
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}",
            quote_ident(&format!("{name}__crsql_clock"))
        ))?;
        forget_layout(conn, &name)
    })
}

/// Whether `table` is replicated (its clock table and insert trigger exist); names match
/// case-insensitively.
pub fn is_replicated(conn: &Connection, table: &str) -> Result<bool> {
    match stored_name(conn, table)? {
        Some(name) => is_crr(conn, &name),
        None => Ok(false),
    }
}
