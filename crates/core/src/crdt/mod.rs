//! CRDT change tracking compatible with cr-sqlite 0.16 (`crsql_changes`), on a plain
//! [`rusqlite::Connection`].
//!
//! A *replicated table* (crr) records every local write as *change rows* — one per column
//! written, plus a sentinel (`cid = '-1'`) carrying the row's causal length — and merges the
//! change rows of other replicas with cr-sqlite's rules, so synqlite peers and crsqlite-wasm
//! peers exchange the same rows and converge to the same tables.
//!
//! ```no_run
//! # fn main() -> synqlite_core::Result<()> {
//! use synqlite_core::crdt;
//! let mut a = rusqlite::Connection::open_in_memory()?;
//! crdt::init(&mut a)?; // on every open: registers crsql_* functions and hooks
//! a.execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT);
//!                  SELECT crsql_as_crr('songs');
//!                  INSERT INTO songs VALUES (1, 'Blue');")?;
//! let rows = crdt::changes_since(&a, 0, None)?;
//! # let b = rusqlite::Connection::open_in_memory()?;
//! crdt::apply_changes(&b, &rows)?; // on a peer with the same schema
//! # Ok(()) }
//! ```
//!
//! Modules, one mechanism each:
//! - [`pack`]: primary-key packing (`crsql_pack_columns`), byte-compatible;
//! - `tables`: table introspection and the crr rules (`CRR_UNSUPPORTED` errors);
//! - `crr`: clock tables, local-write triggers, backfill ([`as_crr`]);
//! - `alter`: [`begin_alter`] / [`commit_alter`], [`as_table`];
//! - `changes`: [`changes_since`];
//! - `page`: [`changes_page`] / [`count_changes`] behind a [`Cursor`], and per-peer cursors in
//!   `crsql_tracked_peers` ([`peer_cursor`], [`set_peer_cursor`]) for the sync protocol;
//! - `plan`, `merge`: validating and grouping incoming changes; [`apply_changes`],
//!   [`compare_values`];
//! - `state`, `functions`: per-connection state (site id, db_version, seq, sync bit) and the
//!   `crsql_*` SQL functions;
//! - `vtab` (with `vtab_plan`, `vtab_cursor`): the `crsql_changes` virtual table.
//!
//! Metadata: `crsql_master` (key/value), `crsql_site_id` (site ids by ordinal; ordinal 0 is this
//! database), `crsql_tracked_peers` (as in cr-sqlite; the sync cursors), and one
//! `<table>__crsql_clock` per crr. [`is_metadata_table`] tells them apart from user tables.
//!
//! [`init`] installs the connection's commit and rollback hooks (db_version bookkeeping, as
//! cr-sqlite does). Replacing them with `Connection::commit_hook` breaks versioning: use
//! [`set_tx_hooks`] to be called on commit/rollback as well.

mod alter;
mod changes;
mod crr;
mod functions;
mod merge;
pub mod pack;
mod page;
mod plan;
mod raw_hooks;
mod state;
mod tables;
mod vtab;
mod vtab_cursor;
mod vtab_plan;

pub use alter::{as_table, begin_alter, commit_alter, is_replicated};
pub use changes::changes_since;
pub use crr::as_crr;
pub use merge::{apply_changes, compare_values};
pub use page::{
    change_size, changes_page, count_changes, forget_peer_cursor, limit_page_bytes, peer_cursor,
    peer_cursors, set_peer_cursor, Cursor, Page, SiteFilter,
};
pub use tables::is_metadata_table;

use crate::error::Result;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
use state::Shared;
use std::sync::Arc;

/// The largest version (`db_version`, `col_version`, `cl`, `seq`) the sync protocol carries:
/// the largest integer JavaScript represents exactly.
pub const MAX_VERSION: i64 = (1 << 53) - 1;
/// Versions between [`MAX_ACCEPTED_VERSION`] and [`MAX_VERSION`]: never accepted from a peer,
/// never handed out locally. It is also the number of commits a database keeps after a peer
/// raised its db_version as far as merges raise it (to `MAX_ACCEPTED_VERSION -
/// VERSION_HEADROOM`), so a version taken from a peer can neither push a database out of the
/// protocol's range nor leave it without versions for its own writes.
pub const VERSION_HEADROOM: i64 = 1 << 40;
/// The largest version [`apply_changes`] accepts in a change row and the largest the database's
/// own counters (db_version, a column's `col_version`, a row's causal length) reach; a write
/// that would pass it fails with `VERSION_EXHAUSTED`.
pub const MAX_ACCEPTED_VERSION: i64 = MAX_VERSION - VERSION_HEADROOM;

/// One change row, the columns of cr-sqlite's `crsql_changes`.
///
/// The table name, column name and site id are shared (`Arc`): the rows of one page or one
/// sync frame point at one copy of each, so holding many rows costs their keys and values,
/// not their names.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Table name.
    pub table: Arc<str>,
    /// Packed primary key ([`pack`]).
    pub pk: Vec<u8>,
    /// Column name, or `"-1"` for the row's sentinel (insert/delete/resurrect).
    pub cid: Arc<str>,
    /// The column's value (NULL for sentinels). INTEGER and REAL stay distinct.
    pub val: Value,
    /// Version of this column (of the sentinel: the causal length).
    pub col_version: i64,
    /// Version of the database that last wrote or merged this clock.
    pub db_version: i64,
    /// The 16-byte site id of the database that made the change (empty: this database).
    pub site_id: Arc<[u8]>,
    /// Causal length of the row: odd = alive, even = deleted.
    pub cl: i64,
    /// Order of the write within its `db_version`.
    pub seq: i64,
}

/// What [`apply_changes`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Change rows given.
    pub received: usize,
    /// Change rows that changed the database (the others lost or were already known).
    pub applied: usize,
}

