//! Reading `crsql_changes`: the cursor behind `SELECT ... FROM crsql_changes` (`xFilter`,
//! `xNext`, `xColumn`, `xRowid`).
//!
//! `xFilter` turns the [`Plan`] chosen by `xBestIndex` into one statement over the replicated
//! tables ([`Plan::sql`], cached per plan and table set until the schema changes) and steps
//! it; `xColumn` hands out the current row's values straight from the statement (the scan
//! selects the virtual table's nine columns in its order).
//!
//! Rowids: clock tables have no rowid, and SQLite only asks for one to tell rows apart (an
//! `OR` of indexed constraints scans once per term and drops the rows it saw, by rowid) or
//! when a query selects `rowid`. A cursor numbers the rows it is asked about, keyed by what
//! identifies a clock (table, pk, cid, versions), so a row met again in another scan of the
//! same statement gets the same number; nothing is kept for rows never asked about.

use super::state::Shared;
use super::tables::TableInfo;
use super::vtab::{to_sqlite_error, ChangesTab};
use super::vtab_plan::{
    Plan, COL_CID, COL_COL_VERSION, COL_DB_VERSION, COL_PK, COL_SEQ, COL_TABLE,
};
use crate::error::{Error, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::vtab::{sqlite3_vtab_cursor, Context, Filters, VTabCursor};
use rusqlite::{CachedStatement, Rows};
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::raw::c_int;
use std::ptr::NonNull;
use std::sync::Arc;

/// A running scan: a cached statement and the rows being stepped through it.
///
/// `Rows` borrows the statement, so the statement lives on the heap at a fixed address (owned
/// through `stmt`) and `rows` is dropped before it.
struct Scan<'vtab> {
    rows: Option<Rows<'vtab>>,
    stmt: NonNull<CachedStatement<'vtab>>,
}

impl<'vtab> Scan<'vtab> {
    /// Starts stepping `stmt` once `bind` has set its parameters.
    fn start(
        stmt: CachedStatement<'vtab>,
        bind: impl FnOnce(&mut CachedStatement<'vtab>) -> Result<()>,
    ) -> Result<Scan<'vtab>> {
        let mut scan = Scan {
            rows: None,
            stmt: NonNull::from(Box::leak(Box::new(stmt))),
        };
        // SAFETY: `stmt` points to the statement boxed above, owned by `scan` and freed only in
        // its `Drop`, after `rows` (the only borrow) is gone; nothing else touches it meanwhile.
        let stmt: &'vtab mut CachedStatement<'vtab> = unsafe { &mut *scan.stmt.as_ptr() };
        bind(stmt)?;
        let mut rows = stmt.raw_query();
        rows.next()?;
        scan.rows = Some(rows);
        Ok(scan)
    }

    fn row(&self) -> Option<&rusqlite::Row<'vtab>> {
        use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator;
        self.rows.as_ref().and_then(|r| r.get())
    }
}

impl Drop for Scan<'_> {
    fn drop(&mut self) {
        // The borrow first, then the statement it borrows (back into the statement cache).
        self.rows = None;
        // SAFETY: `stmt` came from `Box::leak` in `start` and is freed only here.
        drop(unsafe { Box::from_raw(self.stmt.as_ptr()) });
    }
}

/// What identifies a change row for `xRowid`.
type RowKey = (Vec<u8>, Vec<u8>, Vec<u8>, i64, i64, i64);

/// A cursor over `crsql_changes`.
#[repr(C)]
pub(super) struct ChangesCursor<'vtab> {
    /// Base class; must come first.
    base: sqlite3_vtab_cursor,
    tab: &'vtab ChangesTab,
    scan: Option<Scan<'vtab>>,
    rowids: RefCell<HashMap<RowKey, i64>>,
}

impl<'vtab> ChangesCursor<'vtab> {
    pub(super) fn new(tab: &'vtab ChangesTab) -> Self {
        ChangesCursor {
            base: sqlite3_vtab_cursor::default(),
            tab,
            scan: None,
            rowids: RefCell::new(HashMap::new()),
        }
    }

