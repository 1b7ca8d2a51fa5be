//! Automigration: bring a live database to a new version of its declarative schema.
//!
//! As cr-sqlite's `crsql_automigrate`, but with synqlite's CRDT layer and clearer errors:
//! 1. build the target: the new schema applied (twice, to prove it idempotent) to a scratch
//!    in-memory database prepared with `crdt::init`;
//! 2. drop the live indexes, views and triggers that are gone from the target or whose SQL
//!    changed (the schema re-run below re-creates the changed ones);
//! 3. drop the live tables that are gone (replicated ones stop being replicated first, so their
//!    clocks go with them, and `crsql_db_version()` is pinned so it never goes back);
//! 4. for each surviving table: stop replicating it if the target does not replicate it; drop
//!    the columns that are gone and add the new ones with the definition the schema wrote
//!    (type, `DEFAULT`, `CHECK`, ...); a replicated table is altered between
//!    `crdt::begin_alter` and `crdt::commit_alter`, which compacts and backfills its clocks;
//! 5. re-run the schema on the live database: new tables, indexes, views, triggers and
//!    `crsql_as_crr` calls take effect.
//!
//! The caller runs all of it in one transaction. Not handled (the table keeps its old
//! definition, as with cr-sqlite): changed types, constraints or defaults of surviving columns
//! and changed table constraints; a changed primary key is refused
//! (`AUTOMIGRATE_UNSUPPORTED`): write an ordered migration or reset. All app tables belong to
//! the declarative schema: tables created outside it are dropped (except `schema_versions`).

use super::declarative::{run, run_twice};
use super::sql_text::column_defs;
use super::{is_internal, pin_db_version, quote_ident};
use crate::crdt;
use crate::error::{Error, Result};
use rusqlite::Connection;
use std::collections::HashMap;

/// What an automigration changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Tables dropped because the schema no longer has them.
    pub dropped_tables: Vec<String>,
    /// `(table, column)` dropped.
    pub dropped_columns: Vec<(String, String)>,
    /// `(table, column)` added.
    pub added_columns: Vec<(String, String)>,
    /// Indexes, views and triggers dropped because they are gone or changed (the changed ones
    /// were re-created by the schema).
    pub dropped_objects: Vec<String>,
    /// Tables that stopped being replicated (the schema no longer calls `crsql_as_crr`).
    pub unreplicated: Vec<String>,
}

/// Migrates the live database to schema `name`/`sql`. Runs inside the caller's transaction.
pub(crate) fn migrate(conn: &Connection, name: &str, sql: &str) -> Result<MigrationReport> {
    let target = build_target(name, sql)?;
    let mut report = MigrationReport::default();
    let ctx = |what: String| move |e: Error| e.context(&format!("automigrate {name:?}: {what}"));

    let wanted = objects(&target)?;
    for (key, (kind, obj_name, def)) in objects(conn)? {
        let same = wanted
            .get(&key)
            .is_some_and(|(k, _, d)| *k == kind && *d == def);
        if !same {
            let keyword = kind.to_ascii_uppercase();
            conn.execute_batch(&format!(
                "DROP {keyword} IF EXISTS {}",
                quote_ident(&obj_name)
            ))
            .map_err(|e| ctx(format!("dropping {kind} {obj_name}"))(e.into()))?;
            report.dropped_objects.push(obj_name);
        }
    }

    let target_tables: HashMap<String, String> = tables(&target)?
        .into_iter()
        .map(|t| (t.to_lowercase(), t))
        .collect();
    for table in tables(conn)? {
        if target_tables.contains_key(&table.to_lowercase()) {
            alter_table(conn, &target, &table, &mut report)
                .map_err(ctx(format!("table {table}")))?;
            continue;
        }
        if crdt::is_replicated(conn, &table)? {
            pin_db_version(conn)?;
            crdt::as_table(conn, &table)?;
        }
        conn.execute_batch(&format!("DROP TABLE {}", quote_ident(&table)))
            .map_err(|e| ctx(format!("dropping table {table}"))(e.into()))?;
        report.dropped_tables.push(table);
    }

    run(conn, name, sql).map_err(|e| e.context("automigrate: re-running the schema"))?;
    Ok(report)
}

/// The new schema applied to a scratch in-memory database.
fn build_target(name: &str, sql: &str) -> Result<Connection> {
    let mut scratch = Connection::open_in_memory()?;
    crdt::init(&mut scratch)?;
    run_twice(&scratch, name, sql)?;
    Ok(scratch)
}

/// The app's tables (not CRDT metadata, not `sqlite_*`, not `schema_versions`).
fn tables(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.into_iter().filter(|n| !is_internal(n)).collect())
}

