//! Per-connection CRDT state: site id, db_version bookkeeping, `seq`, the sync bit, SQL
//! generated from the schema; and [`SchemaWatch`], which tells such caches when the schema
//! changed.
//!
//! cr-sqlite keeps this in an "ext data" struct owned by the connection; here it is a
//! [`Shared`] held (as `Arc`) by the SQL functions and the commit/rollback hooks registered on
//! the connection, and found from Rust through a registry keyed by the connection handle: a
//! process-wide list behind a mutex, fronted by a small per-thread cache so a thread that keeps
//! using the same connections never takes the global lock. Both hold `Weak` references: when a
//! connection closes its functions and hooks drop the last `Arc`, so a later connection that
//! reuses the handle's address never finds the old state.
//!
//! db_version rules (cr-sqlite 0.16 `db_version.rs`, `crsqlite.c` commit/rollback hooks):
//! - the *committed* version is `max(db_version)` over all clock tables, or the
//!   `pre_compact_dbversion` kept in `crsql_master` by `commit_alter`, or 0;
//! - the first write of a transaction takes `committed + 1` as the *pending* version; every
//!   other write in the same transaction gets the same value; merges raise it to
//!   `max(pending, incoming db_version)`, but never past [`MERGE_RAISE_LIMIT`] (an incoming
//!   version near the limit would leave the database no versions for its own writes);
//! - the commit hook makes pending the committed version and resets `seq` to 0, the rollback
//!   hook drops pending;
//! - `PRAGMA data_version` tells when another connection committed, and the committed version
//!   is then re-read from storage;
//! - no version past [`MAX_ACCEPTED_VERSION`] is handed out: the write fails with
//!   `VERSION_EXHAUSTED` instead. Merges alone never get there: after a merge raised the version
//!   to [`MERGE_RAISE_LIMIT`], [`VERSION_HEADROOM`] local commits remain.

use super::tables::{clock_table_names, quote_ident};
use super::{MAX_ACCEPTED_VERSION, VERSION_HEADROOM};
use crate::error::{Error, Result};
use rusqlite::{Connection, StatementStatus};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The highest value an incoming db_version raises this database's db_version to. Versions
/// up to [`MAX_ACCEPTED_VERSION`] are accepted from peers, so without this bound a single row
/// at that version would leave no version for the next commit; with it, a database whose
/// version a peer raised as far as possible still has [`VERSION_HEADROOM`] commits left. Only
/// hostile or corrupt peers send versions this high (2^53 - 2^41).
pub(crate) const MERGE_RAISE_LIMIT: i64 = MAX_ACCEPTED_VERSION - VERSION_HEADROOM;

/// Mutable part of the state.
#[derive(Debug, Default)]
struct Inner {
    committed: Option<i64>,
    data_version: Option<i64>,
    pending: Option<i64>,
    seq: i64,
    merge_equal_values: bool,
    rows_impacted: i64,
    /// Tables between `begin_alter` and `commit_alter` (their savepoint is open).
    altering: HashSet<String>,
    /// Generated SQL keyed by purpose, valid while the watch sees the schema unchanged.
    sql_cache: (SchemaWatch, HashMap<String, Arc<str>>),
}