    fn start(&mut self, plan: &Plan, args: &Filters<'_>) -> Result<()> {
        self.scan = None;
        let conn = &self.tab.conn;
        let shared: &Arc<Shared> = &self.tab.shared;
        // The "table" constraints: `None` when they leave every table (or cannot be decided
        // here), else the one name they allow.
        let mut only: Option<Option<String>> = None;
        for t in plan.table_terms() {
            let Some(a) = t.arg else { continue };
            let name = match args.iter().nth(a) {
                Some(ValueRef::Text(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                // NULL and BLOBs never equal a table name (TEXT affinity leaves a BLOB as is).
                Some(ValueRef::Null | ValueRef::Blob(_)) => None,
                // Numbers compare as text; SQLite checks these rows itself.
                _ => continue,
            };
            only = Some(match (only, name) {
                (None, n) => n,
                (Some(Some(a)), Some(b)) if a == b => Some(a),
                _ => None,
            });
            if matches!(only, Some(None)) {
                return Ok(());
            }
        }
        let only = only.flatten();
        // The plan's encoding has no '/': a table filter cannot pass for another key.
        let key = match &only {
            Some(name) => format!("{}/{name}", plan.encode()),
            None => plan.encode(),
        };
        let sql = self.tab.scan_sql(&key, |tables| {
            let chosen: Vec<&TableInfo> = tables
                .iter()
                .filter(|t| only.as_deref().is_none_or(|n| t.name == n))
                .collect();
            plan.sql(&chosen)
        })?;
        if sql.is_empty() {
            return Ok(());
        }
        let stmt = conn.prepare_cached(&sql)?;
        self.scan = Some(Scan::start(stmt, |stmt| {
            stmt.raw_bind_parameter(3, &shared.site_id[..])?;
            for (t, param) in plan.sql_terms() {
                if let Some(v) = t.arg.and_then(|a| args.iter().nth(a)) {
                    stmt.raw_bind_parameter(param, ToSqlOutput::Borrowed(v))?;
                }
            }
            Ok(())
        })?);
        Ok(())
    }

    fn key(row: &rusqlite::Row<'_>) -> rusqlite::Result<RowKey> {
        let bytes = |i: c_int| -> rusqlite::Result<Vec<u8>> {
            Ok(match row.get_ref(i as usize)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                _ => Vec::new(),
            })
        };
        Ok((
            bytes(COL_TABLE)?,
            bytes(COL_PK)?,
            bytes(COL_CID)?,
            row.get(COL_COL_VERSION as usize)?,
            row.get(COL_DB_VERSION as usize)?,
            row.get(COL_SEQ as usize)?,
        ))
    }
}

unsafe impl VTabCursor for ChangesCursor<'_> {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let plan = Plan::decode(idx_str.unwrap_or("")).map_err(to_sqlite_error)?;
        self.start(&plan, args).map_err(to_sqlite_error)
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        if let Some(rows) = self.scan.as_mut().and_then(|s| s.rows.as_mut()) {
            rows.next()?;
        }
        Ok(())
    }

    fn eof(&self) -> bool {
        self.scan.as_ref().and_then(Scan::row).is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let row = self.scan.as_ref().and_then(Scan::row).ok_or_else(|| {
            to_sqlite_error(Error::Internal(
                "crsql_changes: column read past the last row".into(),
            ))
        })?;
        ctx.set_result(ToSqlOutput::Borrowed(row.get_ref(i as usize)?))
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        let row = self.scan.as_ref().and_then(Scan::row).ok_or_else(|| {
            to_sqlite_error(Error::Internal(
                "crsql_changes: rowid read past the last row".into(),
            ))
        })?;
        let key = Self::key(row)?;
        let mut ids = self.rowids.borrow_mut();
        let next = i64::try_from(ids.len())
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        Ok(*ids.entry(key).or_insert(next))
    }
}
