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

#[derive(Default)]
struct FeedState {
    pending: Vec<RowChange>,
    index: HashMap<(String, i64), usize>,
    committed: Vec<Vec<RowChange>>,
}

impl FeedState {
    fn record(&mut self, op: RowOp, table: &str, rowid: i64) {
        match self.index.get(&(table.to_owned(), rowid)) {
            Some(&i) => {
                let change = &mut self.pending[i];
                change.op = change.op.then(op);
            }
            None => {
                self.index
                    .insert((table.to_owned(), rowid), self.pending.len());
                self.pending.push(RowChange {
                    op,
                    table: table.to_owned(),
                    rowid,
                });
            }
        }
    }

    fn commit(&mut self) {
        self.index.clear();
        if !self.pending.is_empty() {
            let tx = std::mem::take(&mut self.pending);
            self.committed.push(tx);
        }
    }

    fn rollback(&mut self) {
        self.index.clear();
        self.pending.clear();
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
        std::mem::take(&mut lock(&self.state).committed)
    }
}

fn lock(state: &Mutex<FeedState>) -> MutexGuard<'_, FeedState> {
    // A poisoned lock only means a panic elsewhere; the data is still a plain list.
    state.lock().unwrap_or_else(|p| p.into_inner())
}
