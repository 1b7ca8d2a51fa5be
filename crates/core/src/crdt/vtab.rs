//! `crsql_changes`, cr-sqlite 0.16's eponymous virtual table over the change rows, so SQL
//! written for cr-sqlite runs unchanged:
//!
//! ```sql
//! SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq
//!   FROM crsql_changes WHERE db_version > ? AND site_id IS NOT ?;
//! INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);
//! ```
//!
//! - Columns, in cr-sqlite's order and declaration: `"table" TEXT, pk BLOB, cid TEXT, val ANY,
//!   col_version INTEGER, db_version INTEGER, site_id BLOB, cl INTEGER, seq INTEGER`. No hidden
//!   columns.
//! - `SELECT`: the rows [`changes_since`](super::changes_since) returns, with any `WHERE` and
//!   `ORDER BY`; the constraints and orders an index serves are handled by the scan
//!   (`vtab_plan`), the rest by SQLite. Without an `ORDER BY` rows come in
//!   `(db_version, seq)` order, as in cr-sqlite.
//! - `INSERT`: each row is merged as [`apply_changes`](super::apply_changes) merges it (same
//!   validation, same rules, same error messages after `crsql_changes: `). A row merged in a
//!   transaction takes the transaction's db_version, the one its local writes get; an incoming
//!   `db_version` above it raises it for that row and the ones after (cr-sqlite raises it the
//!   same way, row by row). The statement that inserts rows is what rolls a failure back: a
//!   failed row fails its statement (a whole `INSERT ... SELECT` is undone; in autocommit mode
//!   its transaction), and `ROLLBACK` undoes the transaction. As in cr-sqlite, an empty or
//!   NULL `site_id` means this database, a NULL version counts as 0 and a version given as
//!   text is read as an integer. The statement leaves `last_insert_rowid()` as it was.
//! - `UPDATE` and `DELETE` fail with cr-sqlite's message (`SQLITE_MISUSE`).
//!
//! Merging row by row stays cheap because the table keeps what does not change between rows:
//! the replicated tables and each one's merge SQL while the schema stays the same
//! ([`SchemaWatch`], one cached statement step per row), and, within a transaction, the site
//! ordinals and the clocks of the row merged last while no clock was written and nothing rolled
//! back since ([`Kept`]; consecutive change rows mostly belong to one row). SQLite reports
//! rollbacks and transaction ends to the table through the version-2 module methods.
//!
//! Errors reach SQLite as an error code and a message naming `crsql_changes`; a
//! `VERSION_EXHAUSTED` error keeps its message so it keeps its code.

use super::merge::{apply_in_statement, Memo};
use super::plan::MergeTable;
use super::state::{SchemaWatch, Shared};
use super::tables::{crr_tables, TableInfo};
use super::vtab_cursor::ChangesCursor;
use super::vtab_plan::{
    Plan, COL_CID, COL_CL, COL_COL_VERSION, COL_DB_VERSION, COL_PK, COL_SEQ, COL_SITE_ID,
    COL_TABLE, COL_VAL, SCHEMA,
};
use super::Change;
use crate::error::{Error, Result};
use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::vtab::{
    sqlite3_vtab, CreateVTab, IndexInfo, Inserts, Module, UpdateVTab, Updates, VTab,
    VTabConnection, VTabKind, Values,
};
use rusqlite::Connection;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::rc::Rc;
use std::sync::Arc;

/// Registers `crsql_changes` on `conn`, bound to `shared`.
pub(super) fn register(conn: &Connection, shared: &Arc<Shared>) -> Result<()> {
    conn.create_module(c"crsql_changes", &MODULE, Some(shared.clone()))?;
    Ok(())
}

