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

use super::pack::{pack, unpack};
use super::tables::{crr_tables, TableInfo};
use super::{Change, MAX_ACCEPTED_VERSION};
use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::collections::HashMap;

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

/// Validated, grouped input.
pub(crate) struct Plan {
    pub(crate) tables: Vec<TableInfo>,
    /// Per change: what its `cid` names.
    pub(crate) targets: Vec<Target>,
    pub(crate) groups: Vec<Group>,
    pub(crate) max_db_version: i64,
}

impl Plan {
    pub(crate) fn build(conn: &Connection, changes: &[Change]) -> Result<Plan> {
        Plan::build_with(changes, &crr_tables(conn)?)
    }

    /// [`Plan::build`] against `crrs`, the replicated tables as `crr_tables` lists them (for a
    /// caller that keeps them between calls: `INSERT INTO crsql_changes` merges row by row).
    pub(crate) fn build_with(changes: &[Change], crrs: &[TableInfo]) -> Result<Plan> {
        let mut tables: Vec<TableInfo> = Vec::new();
        let mut table_ix: HashMap<&str, usize> = HashMap::new();
        let mut raw_ix: HashMap<(usize, &[u8]), usize> = HashMap::new();
        let mut key_ix: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut targets = Vec::with_capacity(changes.len());
        let mut max_db_version = i64::MIN;
        for (i, ch) in changes.iter().enumerate() {
            check_versions(i, ch)?;
            let t = match table_ix.get(&*ch.table) {
                Some(t) => *t,
                None => {
                    let info = crrs.iter().find(|x| *x.name == *ch.table).ok_or_else(|| {
                        Error::InvalidChange(format!(
                            "change {i}: table {} is not a replicated table here; create it \
                                 and run crsql_as_crr('{}') before applying its changes",
                            ch.table, ch.table
                        ))
                    })?;
                    tables.push(info.clone());
                    table_ix.insert(&ch.table, tables.len() - 1);
                    tables.len() - 1
                }
            };
            let info = &tables[t];
            targets.push(if &*ch.cid == "-1" {
                Target::Sentinel
            } else {
                info.col_index(&ch.cid)
                    .map_or(Target::Unknown, Target::Column)
            });
            if ch.site_id.len() > 16 {
                return Err(Error::InvalidChange(format!(
                    "change {i}: site_id has {} bytes, at most 16 allowed",
                    ch.site_id.len()
                )));
            }
            max_db_version = max_db_version.max(ch.db_version);
            let g = match raw_ix.get(&(t, ch.pk.as_slice())) {
                Some(g) => *g,
                None => {
                    let pk = unpack(&ch.pk)
                        .map_err(|e| Error::InvalidChange(format!("change {i}: {e}")))?;
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
                            "change {i}: its primary key holds a NULL; table {} has NOT NULL \
                             primary-key columns",
                            info.name
                        )));
                    }
                    let key = pack(&pk)?;
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
        }
        Ok(Plan {
            tables,
            targets,
            groups,
            max_db_version,
        })
    }

    /// The error for change `i` of table `t`, whose `cid` names no column it can set here and
    /// that would win (cr-sqlite fails such a change too).
    pub(crate) fn unknown_column(&self, t: usize, i: usize, cid: &str) -> Error {
        let info = &self.tables[t];
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
