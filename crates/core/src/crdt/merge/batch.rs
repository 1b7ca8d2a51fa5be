//! Batched reads and writes of the merge ([`Merger`]): one statement per row and clock costs
//! more than the B-tree work it does, so
//! - the stored clocks of up to [`READ_AHEAD`] rows of one table are read in one statement
//!   (`key IN (...)`) before the first of them is merged. Merging a row writes only its own
//!   clocks, and each row appears once in a [`Plan`](crate::crdt::plan::Plan), so what was read for the
//!   rows after it stays what is stored;
//! - row upserts (up to [`ROWS_PER_WRITE`] of one table setting the same columns) and clock
//!   writes (up to [`CLOCKS_PER_WRITE`]) wait in the merger and go out as multi-row
//!   statements. A read of a row (a tie-break that compares with the stored value) and any
//!   other write of a row first write the waiting upserts; everything is written before
//!   the merge returns. A multi-row write also keeps a statement journal (a copy of each page
//!   it changes, for a rollback of that statement alone): one per batch instead of one per
//!   row.
//!
//! Batch sizes are powers of two, so a table has at most a handful of such statements
//! prepared.

use super::{slot, Clock, Merger, RowState};
use crate::crdt::plan::Kind;
use crate::error::Result;
use rusqlite::types::{Value, ValueRef};
use std::borrow::Cow;

/// Rows whose clocks are read in one statement, at most.
const READ_AHEAD: usize = 32;

/// A clock write waiting in [`Merger::clocks`].
pub(super) struct PendingClock<'p> {
    pub(super) table: usize,
    pub(super) key: &'p [u8],
    pub(super) name: Cow<'p, str>,
    pub(super) version: i64,
    pub(super) seq: i64,
    pub(super) site: i64,
}

/// Clocks written per statement (6 parameters each).
pub(super) const CLOCKS_PER_WRITE: usize = 64;

/// A row upsert waiting in [`Merger::rows`]: primary-key values, then the values of `cols`.
pub(super) struct PendingRow<'p> {
    pub(super) table: usize,
    pub(super) pk: &'p [Value],
    pub(super) cols: Vec<usize>,
    pub(super) vals: Vec<&'p Value>,
}

/// Rows upserted per statement, at most.
pub(super) const ROWS_PER_WRITE: usize = 32;

/// Parameters per statement, at most (SQLite's limit before 3.32 was 999).
const MAX_PARAMS: usize = 999;

impl<'p> Merger<'_, 'p> {
    /// Puts the stored clocks of group `gi` into `row`, reading them (with those of the
    /// groups after it) when they were not read ahead yet.
    pub(super) fn take_ahead(&mut self, gi: usize, row: &mut RowState<'p>) -> Result<()> {
        if !(self.ahead_from..self.ahead_from + self.ahead.len()).contains(&gi) {
            self.read_ahead(gi)?;
        }
        let clocks = std::mem::take(&mut self.ahead[gi - self.ahead_from]);
        for (s, c) in clocks {
            row.place(s, c);
        }
        Ok(())
    }

    /// Reads the stored clocks of group `gi` and of the groups of the same table after it,
    /// [`READ_AHEAD`] at most (a power of two of them), in one statement. Merging a row
    /// writes only its own clocks, so those read for the rows after it stay valid.
    fn read_ahead(&mut self, gi: usize) -> Result<()> {
        let plan = self.plan;
        let t = plan.groups[gi].table;
        let same = plan.groups[gi..]
            .iter()
            .take(READ_AHEAD)
            .take_while(|g| g.table == t)
            .count();
        let n = 1 << same.ilog2();
        let window = &plan.groups[gi..gi + n];
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.iter_mut().for_each(Vec::clear);
        ahead.resize_with(n, Vec::new);
        let info = &plan.tables[t].info;
        let stmt = self.stmt(t, Kind::ClockReadMany(n))?;
        for (j, g) in window.iter().enumerate() {
            stmt.raw_bind_parameter(j + 1, &g.key)?;
        }
        {
            let mut rows = stmt.raw_query();
            while let Some(r) = rows.next()? {
                let key = match r.get_ref(0)? {
                    ValueRef::Blob(b) => b,
                    _ => &[],
                };
                // At most READ_AHEAD keys: a scan is as quick as a search here.
                let Some(at) = window.iter().position(|g| g.key == key) else {
                    continue;
                };
                let name = r.get_ref(1)?.as_str().unwrap_or("");
                let clock = Clock::stored(r.get(2)?, r.get(3)?);
                ahead[at].push((slot(info, name), clock));
            }
        }
        self.ahead = ahead;
        self.ahead_from = gi;
        Ok(())
    }

    /// Writes the pending row upserts: consecutive ones of one table setting the same
    /// columns share a statement (a power of two of them, at most [`ROWS_PER_WRITE`] and
    /// [`MAX_PARAMS`] parameters).
    pub(super) fn flush_rows(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.rows);
        let mut rest = &pending[..];
        while let Some(first) = rest.first() {
            let width = first.pk.len() + first.cols.len();
            let cap = (MAX_PARAMS / width).clamp(1, ROWS_PER_WRITE);
            let same = rest
                .iter()
                .take(cap)
                .take_while(|r| r.table == first.table && r.cols == first.cols)
                .count();
            let n = 1 << same.ilog2();
            let (chunk, tail) = rest.split_at(n);
            let stmt = self.stmt(first.table, Kind::RowUpsert(first.cols.clone(), n))?;
            let mut p = 1;
            for r in chunk {
                for v in r.pk.iter().chain(r.vals.iter().copied()) {
                    stmt.raw_bind_parameter(p, v)?;
                    p += 1;
                }
            }
            stmt.raw_execute()?;
            rest = tail;
        }
        self.rows = pending;
        self.rows.clear();
        Ok(())
    }

    /// Writes the pending clocks, up to [`CLOCKS_PER_WRITE`] (a power of two) of one table per
    /// statement.
    pub(super) fn flush_clocks(&mut self) -> Result<()> {
        if self.clocks.is_empty() {
            return Ok(());
        }
        let dbv = self.db_version()?;
        let pending = std::mem::take(&mut self.clocks);
        let mut rest = &pending[..];
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take(CLOCKS_PER_WRITE)
                .take_while(|c| c.table == first.table)
                .count();
            // A power of two: at most 7 distinct statements per table stay prepared.
            let n = 1 << same.ilog2();
            let (chunk, tail) = rest.split_at(n);
            let stmt = self.stmt(first.table, Kind::ClockWrite(n))?;
            for (r, c) in chunk.iter().enumerate() {
                let b = 6 * r;
                stmt.raw_bind_parameter(b + 1, c.key)?;
                stmt.raw_bind_parameter(b + 2, &*c.name)?;
                stmt.raw_bind_parameter(b + 3, c.version)?;
                stmt.raw_bind_parameter(b + 4, dbv)?;
                stmt.raw_bind_parameter(b + 5, c.seq)?;
                stmt.raw_bind_parameter(b + 6, c.site)?;
            }
            stmt.raw_execute()?;
            rest = tail;
        }
        // Keep the allocation for the next rows.
        self.clocks = pending;
        self.clocks.clear();
        Ok(())
    }
}