/// rusqlite's update module plus the transaction methods, through which SQLite tells the
/// table when what merges kept may have been undone (see [`Kept`]): `xBegin` (SQLite sends
/// the others only to tables whose `xBegin` ran in the transaction), `xCommit`, `xRollback`,
/// and, from `sqlite3_module` version 2, `xSavepoint`, `xRelease` and `xRollbackTo`. rusqlite
/// builds version-1 modules, so these are set on the `sqlite3_module` its `Module` wraps.
const MODULE: Module<'static, ChangesTab> = {
    // SAFETY: rusqlite 0.41's `Module` is `#[repr(transparent)]` over `ffi::sqlite3_module`
    // (and `transmute` checks the sizes); `tests::module_layout` checks the fields land where
    // rusqlite put them.
    let mut raw: ffi::sqlite3_module =
        unsafe { std::mem::transmute(Module::<'static, ChangesTab>::update_module()) };
    raw.iVersion = 2;
    raw.xBegin = Some(begin);
    raw.xCommit = Some(tx_end);
    raw.xRollback = Some(tx_end);
    raw.xSavepoint = Some(savepoint);
    raw.xRelease = Some(savepoint);
    raw.xRollbackTo = Some(rollback_to);
    // SAFETY: as above.
    unsafe { std::mem::transmute::<ffi::sqlite3_module, Module<'static, ChangesTab>>(raw) }
};

/// `xBegin`: nothing to do (merges write through the connection's own transaction).
unsafe extern "C" fn begin(_: *mut sqlite3_vtab) -> c_int {
    ffi::SQLITE_OK
}

/// `xSavepoint`, `xRelease`: nothing to do.
unsafe extern "C" fn savepoint(_: *mut sqlite3_vtab, _: c_int) -> c_int {
    ffi::SQLITE_OK
}

/// `xCommit`, `xRollback`: the transaction ended.
unsafe extern "C" fn tx_end(vtab: *mut sqlite3_vtab) -> c_int {
    // SAFETY: as in `rollback_to`.
    unsafe { shared_of(vtab) }.note_tx_event();
    ffi::SQLITE_OK
}

/// The `shared` of the table SQLite calls a method of.
///
/// # Safety
/// `vtab` must be a table this module connected and not yet disconnected: a `ChangesTab`
/// (`repr(C)`, base first). Only its `shared` field is read, which nothing writes after
/// `connect`; these methods may run while `insert` runs (when a statement of the merge fails),
/// so no reference to the whole table is made.
unsafe fn shared_of<'a>(vtab: *mut sqlite3_vtab) -> &'a Shared {
    // SAFETY: see above.
    unsafe { &*std::ptr::addr_of!((*vtab.cast::<ChangesTab>()).shared) }
}

/// `xRollbackTo`: a statement or savepoint rolled back.
unsafe extern "C" fn rollback_to(vtab: *mut sqlite3_vtab, _: c_int) -> c_int {
    // SAFETY: SQLite passes a table this module connected.
    unsafe { shared_of(vtab) }.note_tx_event();
    ffi::SQLITE_OK
}

/// The virtual table, one per connection.
#[repr(C)]
pub(super) struct ChangesTab {
    /// Base class; must come first.
    base: sqlite3_vtab,
    /// The connection the table belongs to (not owned: SQLite disconnects the table before it
    /// closes the connection). Its statement cache holds the scans' statements.
    pub(super) conn: Connection,
    pub(super) shared: Arc<Shared>,
    /// What the table derives from the schema (reading it costs more than merging a row).
    derived: RefCell<Derived>,
}

/// What the virtual table derives from the schema, kept while its watch sees the schema
/// unchanged, between rows, statements and transactions. No borrow of it is held while SQL
/// runs.
#[derive(Default)]
struct Derived {
    watch: SchemaWatch,
    /// The replicated tables (read on first need).
    crrs: Option<Rc<[TableInfo]>>,
    /// The tables rows were merged into, with their merge statements' SQL.
    merge: HashMap<String, Rc<MergeTable>>,
    /// Scan SQL by plan and table filter (`vtab_cursor`).
    scans: HashMap<String, Rc<str>>,
    /// What the last merge left for the next one (see [`Kept`]).
    memo: Option<Kept>,
}

/// A merge's [`Memo`] (site ordinals, the clocks of the row merged last), with what shows
/// whether it still holds when the next row comes:
/// - no clock was written since: every clock write, by local-write triggers or merges, takes
///   a `seq` ([`Shared::seq`] counts them within a transaction);
/// - nothing was rolled back and the transaction did not end ([`Shared::tx_events`]: SQLite
///   reports transaction ends and statement and savepoint rollbacks to this table, whose
///   `xBegin` ran before any merge; another connection can write only between transactions);
/// - the schema is the same (kept in [`Derived`]).
///
/// Rows of `crsql_site_id` are only ever added (by merges), so an ordinal found stays right
/// until a rollback.
struct Kept {
    memo: Memo,
    tx_events: u64,
    seq: i64,
}

impl ChangesTab {
    /// Drops what was derived from the schema if it changed.
    fn check_schema(&self) -> Result<()> {
        let watch = self.derived.borrow().watch.clone();
        if !watch.unchanged(&self.conn)? {
            let watch = SchemaWatch::arm(&self.conn)?;
            *self.derived.borrow_mut() = Derived {
                watch,
                ..Derived::default()
            };
        }
        Ok(())
    }

    /// The replicated tables, after [`Self::check_schema`].
    fn crrs(&self) -> Result<Rc<[TableInfo]>> {
        if let Some(c) = &self.derived.borrow().crrs {
            return Ok(c.clone());
        }
        let crrs: Rc<[TableInfo]> = crr_tables(&self.conn)?.into();
        self.derived.borrow_mut().crrs = Some(crrs.clone());
        Ok(crrs)
    }

    /// Replicated table `name` (exact name) for a merge; `None` when there is none.
    fn merge_table(&self, name: &str) -> Result<Option<Rc<MergeTable>>> {
        self.check_schema()?;
        if let Some(t) = self.derived.borrow().merge.get(name) {
            return Ok(Some(t.clone()));
        }
        let crrs = self.crrs()?;
        let Some(info) = crrs.iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        let table = Rc::new(MergeTable::new(info.clone()));
        self.derived
            .borrow_mut()
            .merge
            .insert(name.to_owned(), table.clone());
        Ok(Some(table))
    }

    /// The scan SQL cached under `key`, else `build` makes it from the replicated tables (and
    /// it is kept unless empty: a filter that names no replicated table is not remembered).
    pub(super) fn scan_sql(
        &self,
        key: &str,
        build: impl FnOnce(&[TableInfo]) -> String,
    ) -> Result<Rc<str>> {
        self.check_schema()?;
        if let Some(s) = self.derived.borrow().scans.get(key) {
            return Ok(s.clone());
        }
        let sql: Rc<str> = build(&self.crrs()?).into();
        if !sql.is_empty() {
            self.derived
                .borrow_mut()
                .scans
                .insert(key.to_owned(), sql.clone());
        }
        Ok(sql)
    }
}

unsafe impl<'vtab> VTab<'vtab> for ChangesTab {
    type Aux = Arc<Shared>;
    type Cursor = ChangesCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Arc<Shared>>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let shared = aux.cloned().ok_or_else(|| {
            to_sqlite_error(Error::Internal(
                "registered without its connection state".into(),
            ))
        })?;
        // SAFETY: SQLite hands out the handle of the connection the table is created on; the
        // table is disconnected (and this non-owning `Connection` dropped) before it closes.
        let conn = unsafe { Connection::from_handle(db.handle())? };
        conn.set_prepared_statement_cache_capacity(64);
        Ok((
            Cow::Borrowed(SCHEMA),
            ChangesTab {
                base: sqlite3_vtab::default(),
                conn,
                shared,
                derived: RefCell::new(Derived::default()),
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        Plan::choose(info)?;
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<ChangesCursor<'vtab>> {
        Ok(ChangesCursor::new(self))
    }
}

impl CreateVTab<'_> for ChangesTab {
    /// Like cr-sqlite's, the table exists on every connection without `CREATE VIRTUAL TABLE`.
    const KIND: VTabKind = VTabKind::EponymousOnly;
}

impl UpdateVTab<'_> for ChangesTab {
    fn delete(&mut self, _rowid: ValueRef<'_>) -> rusqlite::Result<()> {
        Err(read_only())
    }

    fn insert(&mut self, args: &Inserts<'_>) -> rusqlite::Result<i64> {
        let before = self.conn.last_insert_rowid();
        let change = change_from_args(args).map_err(to_sqlite_error)?;
        let table = self.merge_table(&change.table).map_err(to_sqlite_error)?;
        let events = self.shared.tx_events();
        let mut memo = match self.derived.borrow_mut().memo.take() {
            Some(k) if k.tx_events == events && k.seq == self.shared.seq() => k.memo,
            _ => Memo::default(),
        };
        apply_in_statement(&self.conn, &self.shared, &change, table, &mut memo)
            .map_err(to_sqlite_error)?;
        if self.shared.tx_events() == events {
            self.derived.borrow_mut().memo = Some(Kept {
                memo,
                tx_events: events,
                seq: self.shared.seq(),
            });
        }
        // SQLite makes the returned rowid the connection's last_insert_rowid(): keep it as it
        // was before the statement (the merge's own writes moved it).
        Ok(before)
    }

    fn update(&mut self, _args: &Updates<'_>) -> rusqlite::Result<()> {
        Err(read_only())
    }
}

/// cr-sqlite's answer to `UPDATE` and `DELETE`.
fn read_only() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_MISUSE),
        Some(
            "Only INSERT and SELECT statements are allowed against the crsql changes table".into(),
        ),
    )
}

