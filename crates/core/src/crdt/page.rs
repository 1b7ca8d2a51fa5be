//! Reading change rows page by page behind a `(db_version, seq)` cursor, and the per-peer
//! cursors kept in `crsql_tracked_peers`.
//!
//! The sync protocol streams a database's changes in bounded chunks. [`changes_page`] returns at
//! most `limit` change rows after a [`Cursor`], in `(db_version, seq)` order, optionally only
//! the rows written by one site or all but one site, and the cursor to continue from. Each
//! replicated table is read through its `(db_version, seq)` index with its own `LIMIT`, so a
//! page costs `O(tables × limit)` whatever the size of the database; the per-table runs are
//! merged in memory.
//!
//! A page never ends inside a group of rows sharing one `(db_version, seq)` (only backfills
//! after an alter create such ties), so a cursor never skips a row.
//!
//! [`peer_cursor`] / [`set_peer_cursor`] store "what I have received from site X" in
//! cr-sqlite's `crsql_tracked_peers(site_id, version, seq, tag, event)` with `tag = 0` (whole
//! database) and `event = 0` (receive), in the caller's transaction, so a chunk of changes and
//! the cursor past it commit together.

use super::changes::{read_change, table_select, Names};
use super::state;
use super::tables::{crr_tables, TableInfo};
use super::Change;
use crate::error::Result;
use rusqlite::{Connection, OptionalExtension};
use std::cmp::Ordering;

/// A position in a database's change stream: every change row with a greater
/// `(db_version, seq)` comes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// `db_version` of the last row passed.
    pub db_version: i64,
    /// `seq` of the last row passed.
    pub seq: i64,
}

impl Cursor {
    /// Before every change row (`db_version` 0 is reachable by backfills of an empty database).
    pub const START: Cursor = Cursor {
        db_version: 0,
        seq: -1,
    };

    /// The cursor right after `change`.
    pub fn after(change: &Change) -> Cursor {
        Cursor {
            db_version: change.db_version,
            seq: change.seq,
        }
    }
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor::START
    }
}

/// Which writers' rows a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteFilter<'a> {
    /// Every row.
    All,
    /// Only rows this database wrote itself (what a client uploads).
    Local,
    /// Every row except those written by this site (what a server relays to that site).
    Exclude(&'a [u8]),
}

/// One page of change rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The rows, in `(db_version, seq)` order.
    pub changes: Vec<Change>,
    /// Where the next page starts. When `complete`, it is past every row committed so far
    /// (including rows the filter left out).
    pub next: Cursor,
    /// Whether the page reached the end of the committed changes.
    pub complete: bool,
}

/// Event numbers of `crsql_tracked_peers` (cr-sqlite's `CRSQL_TRACKED_EVENT_*`).
const EVENT_RECEIVE: i64 = 0;

fn filter_cond(filter: Option<bool>) -> &'static str {
    match filter {
        None => "",
        Some(true) => " AND c.site_id = ?4",
        Some(false) => " AND c.site_id != ?4",
    }
}

/// Per-table SQL for `filter` (`None`: all, `Some(true)`: only ordinal `?4`, `Some(false)`:
/// all but ordinal `?4`), cached for the schema version.
fn page_sql(conn: &Connection, table: &str, filter: Option<bool>) -> Result<std::sync::Arc<str>> {
    let shared = state::get(conn)?;
    let key = format!("page/{filter:?}/{table}");
    shared.cached_sql(conn, &key, || {
        let Some(info) = TableInfo::load(conn, table)? else {
            return Ok(String::new());
        };
        Ok(format!(
            "{} ORDER BY c.db_version, c.seq LIMIT ?5",
            table_select(
                &info,
                &format!("(c.db_version, c.seq) > (?1, ?2){}", filter_cond(filter))
            )
        ))
    })
}

fn count_sql(conn: &Connection, table: &str, filter: Option<bool>) -> Result<std::sync::Arc<str>> {
    let shared = state::get(conn)?;
    let key = format!("count/{filter:?}/{table}");
    shared.cached_sql(conn, &key, || {
        Ok(format!(
            "SELECT count(*) FROM {} AS c WHERE (c.db_version, c.seq) > (?1, ?2){}",
            super::tables::clock_ident(table),
            filter_cond(filter)
        ))
    })
}

