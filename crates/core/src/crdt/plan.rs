//! Validation and grouping of incoming change rows before a merge.
//!
//! Every change is checked before anything is written: its table must be replicated here
//! (exact, case-sensitive name, as cr-sqlite looks it up), its packed key must unpack to as many
//! non-NULL values as the table has primary-key columns, its site id must be at most 16 bytes,
//! and its versions (`db_version`, `col_version`, `cl`, `seq`) must lie in
//! `0..=MAX_ACCEPTED_VERSION` (a version near the protocol's limit would raise this database's
//! counters to where its next writes leave the range). Its `cid` is resolved to the sentinel
//! (`'-1'`), a non-primary-key column (exact name), or [`Target::Unknown`]: whether a change
//! naming a column this table lacks is ignored or fails depends on the row's clocks, so the
//! merge decides ([`Plan::unknown_column`] gives its error). Changes are then grouped by
//! (table, primary key), keeping input order within a group; keys are re-packed so that
//! differently encoded copies of one key fall in the same group and the clock table only ever
//! sees canonical keys.
//!
//! A [`MergeTable`] is a replicated table as the merge writes it: its columns and the SQL of
//! its merge statements, generated once and kept with it (`INSERT INTO crsql_changes` keeps
//! them between rows and statements while the schema stays the same).

use super::pack::{pack, unpack};
use super::tables::{clock_ident, crr_tables, quote_ident, TableInfo};
use super::{Change, MAX_ACCEPTED_VERSION};
use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Changes of one row, in input order.
pub(crate) struct Group {
    pub(crate) table: usize,
    pub(crate) key: Vec<u8>,
    pub(crate) pk: Vec<Value>,
    pub(crate) changes: Vec<usize>,
}

/// What a change's `cid` names in its table here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `'-1'`: the row's sentinel.
    Sentinel,
    /// The non-primary-key column with this index in [`TableInfo::cols`].
    Column(usize),
    /// No non-primary-key column of that (exact) name.
    Unknown,
}

/// A statement of the merge of one table's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    ClockRead,
    /// Reads the clocks of this many keys (`key, col_name, col_version, site_id`).
    ClockReadMany(usize),
    /// Writes this many clocks in one statement.
    ClockWrite(usize),
    ClockDrop,
    RowRead,
    RowDelete,
    RowEnsure,
    /// Sets these columns (indexes into [`TableInfo::cols`]) on this many rows.
    RowUpsert(Vec<usize>, usize),
}

/// A replicated table as the merge writes it: its columns and the SQL of its statements,
/// generated on first use and kept.
#[derive(Debug)]
pub(crate) struct MergeTable {
    pub(crate) info: TableInfo,
    sql: RefCell<HashMap<Kind, Rc<str>>>,
}

impl MergeTable {
    pub(crate) fn new(info: TableInfo) -> MergeTable {
        MergeTable {
            info,
            sql: RefCell::new(HashMap::new()),
        }
    }

    /// The SQL of statement `kind` on this table.
    pub(crate) fn sql(&self, kind: &Kind) -> Rc<str> {
        if let Some(s) = self.sql.borrow().get(kind) {
            return s.clone();
        }
        let sql: Rc<str> = self.generate(kind).into();
        self.sql.borrow_mut().insert(kind.clone(), sql.clone());
        sql
    }

