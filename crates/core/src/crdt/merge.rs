//! Merging change rows from other replicas (`INSERT INTO crsql_changes` in cr-sqlite).
//!
//! Rules, per change, exactly as cr-sqlite 0.16 `changes_vtab_write.rs` (`merge_insert`):
//! - `local_cl` = the row's sentinel `col_version`, else 1 if the row has any clock, else 0.
//! - `cl < local_cl`: ignored (an older life of the row).
//! - even `cl` (a delete, whatever the `cid`): ignored if `cl == local_cl`; otherwise the row is
//!   deleted, the sentinel clock takes the change's `col_version`, the row's other clocks are
//!   dropped.
//! - sentinel (`cid = '-1'`, odd `cl`): ignored if `cl == local_cl`; otherwise the row is
//!   resurrected: `INSERT OR IGNORE` of the bare primary key, existing column clocks are zeroed
//!   (`col_version` 0: their values lost against anything from the new life), sentinel set.
//! - column change: if `cl > local_cl` (and the row exists locally or `cl > 1`) the row is first
//!   resurrected with sentinel `cl`. The change wins if it resurrected, if the row has no clock
//!   at all, if there is no clock for the column, or on a higher `col_version`; on equal
//!   `col_version` the greater value wins (INTEGER > REAL > TEXT > BLOB > NULL across types;
//!   numeric, bytewise within one), compared with the column *as stored* (after the column's
//!   affinity, and after the changes before it in the same batch); equal values are a no-op
//!   unless `merge-equal-values` is set (cr-sqlite 0.16.3 option), which then lets the
//!   bytewise-greater site id win.
//! - a column this table lacks (names match exactly, case-sensitively; a primary-key column
//!   counts as lacking): the change is ignored when one of the rules above ignores it (older or
//!   equal-delete `cl`, a delete) or when a local clock of that name has a higher `col_version`;
//!   otherwise it would win, and the batch fails with `INVALID_CHANGE` (cr-sqlite fails writing
//!   the column).
//!
//! Differences that do not change merge results:
//! - Changes are grouped by (table, primary key) and each group is merged in memory: its
//!   clocks read (with those of the next rows, see `batch`), then its row upsert and its
//!   winning clocks queued and written many rows per statement. Rows are independent, so
//!   this equals cr-sqlite's row-by-row processing in input order. A comparison
//!   at equal `col_version` with a cell this batch already wrote writes the row first and reads
//!   it back, so the stored value decides, as in cr-sqlite: results never depend on batching.
//! - All clocks written by one call get one local db_version, `max(committed + 1, pending,
//!   highest incoming db_version)` (cr-sqlite raises it row by row; here the incoming version
//!   counts only up to `2^53 - 2^41`, see `state`), and fresh local `seq`s,
//!   so `(db_version, seq)` stays unique and `changes_since` never misses a merged row; the
//!   original site id is kept (as an ordinal into `crsql_site_id`).
//! - A clock without its row (possible only after writes with triggers disabled) lets the
//!   incoming value win instead of failing the whole batch.
//! - `INSERT INTO crsql_changes` merges one change per call and may start from the clocks the
//!   previous call left ([`Memo`]) instead of reading them, when the virtual table knows they
//!   are still what is stored.
//!
//! Everything runs in one savepoint with the sync bit set (triggers silent); any error rolls the
//! whole batch back, including the db_version it took. Validation of tables, packed keys, site
//! ids and version ranges happens before any write; a change for a missing column fails during
//! the merge (whether it would win depends on the row's clocks), and the savepoint undoes what
//! the batch wrote before it.

mod batch;

use super::crr::with_savepoint;
use super::plan::{Group, Kind, MergeTable, Plan, Target};
use super::state::{self, Shared};
use super::{ApplyStats, Change};
use crate::error::Result;
use batch::{PendingClock, PendingRow, CLOCKS_PER_WRITE, ROWS_PER_WRITE};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{CachedStatement, Connection, OptionalExtension};
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Rank of a value's type in the merge tie-break: lower ranks win.
fn type_rank(v: &ValueRef<'_>) -> u8 {
    match v {
        ValueRef::Integer(_) => 1,
        ValueRef::Real(_) => 2,
        ValueRef::Text(_) => 3,
        ValueRef::Blob(_) => 4,
        ValueRef::Null => 5,
    }
}