/// CRDT state of one connection.
#[derive(Debug)]
pub(crate) struct Shared {
    /// This database's persistent site id.
    pub(crate) site_id: [u8; 16],
    sync: AtomicBool,
    /// Counts transaction ends and the statement and savepoint rollbacks `crsql_changes` is
    /// told about (see [`Self::tx_events`]).
    tx_events: AtomicU64,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(site_id: [u8; 16], merge_equal_values: bool) -> Self {
        Shared {
            site_id,
            sync: AtomicBool::new(false),
            tx_events: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                merge_equal_values,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last committed db_version (`crsql_db_version()`).
    pub(crate) fn db_version(&self, conn: &Connection) -> Result<i64> {
        let dv: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        {
            let g = self.lock();
            if let (Some(c), Some(d)) = (g.committed, g.data_version) {
                if d == dv {
                    return Ok(c);
                }
            }
        }
        let stored = load_db_version(conn)?;
        let mut g = self.lock();
        let c = g.committed.map_or(stored, |c| c.max(stored));
        g.committed = Some(c);
        g.data_version = Some(dv);
        Ok(c)
    }

    /// The db_version of the current transaction's writes (`crsql_next_db_version(merging)`;
    /// `merging` counts up to [`MERGE_RAISE_LIMIT`]); `VERSION_EXHAUSTED` when it would pass
    /// [`MAX_ACCEPTED_VERSION`].
    pub(crate) fn next_db_version(&self, conn: &Connection, merging: Option<i64>) -> Result<i64> {
        let pending = self.lock().pending;
        let base = match pending {
            Some(p) => p,
            None => self.db_version(conn)?.saturating_add(1),
        };
        let mut g = self.lock();
        let mut v = g.pending.unwrap_or(base).max(base);
        if let Some(m) = merging {
            v = v.max(m.min(MERGE_RAISE_LIMIT));
        }
        if v > MAX_ACCEPTED_VERSION {
            return Err(Error::version_exhausted(format!(
                "this write needs db_version {v}, past {MAX_ACCEPTED_VERSION}, the largest \
                 version synqlite records; the database cannot take more writes (its version \
                 was raised near the limit, by corrupt or hostile change rows): copy its rows \
                 into a new database"
            )));
        }
        g.pending = Some(v);
        Ok(v)
    }

    /// [`Self::next_db_version`] when the transaction already has a version (no SQL needed);
    /// `None` when it has none or the version would pass [`MAX_ACCEPTED_VERSION`] (then
    /// `next_db_version` reports the error).
    pub(crate) fn pending_db_version(&self, merging: Option<i64>) -> Option<i64> {
        let mut g = self.lock();
        let p = g.pending?;
        let v = merging.map_or(p, |m| p.max(m.min(MERGE_RAISE_LIMIT)));
        if v > MAX_ACCEPTED_VERSION {
            return None;
        }
        g.pending = Some(v);
        Some(v)
    }

    /// The transaction's pending db_version and `seq`, for [`Self::restore`].
    pub(crate) fn snapshot(&self) -> (Option<i64>, i64) {
        let g = self.lock();
        (g.pending, g.seq)
    }

    /// Puts back what [`Self::snapshot`] returned: a savepoint that took a version and seqs
    /// is about to roll back (and, outside a transaction, commit nothing, which must not
    /// make its version the committed one).
    pub(crate) fn restore(&self, (pending, seq): (Option<i64>, i64)) {
        let mut g = self.lock();
        g.pending = pending;
        g.seq = seq;
    }

    /// Returns the current `seq` and increments it (`crsql_increment_and_get_seq()`).
    pub(crate) fn next_seq(&self) -> i64 {
        let mut g = self.lock();
        g.seq += 1;
        g.seq - 1
    }

    /// The current `seq` (`crsql_get_seq()`).
    pub(crate) fn seq(&self) -> i64 {
        self.lock().seq
    }

    /// Whether changes are being merged (local-write triggers must stay silent).
    pub(crate) fn sync_bit(&self) -> bool {
        self.sync.load(Ordering::Relaxed)
    }

    /// Sets the sync bit, returning the previous value.
    pub(crate) fn set_sync_bit(&self, on: bool) -> bool {
        self.sync.swap(on, Ordering::Relaxed)
    }

    pub(crate) fn merge_equal_values(&self) -> bool {
        self.lock().merge_equal_values
    }

    pub(crate) fn set_merge_equal_values(&self, on: bool) {
        self.lock().merge_equal_values = on;
    }

    pub(crate) fn rows_impacted(&self) -> i64 {
        self.lock().rows_impacted
    }

    pub(crate) fn add_rows_impacted(&self, n: i64) {
        self.lock().rows_impacted += n;
    }

    /// Records that `begin_alter` opened its savepoint for `table`.
    pub(crate) fn start_alter(&self, table: &str) {
        self.lock().altering.insert(table.to_owned());
    }

    /// Whether `begin_alter` ran for `table` (and forgets it).
    pub(crate) fn finish_alter(&self, table: &str) -> bool {
        self.lock().altering.remove(table)
    }

    /// Generated SQL cached for the current schema (see [`SchemaWatch`]). `conn` should be the
    /// one `Connection` the application uses for this database (the watch's statement lives in
    /// its statement cache; another one works but rebuilds the SQL every time it alternates).
    pub(crate) fn cached_sql(
        &self,
        conn: &Connection,
        key: &str,
        build: impl FnOnce() -> Result<String>,
    ) -> Result<Arc<str>> {
        // No SQL runs under the lock.
        let watch = self.lock().sql_cache.0.clone();
        let watch = if watch.unchanged(conn)? {
            if let Some(s) = self.lock().sql_cache.1.get(key) {
                return Ok(s.clone());
            }
            watch
        } else {
            let armed = SchemaWatch::arm(conn)?;
            self.lock().sql_cache = (armed.clone(), HashMap::new());
            armed
        };
        let sql: Arc<str> = build()?.into();
        let mut g = self.lock();
        if g.sql_cache.0 == watch {
            g.sql_cache.1.insert(key.to_owned(), sql.clone());
        }
        Ok(sql)
    }

    /// A number that changes at every commit and rollback of a transaction (the hooks) and at
    /// every [`Self::note_tx_event`]: state kept while it stays the same cannot have been undone by a
    /// rollback nor changed by another connection (which cannot write during this
    /// connection's write transaction).
    pub(crate) fn tx_events(&self) -> u64 {
        self.tx_events.load(Ordering::Relaxed)
    }

    /// A transaction ended, or a statement or savepoint rolled back (`crsql_changes`'
    /// `xCommit`, `xRollback`, `xRollbackTo`).
    pub(crate) fn note_tx_event(&self) {
        self.tx_events.fetch_add(1, Ordering::Relaxed);
    }

    /// Commit hook: the pending version becomes the committed one.
    pub(crate) fn on_commit(&self) {
        self.note_tx_event();
        let mut g = self.lock();
        if let Some(p) = g.pending.take() {
            g.committed = Some(g.committed.map_or(p, |c| c.max(p)));
        }
        g.seq = 0;
        g.rows_impacted = 0;
    }

    /// Rollback hook: the pending version is dropped.
    pub(crate) fn on_rollback(&self) {
        self.note_tx_event();
        let mut g = self.lock();
        g.pending = None;
        g.seq = 0;
        g.rows_impacted = 0;
        g.altering.clear();
    }
}

/// Tells whether the main schema changed since a point in time, for caches of what is derived
/// from it (generated SQL, table columns), at the cost of stepping one cached statement.
///
/// `PRAGMA schema_version` alone cannot tell: after a `ROLLBACK` (or `ROLLBACK TO`) of DDL,
/// other DDL brings the schema back to the same version with a different shape. SQLite itself
/// tells its prepared statements apart by the schema cookie *and* a generation that every
/// schema reload (such as the one after a rolled-back schema change) bumps; a statement whose
/// schema is out of date is re-prepared on its next step, which its `SQLITE_STMTSTATUS_REPREPARE`
/// counter records. So [`SchemaWatch::arm`] prepares and steps a statement that reads
/// `sqlite_schema`, with SQL text used by no other watch (a process-wide counter in a comment),
/// and [`SchemaWatch::unchanged`] steps it again: the schema is unchanged when it ran before
/// (`SQLITE_STMTSTATUS_RUN` past 1, so it is the statement prepared when armed, not a fresh
/// copy after the statement cache evicted it or from another `Connection`'s cache) and was not
/// re-prepared since. Unrelated events that re-prepare statements (`VACUUM`, `ANALYZE`, a
/// rolled-back `CREATE` elsewhere) only cost a rebuild. Each arming leaves one statement in the
/// connection's statement cache, until the cache evicts it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaWatch(Option<Arc<Armed>>);

#[derive(Debug)]
struct Armed {
    sql: String,
    /// The statement's re-prepare count when armed.
    reprepared: i32,
}

impl PartialEq for SchemaWatch {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// Makes every armed watch's SQL unique in the process.
static WATCH_SERIAL: AtomicU64 = AtomicU64::new(0);

impl SchemaWatch {
    /// A watch armed at the current schema (to be armed before reading the schema).
    pub(crate) fn arm(conn: &Connection) -> Result<SchemaWatch> {
        let n = WATCH_SERIAL.fetch_add(1, Ordering::Relaxed);
        let sql =
            format!("SELECT 1 FROM main.sqlite_schema LIMIT 0 /* synqlite schema watch {n} */");
        let (_, reprepared) = step(conn, &sql)?;
        Ok(SchemaWatch(Some(Arc::new(Armed { sql, reprepared }))))
    }

    /// Whether the main schema is the one [`Self::arm`] saw; `false` for a watch never armed
    /// or when it cannot tell.
    pub(crate) fn unchanged(&self, conn: &Connection) -> Result<bool> {
        let Some(a) = &self.0 else {
            return Ok(false);
        };
        let (run, reprepared) = step(conn, &a.sql)?;
        Ok(run > 1 && reprepared == a.reprepared)
    }
}

/// Steps the watch statement `sql`; returns its run and re-prepare counts.
fn step(conn: &Connection, sql: &str) -> Result<(i32, i32)> {
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.raw_query().next()?;
    Ok((
        stmt.get_status(StatementStatus::Run),
        stmt.get_status(StatementStatus::RePrepare),
    ))
}

/// Reads the committed db_version from storage.
pub(crate) fn load_db_version(conn: &Connection) -> Result<i64> {
    let mut parts: Vec<String> = clock_table_names(conn)?
        .iter()
        .map(|t| format!("SELECT max(db_version) AS v FROM {}", quote_ident(t)))
        .collect();
    parts.push(
        "SELECT CAST(value AS INTEGER) AS v FROM crsql_master WHERE key = 'pre_compact_dbversion'"
            .into(),
    );
    let sql = format!(
        "SELECT coalesce(max(v), 0) FROM ({})",
        parts.join(" UNION ALL ")
    );
    Ok(conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?)
}

type Registry = Mutex<Vec<(usize, Weak<Shared>)>>;
static REGISTRY: Registry = Mutex::new(Vec::new());

/// Entries of the per-thread cache in front of [`REGISTRY`].
const THREAD_CACHE: usize = 4;

thread_local! {
    /// Connections this thread used last, most recent first.
    static CACHE: RefCell<Vec<(usize, Weak<Shared>)>> = const { RefCell::new(Vec::new()) };
}

/// Puts `key` first in this thread's cache.
fn remember(key: usize, shared: &Arc<Shared>) {
    // `try_with`: a thread being torn down just skips the cache.
    let _ = CACHE.try_with(|c| {
        let mut c = c.borrow_mut();
        c.retain(|(k, w)| *k != key && w.strong_count() > 0);
        c.insert(0, (key, Arc::downgrade(shared)));
        c.truncate(THREAD_CACHE);
    });
}

/// The state of `key` from this thread's cache, moved first (a dead entry counts as a miss).
fn cached(key: usize) -> Option<Arc<Shared>> {
    CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let i = c.iter().position(|(k, _)| *k == key)?;
            let found = c[i].1.upgrade()?;
            if i > 0 {
                let entry = c.remove(i);
                c.insert(0, entry);
            }
            Some(found)
        })
        .ok()
        .flatten()
}

fn handle_key(conn: &Connection) -> usize {
    // SAFETY: the pointer is only used as an identity key, never dereferenced.
    unsafe { conn.handle() as usize }
}

fn registry() -> MutexGuard<'static, Vec<(usize, Weak<Shared>)>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state of an initialized connection, if any.
pub(crate) fn lookup(conn: &Connection) -> Option<Arc<Shared>> {
    let key = handle_key(conn);
    if let Some(s) = cached(key) {
        return Some(s);
    }
    let found = registry()
        .iter()
        .filter(|(k, _)| *k == key)
        .find_map(|(_, w)| w.upgrade())?;
    remember(key, &found);
    Some(found)
}

/// The state of an initialized connection, or a clear error.
pub(crate) fn get(conn: &Connection) -> Result<Arc<Shared>> {
    lookup(conn).ok_or_else(|| {
        Error::InvalidArgument(
            "CRDT support is not initialized on this connection: call crdt::init(&mut conn) \
             right after opening it"
                .into(),
        )
    })
}

/// Remembers `shared` as the state of `conn` (dropping entries of closed connections).
pub(crate) fn register(conn: &Connection, shared: &Arc<Shared>) {
    let key = handle_key(conn);
    let mut reg = registry();
    reg.retain(|(k, w)| *k != key && w.strong_count() > 0);
    reg.push((key, Arc::downgrade(shared)));
    drop(reg);
    remember(key, shared);
}