/// The app's indexes, views and triggers with SQL text, by lowercase name:
/// `(type, name, "table\nsql")`.
fn objects(conn: &Connection) -> Result<HashMap<String, (String, String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_master \
         WHERE type IN ('index', 'view', 'trigger') AND sql IS NOT NULL",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, name, table, _)| !is_internal(name) && !is_internal(table))
        .map(|(kind, name, table, sql)| {
            let def = format!("{}\n{}", table.to_lowercase(), sql);
            (name.to_lowercase(), (kind, name, def))
        })
        .collect())
}

/// A column as automigration compares it.
struct Column {
    name: String,
    /// 1-based position in the primary key, 0 if not part of it.
    pk: i64,
    decl_type: String,
    not_null: bool,
    default: Option<String>,
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<Column>> {
    let mut stmt = conn.prepare(
        "SELECT name, pk, type, \"notnull\", dflt_value FROM pragma_table_xinfo(?1) \
         WHERE hidden IN (0, 2, 3) ORDER BY cid",
    )?;
    let cols = stmt
        .query_map([table], |r| {
            Ok(Column {
                name: r.get(0)?,
                pk: r.get(1)?,
                decl_type: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                not_null: r.get::<_, i64>(3)? != 0,
                default: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cols)
}

fn primary_key(cols: &[Column]) -> Vec<String> {
    let mut pk: Vec<(i64, String)> = cols
        .iter()
        .filter(|c| c.pk > 0)
        .map(|c| (c.pk, c.name.to_lowercase()))
        .collect();
    pk.sort();
    pk.into_iter().map(|(_, n)| n).collect()
}

/// Drops and adds columns of a surviving table; handles its replication status.
fn alter_table(
    conn: &Connection,
    target: &Connection,
    table: &str,
    report: &mut MigrationReport,
) -> Result<()> {
    let live = columns(conn, table)?;
    let wanted = columns(target, table)?;
    let (live_pk, wanted_pk) = (primary_key(&live), primary_key(&wanted));
    if live_pk != wanted_pk {
        return Err(Error::AutomigrateUnsupported(format!(
            "the primary key of table {table} changed from ({}) to ({}); automigration cannot \
             change primary keys: write an ordered migration that rebuilds the table, or reset",
            live_pk.join(", "),
            wanted_pk.join(", ")
        )));
    }
    let has = |cols: &[Column], name: &str| cols.iter().any(|c| c.name.eq_ignore_ascii_case(name));
    let dropped: Vec<&Column> = live.iter().filter(|c| !has(&wanted, &c.name)).collect();
    let added: Vec<&Column> = wanted.iter().filter(|c| !has(&live, &c.name)).collect();

    let replicated = crdt::is_replicated(conn, table)?;
    let keep_replicated = crdt::is_replicated(target, table)?;
    if replicated && !keep_replicated {
        pin_db_version(conn)?;
        crdt::as_table(conn, table)?;
        report.unreplicated.push(table.to_owned());
    }
    if dropped.is_empty() && added.is_empty() {
        return Ok(());
    }
    let defs = column_defs(&create_sql(target, table)?);
    let alter = || -> Result<()> {
        for col in &dropped {
            conn.execute_batch(&format!(
                "ALTER TABLE {} DROP COLUMN {}",
                quote_ident(table),
                quote_ident(&col.name)
            ))
            .map_err(|e| Error::from(e).context(&format!("dropping column {}", col.name)))?;
        }
        for col in &added {
            let def = defs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&col.name))
                .map_or_else(|| rebuilt_def(col), |(_, d)| d.clone());
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {def}\n",
                quote_ident(table)
            ))
            .map_err(|e| {
                Error::from(e).context(&format!(
                    "adding column {} (SQLite adds columns only without PRIMARY KEY or UNIQUE, \
                     with a constant DEFAULT, and a NOT NULL column needs a non-NULL DEFAULT)",
                    col.name
                ))
            })?;
        }
        Ok(())
    };
    if replicated && keep_replicated {
        crdt::begin_alter(conn, table)?;
        if let Err(e) = alter() {
            // Balance begin_alter (its savepoint and state); the caller rolls everything back.
            let _ = crdt::commit_alter(conn, table);
            return Err(e);
        }
        crdt::commit_alter(conn, table)?;
    } else {
        alter()?;
    }
    let entry = |c: &&Column| (table.to_owned(), c.name.clone());
    report.dropped_columns.extend(dropped.iter().map(entry));
    report.added_columns.extend(added.iter().map(entry));
    Ok(())
}

fn create_sql(conn: &Connection, table: &str) -> Result<String> {
    let sql: Option<String> = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |r| r.get(0),
    )?;
    Ok(sql.unwrap_or_default())
}

/// A column definition from `pragma_table_info` when the schema text could not be cut.
fn rebuilt_def(col: &Column) -> String {
    let mut def = quote_ident(&col.name);
    if !col.decl_type.is_empty() {
        def.push(' ');
        def.push_str(&col.decl_type);
    }
    if col.not_null {
        def.push_str(" NOT NULL");
    }
    if let Some(d) = &col.default {
        def.push_str(" DEFAULT ");
        def.push_str(d);
    }
    def
}
