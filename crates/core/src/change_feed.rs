//! Which rows each committed transaction changed, for reactivity (`onAny`, `onRange`, `onPoint`).
//!
//! SQLite's update hook reports every row written; the feed keeps them per transaction and only
//! moves them to the committed list when the transaction commits (a rollback discards them). The
//! caller takes the committed batches after the call that ran the SQL returned, so nothing is ever
//! announced from inside a hook or for a transaction that did not commit. CRDT metadata tables are
//! never reported. Repeated writes to one row in a transaction are reported once (an insert
//! followed by updates stays an insert; anything followed by a delete is a delete).
//!
//! The update hook does not fire for `WITHOUT ROWID` tables (SQLite's rule), so those are not
//! reported. A `ROLLBACK TO` a savepoint does not undo what the feed saw; the rows it reports for
//! such a transaction are a superset of those that changed.

use crate::crdt::{self, is_metadata_table};
use crate::error::Result;
use rusqlite::hooks::Action;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowOp {
    /// A new row.
    Insert,
    /// An existing row changed.
    Update,
    /// The row is gone.
    Delete,
}

impl RowOp {
    /// `'insert'`, `'update'` or `'delete'`, as in the JS API.
    pub fn as_str(self) -> &'static str {
        match self {
            RowOp::Insert => "insert",
            RowOp::Update => "update",
            RowOp::Delete => "delete",
        }
    }

    fn then(self, next: RowOp) -> RowOp {
        match (self, next) {
            (_, RowOp::Delete) => RowOp::Delete,
            (RowOp::Insert, RowOp::Update) => RowOp::Insert,
            (RowOp::Delete, _) => RowOp::Update,
            (_, n) => n,
        }
    }
}

/// One changed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// Insert, update or delete.
    pub op: RowOp,
    /// The table (of the `main` schema, or `temp.<name>` for temp tables).
    pub table: String,
    /// The row's rowid.
    pub rowid: i64,
}

/// One committed transaction's changed rows, compact: each table name once, rows as
/// `(op, index into tables, rowid)` in the order they were first written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxChanges {
    /// The tables the rows belong to.
    pub tables: Vec<String>,
    /// `(op, table index, rowid)` per row.
    pub rows: Vec<(RowOp, u32, i64)>,
}

impl TxChanges {
    /// The rows with their table names.
    pub fn iter(&self) -> impl Iterator<Item = (RowOp, &str, i64)> {
        self.rows
            .iter()
            .map(|&(op, t, rowid)| (op, self.tables[t as usize].as_str(), rowid))
    }

    /// The rows as [`RowChange`]s.
    pub fn to_row_changes(&self) -> Vec<RowChange> {
        self.iter()
            .map(|(op, table, rowid)| RowChange {
                op,
                table: table.to_owned(),
                rowid,
            })
            .collect()
    }
}

#[derive(Default)]
struct FeedState {
    /// The open transaction's rows so far.
    pending: TxChanges,
    /// Table name -> index in `pending.tables`.
    table_ids: HashMap<String, u32>,
    /// `(table index, rowid)` -> index in `pending.rows`.
    index: HashMap<(u32, i64), usize>,
    committed: Vec<TxChanges>,
}

impl FeedState {
    fn record(&mut self, op: RowOp, table: &str, rowid: i64) {
        let t = match self.table_ids.get(table) {
            Some(&t) => t,
            None => {
                let t = self.pending.tables.len() as u32;
                self.pending.tables.push(table.to_owned());
                self.table_ids.insert(table.to_owned(), t);
                t
            }
        };
        match self.index.get(&(t, rowid)) {
            Some(&i) => {
                let row = &mut self.pending.rows[i];
                row.0 = row.0.then(op);
            }
            None => {
                self.index.insert((t, rowid), self.pending.rows.len());
                self.pending.rows.push((op, t, rowid));
            }
        }
    }

    fn commit(&mut self) {
        self.index.clear();
        self.table_ids.clear();
        if !self.pending.rows.is_empty() {
            let tx = std::mem::take(&mut self.pending);
            self.committed.push(tx);
        } else {
            self.pending.tables.clear();
        }
    }

    fn rollback(&mut self) {
        self.index.clear();
        self.table_ids.clear();
        self.pending = TxChanges::default();
    }
}

/// Collects committed row changes of one connection.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    state: Arc<Mutex<FeedState>>,
}

impl ChangeFeed {
    /// Installs the feed's hooks on `conn` (after [`crdt::init`], whose commit and rollback hooks
    /// it chains into).
    pub fn install(conn: &mut Connection) -> Result<ChangeFeed> {
        let feed = ChangeFeed::default();
        let s = feed.state.clone();
        conn.update_hook(Some(
            move |action: Action, db: &str, table: &str, rowid: i64| {
                let op = match action {
                    Action::SQLITE_INSERT => RowOp::Insert,
                    Action::SQLITE_UPDATE => RowOp::Update,
                    Action::SQLITE_DELETE => RowOp::Delete,
                    _ => return,
                };
                if is_metadata_table(table) {
                    return;
                }
                let mut state = lock(&s);
                if db == "main" {
                    state.record(op, table, rowid);
                } else {
                    state.record(op, &format!("{db}.{table}"), rowid);
                }
            },
        ))?;
        let on_commit = feed.state.clone();
        let on_rollback = feed.state.clone();
        crdt::set_tx_hooks(
            conn,
            Some(Box::new(move || {
                lock(&on_commit).commit();
                false
            })),
            Some(Box::new(move || lock(&on_rollback).rollback())),
        )?;
        Ok(feed)
    }

    /// The committed transactions since the last call, oldest first, one list of rows each.
    pub fn take(&self) -> Vec<Vec<RowChange>> {
        self.take_compact()
            .iter()
            .map(TxChanges::to_row_changes)
            .collect()
    }

    /// [`ChangeFeed::take`] without a `String` per row: what the wasm bindings hand to JS.
    pub fn take_compact(&self) -> Vec<TxChanges> {
        std::mem::take(&mut lock(&self.state).committed)
    }
}

fn lock(state: &Mutex<FeedState>) -> MutexGuard<'_, FeedState> {
    // A poisoned lock only means a panic elsewhere; the data is still a plain list.
    state.lock().unwrap_or_else(|p| p.into_inner())
}