    fn generate(&self, kind: &Kind) -> String {
        let info = &self.info;
        let tbl = quote_ident(&info.name);
        let clock = clock_ident(&info.name);
        let pk_cols: Vec<String> = info.pks.iter().map(|c| quote_ident(c)).collect();
        let binds = |n: usize, from: usize| {
            (from..from + n)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match kind {
            Kind::ClockRead => {
                format!("SELECT col_name, col_version, site_id FROM {clock} WHERE key = ?1")
            }
            Kind::ClockReadMany(n) => format!(
                "SELECT key, col_name, col_version, site_id FROM {clock} WHERE key IN ({})",
                binds(*n, 1)
            ),
            Kind::ClockWrite(n) => {
                let rows: Vec<String> = (0..*n)
                    .map(|r| format!("({})", binds(6, 1 + 6 * r)))
                    .collect();
                format!(
                    "INSERT OR REPLACE INTO {clock} (key, col_name, col_version, db_version, seq, site_id) \
                     VALUES {}",
                    rows.join(", ")
                )
            }
            Kind::ClockDrop => format!("DELETE FROM {clock} WHERE key = ?1 AND col_name != '-1'"),
            Kind::RowRead => {
                let cols: Vec<String> = info.cols.iter().map(|c| quote_ident(c)).collect();
                format!(
                    "SELECT {} FROM {tbl} WHERE {}",
                    cols.join(", "),
                    info.pk_where(1)
                )
            }
            Kind::RowDelete => format!("DELETE FROM {tbl} WHERE {}", info.pk_where(1)),
            Kind::RowEnsure => format!(
                "INSERT OR IGNORE INTO {tbl} ({}) VALUES ({})",
                pk_cols.join(", "),
                binds(pk_cols.len(), 1)
            ),
            Kind::RowUpsert(cols, n) => {
                let names: Vec<String> = cols.iter().map(|&c| quote_ident(&info.cols[c])).collect();
                let set: Vec<String> = names
                    .iter()
                    .map(|n| format!("{n} = excluded.{n}"))
                    .collect();
                let width = pk_cols.len() + names.len();
                let rows: Vec<String> = (0..*n)
                    .map(|r| format!("({})", binds(width, 1 + width * r)))
                    .collect();
                format!(
                    "INSERT INTO {tbl} ({}, {}) VALUES {} ON CONFLICT DO UPDATE SET {}",
                    pk_cols.join(", "),
                    names.join(", "),
                    rows.join(", "),
                    set.join(", ")
                )
            }
        }
    }
}

/// Validated, grouped input.
pub(crate) struct Plan {
    pub(crate) tables: Vec<Rc<MergeTable>>,
    /// Per change: what its `cid` names.
    pub(crate) targets: Vec<Target>,
    pub(crate) groups: Vec<Group>,
    pub(crate) max_db_version: i64,
}

impl Plan {
    pub(crate) fn build(conn: &Connection, changes: &[Change]) -> Result<Plan> {
        let crrs = crr_tables(conn)?;
        let mut table_ix: HashMap<&str, usize> = HashMap::new();
        let mut tables: Vec<Rc<MergeTable>> = Vec::new();
        let mut raw_ix: HashMap<(usize, &[u8]), usize> = HashMap::new();
        let mut key_ix: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut targets = Vec::with_capacity(changes.len());
        let mut max_db_version = i64::MIN;
        // (table, group) of the change before: a row's changes usually come one after the
        // other, and then need no lookup.
        let mut last: Option<(&Change, usize, usize)> = None;
        for (i, ch) in changes.iter().enumerate() {
            check_versions(i, ch)?;
            if let Some((prev, t, g)) = last {
                if prev.pk == ch.pk && prev.table == ch.table {
                    targets.push(check(i, ch, &tables[t].info)?);
                    max_db_version = max_db_version.max(ch.db_version);
                    groups[g].changes.push(i);
                    continue;
                }
            }
            let t = match table_ix.get(&*ch.table) {
                Some(t) => *t,
                None => {
                    let info = crrs
                        .iter()
                        .find(|x| *x.name == *ch.table)
                        .ok_or_else(|| not_replicated(i, ch))?;
                    tables.push(Rc::new(MergeTable::new(info.clone())));
                    table_ix.insert(&ch.table, tables.len() - 1);
                    tables.len() - 1
                }
            };
            let info = &tables[t].info;
            targets.push(check(i, ch, info)?);
            max_db_version = max_db_version.max(ch.db_version);
            let g = match raw_ix.get(&(t, ch.pk.as_slice())) {
                Some(g) => *g,
                None => {
                    let (key, pk) = canonical_key(i, ch, info)?;
                    let g = match key_ix.get(&(t, key.clone())) {
                        Some(g) => *g,
                        None => {
                            groups.push(Group {
                                table: t,
                                key: key.clone(),
                                pk,
                                changes: Vec::new(),
                            });
                            key_ix.insert((t, key), groups.len() - 1);
                            groups.len() - 1
                        }
                    };
                    raw_ix.insert((t, ch.pk.as_slice()), g);
                    g
                }
            };
            groups[g].changes.push(i);
            last = Some((ch, t, g));
        }
        Ok(Plan {
            tables,
            targets,
            groups,
            max_db_version,
        })
    }