/// Hook called when a transaction commits; returning `true` turns the commit into a rollback.
pub type CommitHook = Box<dyn FnMut() -> bool + Send>;
/// Hook called when a transaction rolls back.
pub type RollbackHook = Box<dyn FnMut() + Send>;

/// Prepares `conn` for CRDT use: creates the metadata tables and the persistent site id on
/// first use, registers the `crsql_*` SQL functions, installs the commit/rollback hooks and
/// brings local-write triggers made by older versions up to date.
/// Call it on every open (functions and hooks are per connection); it returns at once when the
/// connection is already initialized.
pub fn init(conn: &mut Connection) -> Result<()> {
    if state::lookup(conn).is_some() {
        return Ok(());
    }
    // Merging and reading changes keep ~10 statements per replicated table prepared; the
    // default cache of 16 would evict them (and the caller's) between calls.
    conn.set_prepared_statement_cache_capacity(128);
    let (site_id, merge_equal) = bootstrap(conn)?;
    let shared = Arc::new(Shared::new(site_id, merge_equal));
    functions::register(conn, &shared)?;
    vtab::register(conn, &shared)?;
    install_hooks(conn, &shared, None, None)?;
    state::register(conn, &shared);
    crr::upgrade_triggers(conn)
}

/// Adds callbacks to the commit and rollback hooks that [`init`] installed (replacing callbacks
/// added before). Use this instead of `Connection::commit_hook`/`rollback_hook`.
pub fn set_tx_hooks(
    conn: &mut Connection,
    on_commit: Option<CommitHook>,
    on_rollback: Option<RollbackHook>,
) -> Result<()> {
    let shared = state::get(conn)?;
    install_hooks(conn, &shared, on_commit, on_rollback)
}

// rusqlite's hooks live in SQLite's client data, which SQLite 3.44+ frees before the rollback
// that closing a connection inside a transaction runs (the rollback hook then read freed
// memory), and which older SQLite lacks (the loadable extension): see `raw_hooks`.
use raw_hooks::install as install_hooks;

/// This database's persistent 16-byte site id (`crsql_site_id()`).
pub fn site_id(conn: &Connection) -> Result<[u8; 16]> {
    Ok(state::get(conn)?.site_id)
}

/// The last committed db_version (`crsql_db_version()`).
pub fn db_version(conn: &Connection) -> Result<i64> {
    state::get(conn)?.db_version(conn)
}

/// Sets cr-sqlite 0.16.3's `merge-equal-values` option (persisted): on equal `col_version` and
/// equal values, the change from the bytewise-greater site id wins, so clocks converge too.
pub fn set_merge_equal_values(conn: &Connection, on: bool) -> Result<()> {
    let shared = state::get(conn)?;
    conn.execute(
        "INSERT OR REPLACE INTO crsql_master (key, value) VALUES ('config.merge-equal-values', ?1)",
        [i64::from(on)],
    )?;
    shared.set_merge_equal_values(on);
    Ok(())
}

/// Creates the metadata tables and site id if needed; returns the site id and the
/// `merge-equal-values` setting.
fn bootstrap(conn: &Connection) -> Result<([u8; 16], bool)> {
    let ready: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
         ('crsql_master', 'crsql_site_id', 'crsql_tracked_peers')",
        [],
        |r| r.get(0),
    )?;
    let read_site = |conn: &Connection| -> Result<Option<Vec<u8>>> {
        Ok(conn
            .query_row(
                "SELECT site_id FROM crsql_site_id WHERE ordinal = 0",
                [],
                |r| r.get(0),
            )
            .optional()?)
    };
    let existing = if ready == 3 { read_site(conn)? } else { None };
    let site = match existing {
        Some(s) => s,
        None => crr::with_savepoint(conn, "crsql_init", || {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS crsql_master (key TEXT PRIMARY KEY, value ANY);
                 CREATE TABLE IF NOT EXISTS crsql_site_id (site_id BLOB NOT NULL, ordinal INTEGER PRIMARY KEY);
                 CREATE UNIQUE INDEX IF NOT EXISTS crsql_site_id_site_id ON crsql_site_id (site_id);
                 CREATE TABLE IF NOT EXISTS crsql_tracked_peers (site_id BLOB NOT NULL, version INTEGER NOT NULL,
                   seq INTEGER DEFAULT 0, tag INTEGER, event INTEGER, PRIMARY KEY (site_id, tag, event)) STRICT;
                 INSERT OR IGNORE INTO crsql_master (key, value) VALUES ('synqlite_crdt_version', 1);",
            )?;
            conn.execute(
                "INSERT OR IGNORE INTO crsql_master (key, value) VALUES ('synqlite_triggers_version', ?1)",
                [crr::TRIGGERS_VERSION],
            )?;
            if let Some(s) = read_site(conn)? {
                return Ok(s);
            }
            let mut id: Vec<u8> = conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
            // A version-4 UUID, as cr-sqlite makes it.
            id[6] = (id[6] & 0x0f) + 0x40;
            id[8] = (id[8] & 0x3f) + 0x80;
            conn.execute(
                "INSERT INTO crsql_site_id (site_id, ordinal) VALUES (?1, 0)",
                [&id],
            )?;
            Ok(id)
        })?,
    };
    let site_id: [u8; 16] = site.as_slice().try_into().map_err(|_| {
        crate::error::Error::Internal(format!(
            "crsql_site_id holds a {}-byte site id, expected 16",
            site.len()
        ))
    })?;
    let merge_equal: Option<i64> = conn
        .query_row(
            "SELECT value FROM crsql_master WHERE key = 'config.merge-equal-values'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok((site_id, merge_equal.unwrap_or(0) != 0))
}
