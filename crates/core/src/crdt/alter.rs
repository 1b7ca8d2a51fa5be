//! Schema changes on replicated tables: `crsql_begin_alter` / `crsql_commit_alter`, and
//! `crsql_as_table` (stop replicating).
//!
//! As in cr-sqlite 0.16 (`crsqlite.c`, `alter.rs`): `begin_alter` opens `SAVEPOINT alter_crr`
//! and drops the table's triggers; the caller alters the table; `commit_alter` compacts the
//! clocks, re-creates the triggers, backfills, and releases the savepoint (on failure it rolls
//! back to it, restoring the table as it was). `commit_alter` without a `begin_alter` of the
//! same table on this connection fails and changes nothing (cr-sqlite fails releasing the
//! savepoint; it also rolls back the caller's transaction, which is left alone here).
//!
//! Compaction:
//! - the *set* of primary-key columns changed: the clock table is dropped and rebuilt (every
//!   row identity changed), backfilled at the current db_version;
//! - the same primary-key columns in another order (cr-sqlite compares them as a set): the
//!   clocks are kept, their keys re-packed in the new column order;
//! - dropped columns lose their clocks (one pass over the clock table, only when a column was
//!   actually dropped);
//! - rows deleted while the triggers were off lose their clocks (tombstones stay); rows inserted
//!   meanwhile get clocks; every column without a clock on a row gets one where the value is not
//!   the column default (added columns, columns written while the triggers were off).
//!   All at the current (committed) db_version: peers run the same migration.
//! - `pre_compact_dbversion` in `crsql_master` keeps `crsql_db_version()` from going back.
//!
//! Cost is linear in rows (hash join in memory), not the quadratic NOT EXISTS that made
//! cr-sqlite's take 672 s on 100k rows (cr-sqlite #247).

use super::crr::{
    backfill_incremental, clock_exists, create_crr, drop_triggers, forget_layout, is_crr,
    load_layout, recreate_triggers, store_layout, with_savepoint,
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
/// back). Without a `begin_alter` of `table` on this connection it fails with
/// `INVALID_ARGUMENT` and changes nothing, as in cr-sqlite.
pub fn commit_alter(conn: &Connection, table: &str) -> Result<()> {
    let shared = state::get(conn)?;
    let name = stored_name(conn, table)?.unwrap_or_else(|| table.to_owned());
    if !shared.finish_alter(&name) {
        return Err(Error::InvalidArgument(format!(
            "crsql_commit_alter('{table}') without crsql_begin_alter('{table}'): call \
             crsql_begin_alter before altering the table, then crsql_commit_alter"
        )));
    }
    let result = with_savepoint(conn, "crsql_commit_alter", || {
        compact_and_recreate(conn, &shared, &name)
    });
    match &result {
        Ok(()) => conn.execute_batch("RELEASE alter_crr")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK TO alter_crr; RELEASE alter_crr");
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
        let old_pks = layout.as_ref().map(|(pks, _)| pks.as_slice());
        let pk_changed = old_pks.is_some_and(|old| !same_set(old, &info.pks));
        if pk_changed {
            conn.execute_batch(&format!("DROP TABLE {clock}"))?;
        } else {
            if let Some(old) = old_pks.filter(|old| **old != info.pks) {
                repack_keys(conn, &clock, old, &info.pks)?;
            }
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
            backfill_incremental(conn, shared, &info, true)?;
            recreate_triggers(conn, &info)?;
            return store_layout(conn, &info);
        }
    }
    create_crr(conn, shared, &name, true)
}

/// Whether `a` and `b` hold the same names, in any order.
fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Re-packs every clock key of `clock` from the primary-key column order `old` to `new` (the
/// same columns). Two passes so that no key collides with one not yet re-packed: the first
/// packs a NULL before the re-ordered values (one column more than any key of the table has),
/// the second drops it.
fn repack_keys(conn: &Connection, clock: &str, old: &[String], new: &[String]) -> Result<()> {
    let reordered = new
        .iter()
        .map(|c| {
            let i = old.iter().position(|o| o == c).ok_or_else(|| {
                Error::Internal(format!("primary-key column {c} missing from the old key"))
            })?;
            Ok(format!("crsql_internal_unpack(key, {i})"))
        })
        .collect::<Result<Vec<_>>>()?;
    let shifted: Vec<String> = (1..=new.len())
        .map(|i| format!("crsql_internal_unpack(key, {i})"))
        .collect();
    conn.execute_batch(&format!(
        "UPDATE {clock} SET key = crsql_pack_columns(NULL, {});
         UPDATE {clock} SET key = crsql_pack_columns({});",
        reordered.join(", "),
        shifted.join(", ")
    ))?;
    Ok(())
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