/// cr-sqlite's value order (`crsql_compare_sqlite_values`): across types
/// INTEGER > REAL > TEXT > BLOB > NULL; within a type numeric (integers, reals) or bytewise
/// (text, blobs); NULL equals NULL.
pub fn compare_values(a: ValueRef<'_>, b: ValueRef<'_>) -> Ordering {
    let (ra, rb) = (type_rank(&a), type_rank(&b));
    if ra != rb {
        return rb.cmp(&ra);
    }
    match (a, b) {
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x.cmp(&y),
        (ValueRef::Real(x), ValueRef::Real(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (ValueRef::Text(x), ValueRef::Text(y)) => x.cmp(y),
        (ValueRef::Blob(x), ValueRef::Blob(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Merges `changes` into the database with cr-sqlite's rules; see the module docs. Results do
/// not depend on how changes are split into calls. Unknown tables, malformed packed keys, site
/// ids longer than 16 bytes, versions outside
/// `0..=`[`MAX_ACCEPTED_VERSION`](super::MAX_ACCEPTED_VERSION) and changes to a column this
/// table lacks that would win fail with `INVALID_CHANGE`; a failed call changes nothing.
pub fn apply_changes(conn: &Connection, changes: &[Change]) -> Result<ApplyStats> {
    let shared = state::get(conn)?;
    let mut stats = ApplyStats {
        received: changes.len(),
        applied: 0,
    };
    if changes.is_empty() {
        return Ok(stats);
    }
    let plan = Plan::build(conn, changes)?;
    let (applied, impacted) = with_savepoint(conn, "crsql_apply", || {
        let saved = shared.snapshot();
        let result = merge_plan(conn, &shared, &plan, changes, &mut Memo::default(), false);
        if result.is_err() {
            // Before the savepoint rolls back: the version this batch took is not used.
            shared.restore(saved);
        }
        result
    })?;
    stats.applied = applied;
    shared.add_rows_impacted(impacted);
    Ok(stats)
}

/// [`apply_changes`] of one change without its savepoint, for `INSERT INTO crsql_changes`:
/// the virtual table runs inside the caller's INSERT statement, where SQLite refuses to open a
/// savepoint, and the statement (or the caller's transaction) is what rolls a failed change
/// back. `table`: the change's table as the caller keeps it (`None`: not replicated here);
/// `memo`: what the merges before this one in the transaction left (see [`Memo`]), updated.
pub(crate) fn apply_in_statement(
    conn: &Connection,
    shared: &Shared,
    change: &Change,
    table: Option<Rc<MergeTable>>,
    memo: &mut Memo,
) -> Result<usize> {
    let plan = Plan::single(change, table)?;
    let changes = std::slice::from_ref(change);
    let (applied, impacted) = merge_plan(conn, shared, &plan, changes, memo, true)?;
    shared.add_rows_impacted(impacted);
    Ok(applied)
}

/// Merges the validated `plan` with the sync bit set (local-write triggers silent); returns how
/// many changes changed the database and the rows impacted as `crsql_rows_impacted()` counts.
/// Site ordinals come from and go to `memo`; with `keep_last` so does the last row's state.
fn merge_plan(
    conn: &Connection,
    shared: &Shared,
    plan: &Plan,
    changes: &[Change],
    memo: &mut Memo,
    keep_last: bool,
) -> Result<(usize, i64)> {
    let previous = shared.set_sync_bit(true);
    let result = (|| {
        let mut m = Merger::new(conn, shared, plan, changes, memo, keep_last);
        for (gi, g) in plan.groups.iter().enumerate() {
            m.merge_group(gi, g)?;
        }
        m.flush_rows()?;
        m.flush_clocks()?;
        Ok((m.applied, m.impacted))
    })();
    shared.set_sync_bit(previous);
    result
}

/// What `INSERT INTO crsql_changes` keeps from one row's merge for the next ones: the virtual
/// table passes it back only while nothing can have changed what it describes (same
/// transaction, no write or rollback since; see `vtab`) and drops it after an error.
#[derive(Default)]
pub(crate) struct Memo {
    /// Site ordinals looked up or inserted in `crsql_site_id`.
    sites: HashMap<Arc<[u8]>, i64>,
    /// The clocks of the row merged last, as stored after its merge.
    last: Option<LastRow>,
}

struct LastRow {
    table: Rc<MergeTable>,
    key: Vec<u8>,
    sentinel: Option<Clock>,
    cols: Vec<Option<Clock>>,
    stale: Vec<(String, Clock)>,
}

/// A clock as known during the merge of one row.
#[derive(Clone, Copy)]
struct Clock {
    version: i64,
    /// Site ordinal in `crsql_site_id` (0: this database); meaningless while `from` is set.
    site: i64,
    /// Index of the incoming change that set it (its site id is resolved at write time).
    from: Option<usize>,
    dirty: bool,
}

impl Clock {
    /// A clock as read from the clock table.
    fn stored(version: i64, site: i64) -> Clock {
        Clock {
            version,
            site,
            from: None,
            dirty: false,
        }
    }
}

/// The merge state of one row.
struct RowState<'p> {
    sentinel: Option<Clock>,
    cols: Vec<Option<Clock>>,
    /// Clocks whose name is no column of the table here (a column dropped between
    /// `begin_alter` and `commit_alter`, or written by hand): as in cr-sqlite they count for
    /// `local_cl`, are zeroed on resurrect, and decide whether a change naming them can win.
    stale: Vec<(String, Clock)>,
    drop_clocks: bool,
    deleted: bool,
    ensure: bool,
    /// Values to write (the incoming changes' own values).
    set: Vec<Option<&'p Value>>,
    /// Current values of the stored row: `None` not read yet, `Some(None)` no such row.
    current: Option<Option<Vec<Value>>>,
    changed: bool,
}

/// Where a stored clock goes in a [`RowState`].
enum Slot {
    Sentinel,
    Column(usize),
    Stale(String),
}

/// The slot of a clock named `name` of a row of `info`.
fn slot(info: &super::tables::TableInfo, name: &str) -> Slot {
    if name == "-1" {
        Slot::Sentinel
    } else if let Some(i) = info.col_index(name) {
        Slot::Column(i)
    } else {
        Slot::Stale(name.to_owned())
    }
}

impl RowState<'_> {
    fn place(&mut self, slot: Slot, clock: Clock) {
        match slot {
            Slot::Sentinel => self.sentinel = Some(clock),
            Slot::Column(i) => self.cols[i] = Some(clock),
            Slot::Stale(name) => self.stale.push((name, clock)),
        }
    }

    fn local_cl(&self) -> i64 {
        match self.sentinel {
            Some(c) => c.version,
            None if !self.stale.is_empty() || self.cols.iter().any(Option::is_some) => 1,
            None => 0,
        }
    }

    /// Bare-key insert (or no-op), zeroed column clocks, sentinel at `cl`.
    fn resurrect(&mut self, cl: i64, site: i64, from: usize) {
        self.ensure = true;
        let stale = self.stale.iter_mut().map(|(_, c)| c);
        for c in self.cols.iter_mut().flatten().chain(stale) {
            c.version = 0;
            c.dirty = true;
        }
        self.sentinel = Some(Clock {
            version: cl,
            site,
            from: Some(from),
            dirty: true,
        });
        self.changed = true;
    }
}

/// A statement of the merge: one of a table's, or one on the site table.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Stmt {
    Table(usize, Kind),
    SiteSelect,
    SiteInsert,
    SiteBlob,
}

struct Merger<'c, 'p> {
    conn: &'c Connection,
    /// Clock writes not yet executed: rows are merged one after the other, but their clocks
    /// are written [`CLOCKS_PER_WRITE`] at a time (fewer statements, and fewer page copies
    /// into the statement journal a multi-row write keeps). Each row is merged once per
    /// call, so no read of a later row depends on them; they are written before the call
    /// returns.
    clocks: Vec<PendingClock<'p>>,
    /// Stored clocks read ahead, for groups `ahead_from..ahead_from + ahead.len()`.
    ahead: Vec<Vec<(Slot, Clock)>>,
    ahead_from: usize,
    /// Row upserts not yet executed, likewise; flushed before anything reads or otherwise
    /// writes a row of the table.
    rows: Vec<PendingRow<'p>>,
    shared: &'p Shared,
    plan: &'p Plan,
    changes: &'p [Change],
    stmts: HashMap<Stmt, CachedStatement<'c>>,
    db_version: Option<i64>,
    memo: &'p mut Memo,
    keep_last: bool,
    site_blobs: HashMap<i64, Vec<u8>>,
    /// The site id resolved last and its ordinal (a batch mostly comes from one site).
    last_site: Option<(Arc<[u8]>, i64)>,
    merge_equal: bool,
    applied: usize,
    /// `crsql_rows_impacted()` as cr-sqlite counts it: one per delete, sentinel, resurrect
    /// before a column, and column written (a resurrecting column change counts two).
    impacted: i64,
}

impl<'c, 'p> Merger<'c, 'p> {
    fn new(
        conn: &'c Connection,
        shared: &'p Shared,
        plan: &'p Plan,
        changes: &'p [Change],
        memo: &'p mut Memo,
        keep_last: bool,
    ) -> Self {
        Merger {
            conn,
            clocks: Vec::new(),
            ahead: Vec::new(),
            ahead_from: 0,
            rows: Vec::new(),
            shared,
            plan,
            changes,
            stmts: HashMap::new(),
            db_version: None,
            memo,
            keep_last,
            site_blobs: HashMap::new(),
            last_site: None,
            merge_equal: shared.merge_equal_values(),
            applied: 0,
            impacted: 0,
        }
    }

    fn stmt(&mut self, t: usize, kind: Kind) -> Result<&mut CachedStatement<'c>> {
        self.prepared(Stmt::Table(t, kind))
    }

    fn prepared(&mut self, key: Stmt) -> Result<&mut CachedStatement<'c>> {
        let (conn, plan) = (self.conn, self.plan);
        Ok(match self.stmts.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let stmt =
                    match e.key() {
                        Stmt::Table(t, kind) => conn.prepare_cached(&plan.tables[*t].sql(kind)),
                        Stmt::SiteSelect => conn
                            .prepare_cached("SELECT ordinal FROM crsql_site_id WHERE site_id = ?1"),
                        Stmt::SiteInsert => conn.prepare_cached(
                            "INSERT INTO crsql_site_id (site_id) VALUES (?1) RETURNING ordinal",
                        ),
                        Stmt::SiteBlob => conn
                            .prepare_cached("SELECT site_id FROM crsql_site_id WHERE ordinal = ?1"),
                    }?;
                e.insert(stmt)
            }
        })
    }

    /// The site ordinal of change `i`'s site id (0 for this database or an empty id).
    fn site_ordinal(&mut self, i: usize) -> Result<i64> {
        let changes = self.changes;
        let site = &changes[i].site_id;
        if site.is_empty() || site[..] == self.shared.site_id {
            return Ok(0);
        }
        if let Some((last, o)) = &self.last_site {
            if Arc::ptr_eq(last, site) || last[..] == site[..] {
                return Ok(*o);
            }
        }
        if let Some(&o) = self.memo.sites.get(&site[..]) {
            self.last_site = Some((site.clone(), o));
            return Ok(o);
        }
        let found: Option<i64> = self
            .prepared(Stmt::SiteSelect)?
            .query_row([&site[..]], |r| r.get(0))
            .optional()?;
        let ordinal = match found {
            Some(o) => o,
            None => self
                .prepared(Stmt::SiteInsert)?
                .query_row([&site[..]], |r| r.get(0))?,
        };
        self.memo.sites.insert(site.clone(), ordinal);
        self.last_site = Some((site.clone(), ordinal));
        Ok(ordinal)
    }

    /// The site id bytes of a clock (for the `merge-equal-values` tie-break).
    fn clock_site(&mut self, c: &Clock) -> Result<Vec<u8>> {
        if let Some(i) = c.from {
            let changes = self.changes;
            let s = &changes[i].site_id;
            return Ok(if s.is_empty() {
                self.shared.site_id.to_vec()
            } else {
                s.to_vec()
            });
        }
        if c.site == 0 {
            return Ok(self.shared.site_id.to_vec());
        }
        if let Some(b) = self.site_blobs.get(&c.site) {
            return Ok(b.clone());
        }
        let blob: Option<Vec<u8>> = self
            .prepared(Stmt::SiteBlob)?
            .query_row([c.site], |r| r.get(0))
            .optional()?;
        let blob = blob.unwrap_or_default();
        self.site_blobs.insert(c.site, blob.clone());
        Ok(blob)
    }

    fn merge_group(&mut self, gi: usize, g: &'p Group) -> Result<()> {
        let plan = self.plan;
        let table = &plan.tables[g.table];
        let ncols = table.info.cols.len();
        let mut row = RowState {
            sentinel: None,
            cols: vec![None; ncols],
            stale: Vec::new(),
            drop_clocks: false,
            deleted: false,
            ensure: false,
            set: vec![None; ncols],
            current: None,
            changed: false,
        };
        match self.memo.last.take() {
            Some(last) if Rc::ptr_eq(&last.table, table) && last.key == g.key => {
                row.sentinel = last.sentinel;
                row.cols = last.cols;
                row.stale = last.stale;
            }
            _ if self.plan.groups.len() > 1 => self.take_ahead(gi, &mut row)?,
            _ => self.read_clocks(g, &mut row)?,
        }
        for &i in &g.changes {
            if self.merge_one(g, &mut row, i)? {
                self.applied += 1;
            }
        }
        if row.changed {
            self.write_row(g, &mut row)?;
        }
        if self.keep_last {
            self.memo.last = Some(LastRow {
                table: table.clone(),
                key: g.key.clone(),
                sentinel: row.sentinel,
                cols: row.cols,
                stale: row.stale,
            });
        }
        Ok(())
    }

    /// Reads the stored clocks of `g`'s row into `row`.
    fn read_clocks(&mut self, g: &Group, row: &mut RowState<'p>) -> Result<()> {
        let info = &self.plan.tables[g.table].info;
        let stmt = self.stmt(g.table, Kind::ClockRead)?;
        let mut rows = stmt.query([&g.key])?;
        while let Some(r) = rows.next()? {
            let name = r.get_ref(0)?.as_str().unwrap_or("");
            let clock = Clock::stored(r.get(1)?, r.get(2)?);
            row.place(slot(info, name), clock);
        }
        Ok(())
    }

    /// Merges change `i` into `row`; returns whether it changed anything.
    fn merge_one(&mut self, g: &'p Group, row: &mut RowState<'p>, i: usize) -> Result<bool> {
        let changes = self.changes;
        let ch = &changes[i];
        let local_cl = row.local_cl();
        if ch.cl < local_cl {
            return Ok(false);
        }
        if ch.cl % 2 == 0 {
            if ch.cl == local_cl {
                return Ok(false);
            }
            row.deleted = true;
            row.ensure = false;
            row.set.iter_mut().for_each(|v| *v = None);
            row.current = Some(None);
            row.cols.iter_mut().for_each(|c| *c = None);
            row.stale.clear();
            row.drop_clocks = true;
            row.sentinel = Some(Clock {
                version: ch.col_version,
                site: 0,
                from: Some(i),
                dirty: true,
            });
            row.changed = true;
            self.impacted += 1;
            return Ok(true);
        }
        let col = match self.plan.targets[i] {
            Target::Column(col) => col,
            Target::Sentinel => {
                if ch.cl == local_cl {
                    return Ok(false);
                }
                row.resurrect(ch.col_version, 0, i);
                self.impacted += 1;
                return Ok(true);
            }
            Target::Unknown => {
                // cr-sqlite's `did_cid_win` finds the clock by name and loses to a higher local
                // col_version; otherwise (a resurrect, a new row, no clock, a lower or equal
                // clock) it goes on to write the column, which fails.
                let older = ch.cl == local_cl
                    && row
                        .stale
                        .iter()
                        .any(|(n, c)| **n == *ch.cid && c.version > ch.col_version);
                if older {
                    return Ok(false);
                }
                return Err(self.plan.unknown_column(g.table, i, &ch.cid));
            }
        };
        let needs_resurrect = ch.cl > local_cl;
        let exists = local_cl != 0;
        let mut changed = false;
        if needs_resurrect && (exists || ch.cl > 1) {
            row.resurrect(ch.cl, 0, i);
            self.impacted += 1;
            changed = true;
        }
        let wins = needs_resurrect || !exists || self.column_wins(g, row, col, i)?;
        if wins {
            row.set[col] = Some(&ch.val);
            row.cols[col] = Some(Clock {
                version: ch.col_version,
                site: 0,
                from: Some(i),
                dirty: true,
            });
            row.changed = true;
            self.impacted += 1;
            changed = true;
        }
        Ok(changed)
    }

    /// cr-sqlite `did_cid_win` at equal causal length.
    fn column_wins(
        &mut self,
        g: &'p Group,
        row: &mut RowState<'p>,
        col: usize,
        i: usize,
    ) -> Result<bool> {
        let changes = self.changes;
        let ch = &changes[i];
        let Some(local) = row.cols[col] else {
            return Ok(true);
        };
        match ch.col_version.cmp(&local.version) {
            Ordering::Greater => return Ok(true),
            Ordering::Less => return Ok(false),
            Ordering::Equal => {}
        }
        // cr-sqlite compares with the column as stored: after the column's affinity converted
        // the value (a TEXT column holds 10 as '10') and after whatever this batch wrote. So a
        // row with pending writes that can change this column is written and read back first
        // (rare: equal col_versions on a cell this batch already touched).
        let pending_here = row.set[col].is_some()
            || row.deleted
            || row.ensure
            || (matches!(row.current, Some(None)) && row.set.iter().any(Option::is_some));
        if pending_here {
            self.write_values(g, row)?;
            row.current = None;
        }
        if row.current.is_none() {
            row.current = Some(self.read_row(g)?);
        }
        let ord = match row.current.as_ref().and_then(|c| c.as_ref()) {
            Some(values) => compare_values(ValueRef::from(&ch.val), ValueRef::from(&values[col])),
            None => return Ok(true),
        };
        match ord {
            Ordering::Greater => Ok(true),
            Ordering::Less => Ok(false),
            Ordering::Equal if self.merge_equal => {
                let local_site = self.clock_site(&local)?;
                Ok(ch.site_id[..] > local_site[..])
            }
            Ordering::Equal => Ok(false),
        }
    }

    fn read_row(&mut self, g: &Group) -> Result<Option<Vec<Value>>> {
        self.flush_rows()?;
        let n = self.plan.tables[g.table].info.cols.len();
        let stmt = self.stmt(g.table, Kind::RowRead)?;
        for (i, v) in g.pk.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, v)?;
        }
        let mut rows = stmt.raw_query();
        match rows.next()? {
            Some(r) => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(crate::exec::owned(r.get_ref(i)?));
                }
                Ok(Some(out))
            }
            None => Ok(None),
        }
    }

    fn db_version(&mut self) -> Result<i64> {
        if let Some(v) = self.db_version {
            return Ok(v);
        }
        let v = self
            .shared
            .next_db_version(self.conn, Some(self.plan.max_db_version))?;
        self.db_version = Some(v);
        Ok(v)
    }

    /// Writes the row's pending deletes, values and bare-key insert (not its clocks) and
    /// clears them from `row`.
    fn write_values(&mut self, g: &'p Group, row: &mut RowState<'p>) -> Result<()> {
        let t = g.table;
        if row.drop_clocks || row.deleted || row.ensure {
            // Writes to this row run in order.
            self.flush_rows()?;
        }
        if row.drop_clocks {
            self.stmt(t, Kind::ClockDrop)?.execute([&g.key])?;
            row.drop_clocks = false;
        }
        if row.deleted {
            let stmt = self.stmt(t, Kind::RowDelete)?;
            for (i, v) in g.pk.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, v)?;
            }
            stmt.raw_execute()?;
        }
        let cols: Vec<usize> = (0..row.set.len())
            .filter(|&c| row.set[c].is_some())
            .collect();
        if !cols.is_empty() {
            let vals = row.set.iter_mut().filter_map(Option::take).collect();
            self.rows.push(PendingRow {
                table: t,
                pk: &g.pk,
                cols,
                vals,
            });
            if self.rows.len() >= ROWS_PER_WRITE {
                self.flush_rows()?;
            }
        } else if row.ensure {
            let stmt = self.stmt(t, Kind::RowEnsure)?;
            for (i, v) in g.pk.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, v)?;
            }
            stmt.raw_execute()?;
        }
        row.deleted = false;
        row.ensure = false;
        row.set.iter_mut().for_each(|v| *v = None);
        Ok(())
    }

    fn write_row(&mut self, g: &'p Group, row: &mut RowState<'p>) -> Result<()> {
        let t = g.table;
        self.write_values(g, row)?;
        let plan = self.plan;
        let info = &plan.tables[t].info;
        // The dirty clocks, their sites resolved; they are then what is stored.
        let clocks = std::iter::once(("-1", &mut row.sentinel))
            .chain(
                info.cols
                    .iter()
                    .map(String::as_str)
                    .zip(row.cols.iter_mut()),
            )
            .filter_map(|(name, c)| Some((std::borrow::Cow::Borrowed(name), c.as_mut()?)))
            .chain(
                row.stale
                    .iter_mut()
                    .map(|(n, c)| (std::borrow::Cow::Owned(n.clone()), c)),
            );
        for (name, c) in clocks {
            if !c.dirty {
                continue;
            }
            if let Some(i) = c.from.take() {
                c.site = self.site_ordinal(i)?;
            }
            c.dirty = false;
            self.clocks.push(PendingClock {
                table: t,
                key: &g.key,
                name,
                version: c.version,
                seq: self.shared.next_seq(),
                site: c.site,
            });
        }
        if self.clocks.len() >= CLOCKS_PER_WRITE {
            self.flush_clocks()?;
        }
        Ok(())
    }
}