/// Names of the replicated tables, cached for the schema version.
fn table_names(conn: &Connection) -> Result<Vec<String>> {
    let shared = state::get(conn)?;
    let names = shared.cached_sql(conn, "page/tables", || {
        Ok(crr_tables(conn)?
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join("\n"))
    })?;
    Ok(names
        .split('\n')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The SQL filter mode (see [`page_sql`]) and site ordinal to bind for `filter`.
fn resolve(conn: &Connection, filter: SiteFilter<'_>) -> Result<(Option<bool>, i64)> {
    Ok(match filter {
        SiteFilter::All => (None, 0),
        SiteFilter::Local => (Some(true), 0),
        SiteFilter::Exclude(site) => {
            let ord: Option<i64> = conn
                .prepare_cached("SELECT ordinal FROM crsql_site_id WHERE site_id = ?1")?
                .query_row([site], |r| r.get(0))
                .optional()?;
            match ord {
                Some(o) => (Some(false), o),
                // A site this database never heard of wrote none of its rows.
                None => (None, 0),
            }
        }
    })
}

fn order(a: &Change, b: &Change) -> Ordering {
    (a.db_version, a.seq, &a.table, &a.pk, &a.cid).cmp(&(
        b.db_version,
        b.seq,
        &b.table,
        &b.pk,
        &b.cid,
    ))
}

fn read_page(
    conn: &Connection,
    after: Cursor,
    limit: usize,
    mode: Option<bool>,
    ordinal: i64,
) -> Result<Vec<Change>> {
    let shared = state::get(conn)?;
    let want = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    let mut names = Names::default();
    for table in table_names(conn)? {
        let sql = page_sql(conn, &table, mode)?;
        if sql.is_empty() {
            continue;
        }
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.raw_bind_parameter(1, after.db_version)?;
        stmt.raw_bind_parameter(2, after.seq)?;
        stmt.raw_bind_parameter(3, &shared.site_id[..])?;
        if mode.is_some() {
            stmt.raw_bind_parameter(4, ordinal)?;
        }
        stmt.raw_bind_parameter(5, want)?;
        let mut it = stmt.raw_query();
        while let Some(r) = it.next()? {
            rows.push(read_change(r, &mut names)?);
        }
    }
    rows.sort_by(order);
    Ok(rows)
}

/// Up to `limit` change rows after `after` (at least one when any exists), in `(db_version,
/// seq)` order, filtered by writer.
///
/// ```
/// # use synqlite_core::crdt::{self, Cursor, SiteFilter};
/// # let mut conn = rusqlite::Connection::open_in_memory().unwrap();
/// # crdt::init(&mut conn).unwrap();
/// conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, v TEXT);
///                     SELECT crsql_as_crr('t');
///                     INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');").unwrap();
/// let first = crdt::changes_page(&conn, Cursor::START, 2, SiteFilter::All).unwrap();
/// assert_eq!((first.changes.len(), first.complete), (2, false));
/// let rest = crdt::changes_page(&conn, first.next, 2, SiteFilter::All).unwrap();
/// assert_eq!((rest.changes.len(), rest.complete), (1, true));
/// ```
pub fn changes_page(
    conn: &Connection,
    after: Cursor,
    limit: usize,
    filter: SiteFilter<'_>,
) -> Result<Page> {
    let limit = limit.max(1);
    let (mode, ordinal) = resolve(conn, filter)?;
    let mut fetch = limit;
    loop {
        // One row more than asked shows whether the page would split a tie group.
        let mut rows = read_page(conn, after, fetch.saturating_add(1), mode, ordinal)?;
        if rows.len() <= fetch {
            let end = Cursor {
                db_version: super::db_version(conn)?,
                seq: i64::MAX,
            };
            let last = rows.last().map(Cursor::after).unwrap_or(after);
            return Ok(Page {
                changes: rows,
                next: after.max(last).max(end),
                complete: true,
            });
        }
        let boundary = Cursor::after(&rows[fetch]);
        let mut keep = fetch;
        while keep > 0 && Cursor::after(&rows[keep - 1]) == boundary {
            keep -= 1;
        }
        if keep == 0 {
            // The whole page is one tie group: read more until the group ends.
            fetch = fetch.saturating_mul(4);
            continue;
        }
        rows.truncate(keep);
        let next = Cursor::after(&rows[keep - 1]);
        return Ok(Page {
            changes: rows,
            next,
            complete: false,
        });
    }
}

/// Approximate encoded size of a change row (what a sync frame carries for it).
pub fn change_size(c: &Change) -> usize {
    let val = match &c.val {
        rusqlite::types::Value::Text(t) => t.len(),
        rusqlite::types::Value::Blob(b) => b.len(),
        _ => 9,
    };
    c.pk.len() + val + 24
}

/// Cuts `page` so its rows' [`change_size`] sum stays within `max_bytes` (keeping at least the
/// first group of rows sharing one `(db_version, seq)`, so a single huge row still goes
/// through), and never inside such a group. A cut page is not complete and continues after its
/// last row.
pub fn limit_page_bytes(mut page: Page, max_bytes: usize) -> Page {
    let mut total = 0usize;
    let mut cut = None;
    for (i, c) in page.changes.iter().enumerate() {
        total = total.saturating_add(change_size(c));
        if total > max_bytes && i > 0 {
            cut = Some(i);
            break;
        }
    }
    let Some(mut keep) = cut else {
        return page;
    };
    let boundary = Cursor::after(&page.changes[keep]);
    while keep > 0 && Cursor::after(&page.changes[keep - 1]) == boundary {
        keep -= 1;
    }
    if keep == 0 {
        // The first group alone is over the budget: send it whole.
        keep = page
            .changes
            .iter()
            .take_while(|c| Cursor::after(c) == boundary)
            .count();
        if keep == page.changes.len() {
            return page;
        }
    }
    page.changes.truncate(keep);
    page.next = Cursor::after(&page.changes[keep - 1]);
    page.complete = false;
    page
}

/// How many change rows [`changes_page`] would return after `after` in total.
pub fn count_changes(conn: &Connection, after: Cursor, filter: SiteFilter<'_>) -> Result<u64> {
    let (mode, ordinal) = resolve(conn, filter)?;
    let mut total: i64 = 0;
    for table in table_names(conn)? {
        let sql = count_sql(conn, &table, mode)?;
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.raw_bind_parameter(1, after.db_version)?;
        stmt.raw_bind_parameter(2, after.seq)?;
        if mode.is_some() {
            stmt.raw_bind_parameter(4, ordinal)?;
        }
        let mut it = stmt.raw_query();
        if let Some(r) = it.next()? {
            total = total.saturating_add(r.get::<_, i64>(0)?);
        }
    }
    Ok(u64::try_from(total).unwrap_or(0))
}

/// The cursor of what this database has received from `site` (`None`: nothing yet).
pub fn peer_cursor(conn: &Connection, site: &[u8]) -> Result<Option<Cursor>> {
    Ok(conn
        .prepare_cached(
            "SELECT version, coalesce(seq, 0) FROM crsql_tracked_peers \
             WHERE site_id = ?1 AND tag = 0 AND event = ?2",
        )?
        .query_row(rusqlite::params![site, EVENT_RECEIVE], |r| {
            Ok(Cursor {
                db_version: r.get(0)?,
                seq: r.get(1)?,
            })
        })
        .optional()?)
}

/// Every peer this database has received from, with its cursor.
pub fn peer_cursors(conn: &Connection) -> Result<Vec<(Vec<u8>, Cursor)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT site_id, version, coalesce(seq, 0) FROM crsql_tracked_peers \
         WHERE tag = 0 AND event = ?1 ORDER BY site_id",
    )?;
    let rows = stmt
        .query_map([EVENT_RECEIVE], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                Cursor {
                    db_version: r.get(1)?,
                    seq: r.get(2)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Forgets what was received from `site` (its next changes are taken from the start). For a
/// peer whose database went back in time.
pub fn forget_peer_cursor(conn: &Connection, site: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM crsql_tracked_peers WHERE site_id = ?1 AND tag = 0 AND event = ?2",
    )?
    .execute(rusqlite::params![site, EVENT_RECEIVE])?;
    Ok(())
}

/// Records that everything of `site` up to `cursor` was received; never moves a cursor back.
/// Run it in the transaction that applied those changes.
pub fn set_peer_cursor(conn: &Connection, site: &[u8], cursor: Cursor) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO crsql_tracked_peers (site_id, version, seq, tag, event) \
         VALUES (?1, ?2, ?3, 0, ?4) \
         ON CONFLICT (site_id, tag, event) DO UPDATE SET version = excluded.version, \
         seq = excluded.seq WHERE (excluded.version, excluded.seq) > (version, coalesce(seq, 0))",
    )?
    .execute(rusqlite::params![
        site,
        cursor.db_version,
        cursor.seq,
        EVENT_RECEIVE
    ])?;
    Ok(())
}