    /// [`Plan::build`] for one change (`INSERT INTO crsql_changes` merges row by row), with
    /// `table`, its table as the caller keeps it (`None`: not replicated here).
    pub(crate) fn single(ch: &Change, table: Option<Rc<MergeTable>>) -> Result<Plan> {
        check_versions(0, ch)?;
        let table = table.ok_or_else(|| not_replicated(0, ch))?;
        let target = check(0, ch, &table.info)?;
        let (key, pk) = canonical_key(0, ch, &table.info)?;
        Ok(Plan {
            tables: vec![table],
            targets: vec![target],
            groups: vec![Group {
                table: 0,
                key,
                pk,
                changes: vec![0],
            }],
            max_db_version: ch.db_version,
        })
    }

    /// The error for change `i` of table `t`, whose `cid` names no column it can set here and
    /// that would win (cr-sqlite fails such a change too).
    pub(crate) fn unknown_column(&self, t: usize, i: usize, cid: &str) -> Error {
        let info = &self.tables[t].info;
        if info.pks.iter().any(|p| p == cid) {
            return Error::InvalidChange(format!(
                "change {i}: column {cid} of table {} is part of its primary key; a change row \
                 cannot set it",
                info.name
            ));
        }
        Error::InvalidChange(format!(
            "change {i}: table {} has no column {cid}, and the change would win here (a change \
             for a missing column is ignored only when it is older than the row's clocks); the \
             peers' schemas differ: add the column here before applying its changes",
            info.name
        ))
    }
}

fn not_replicated(i: usize, ch: &Change) -> Error {
    Error::InvalidChange(format!(
        "change {i}: table {} is not a replicated table here; create it and run \
         crsql_as_crr('{}') before applying its changes",
        ch.table, ch.table
    ))
}

/// Checks change `i`'s site id and resolves its `cid` in table `info` (after
/// [`check_versions`] and the table lookup, the order the errors come in).
fn check(i: usize, ch: &Change, info: &TableInfo) -> Result<Target> {
    if ch.site_id.len() > 16 {
        return Err(Error::InvalidChange(format!(
            "change {i}: site_id has {} bytes, at most 16 allowed",
            ch.site_id.len()
        )));
    }
    Ok(if &*ch.cid == "-1" {
        Target::Sentinel
    } else {
        info.col_index(&ch.cid)
            .map_or(Target::Unknown, Target::Column)
    })
}

/// The canonical packed key of change `i` and its values, checked against `info`'s primary key.
fn canonical_key(i: usize, ch: &Change, info: &TableInfo) -> Result<(Vec<u8>, Vec<Value>)> {
    let pk = unpack(&ch.pk).map_err(|e| Error::InvalidChange(format!("change {i}: {e}")))?;
    if pk.len() != info.pks.len() {
        return Err(Error::InvalidChange(format!(
            "change {i}: pk packs {} value(s) but table {} has {} primary-key column(s)",
            pk.len(),
            info.name,
            info.pks.len()
        )));
    }
    // Replicated tables have NOT NULL keys (crsql_as_crr refuses others).
    if pk.iter().any(|v| matches!(v, Value::Null)) {
        return Err(Error::InvalidChange(format!(
            "change {i}: its primary key holds a NULL; table {} has NOT NULL primary-key columns",
            info.name
        )));
    }
    Ok((pack(&pk)?, pk))
}

/// Refuses a change whose versions lie outside `0..=MAX_ACCEPTED_VERSION`.
fn check_versions(i: usize, ch: &Change) -> Result<()> {
    for (field, v) in [
        ("db_version", ch.db_version),
        ("col_version", ch.col_version),
        ("cl", ch.cl),
        ("seq", ch.seq),
    ] {
        if !(0..=MAX_ACCEPTED_VERSION).contains(&v) {
            return Err(Error::InvalidChange(format!(
                "change {i}: {field} {v} is out of range (0 to {MAX_ACCEPTED_VERSION}); the \
                 sending peer's versions are corrupt or hostile"
            )));
        }
    }
    Ok(())
}