/// An error as SQLite reports it from the virtual table: code and message.
pub(super) fn to_sqlite_error(e: Error) -> rusqlite::Error {
    let (code, message) = match e {
        Error::Sqlite {
            extended_code,
            message,
        } => (extended_code, message),
        Error::VersionExhausted(m) => (ffi::SQLITE_ERROR, m),
        other => (ffi::SQLITE_ERROR, format!("crsql_changes: {other}")),
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

fn bad(column: &str, want: &str, got: &ValueRef<'_>) -> Error {
    let got = match got {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an INTEGER",
        ValueRef::Real(_) => "a REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "a BLOB",
    };
    Error::InvalidChange(format!("{column} must be {want}, got {got}"))
}

/// `"table"` and `cid`: text (an integer `cid` such as `-1` is taken as its decimal text).
fn text(column: &str, v: ValueRef<'_>) -> Result<Arc<str>> {
    match v {
        ValueRef::Text(b) => std::str::from_utf8(b)
            .map(Arc::from)
            .map_err(|_| Error::InvalidChange(format!("{column} is not valid UTF-8"))),
        ValueRef::Integer(i) => Ok(Arc::from(i.to_string())),
        other => Err(bad(column, "text", &other)),
    }
}

/// The versions: integers. As cr-sqlite reads them (`sqlite3_value_int64`), NULL is 0 and a
/// text holding an integer is that integer; an integral REAL (how JavaScript numbers past 2^31
/// arrive) is its integer. Anything else is refused.
fn int(column: &str, v: ValueRef<'_>) -> Result<i64> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Null => Ok(0),
        // `as` saturates; the merge's range check refuses anything that far out.
        ValueRef::Real(f) if f.fract() == 0.0 && f.is_finite() => Ok(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad(column, "an integer", &v)),
        other => Err(bad(column, "an integer", &other)),
    }
}

/// The change row an `INSERT INTO crsql_changes` gives (`args[0]` and `args[1]` are the old
/// and new rowid).
fn change_from_args(args: &Values<'_>) -> Result<Change> {
    let v: Vec<ValueRef<'_>> = args.iter().collect();
    let col = |c: c_int| -> Result<ValueRef<'_>> {
        usize::try_from(c)
            .ok()
            .and_then(|c| v.get(2 + c).copied())
            .ok_or_else(|| {
                Error::InvalidChange(format!(
                    "expected the 9 columns of crsql_changes, got {}",
                    v.len().saturating_sub(2)
                ))
            })
    };
    let pk = match col(COL_PK)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        other => return Err(bad("pk", "a BLOB (a packed primary key)", &other)),
    };
    let site_id: Arc<[u8]> = match col(COL_SITE_ID)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Arc::from(b),
        ValueRef::Null => Arc::from(&[][..]),
        other => return Err(bad("site_id", "a BLOB (a 16-byte site id)", &other)),
    };
    Ok(Change {
        table: text("table", col(COL_TABLE)?)?,
        pk,
        cid: text("cid", col(COL_CID)?)?,
        val: crate::exec::owned(col(COL_VAL)?),
        col_version: int("col_version", col(COL_COL_VERSION)?)?,
        db_version: int("db_version", col(COL_DB_VERSION)?)?,
        site_id,
        cl: int("cl", col(COL_CL)?)?,
        seq: int("seq", col(COL_SEQ)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_layout() {
        // The version-2 methods were added to the table rusqlite built, not elsewhere.
        // SAFETY: as in `MODULE`.
        let module: &'static Module<'static, ChangesTab> = &MODULE;
        let raw: &ffi::sqlite3_module =
            unsafe { &*std::ptr::from_ref(module).cast::<ffi::sqlite3_module>() };
        assert_eq!(raw.iVersion, 2);
        assert!(raw.xCreate.is_none(), "eponymous-only: no xCreate");
        assert!(raw.xConnect.is_some() && raw.xBestIndex.is_some() && raw.xUpdate.is_some());
        assert!(raw.xOpen.is_some() && raw.xFilter.is_some() && raw.xColumn.is_some());
        assert!(raw.xBegin.is_some() && raw.xCommit.is_some() && raw.xRollback.is_some());
        assert!(raw.xSavepoint.is_some() && raw.xRelease.is_some() && raw.xRollbackTo.is_some());
        assert!(raw.xSync.is_none());
        assert_eq!(
            std::mem::size_of::<Module<'static, ChangesTab>>(),
            std::mem::size_of::<ffi::sqlite3_module>()
        );
    }
}
