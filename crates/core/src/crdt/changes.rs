//! Reading change rows (`SELECT ... FROM crsql_changes WHERE db_version > ?` in cr-sqlite).
//!
//! One row per clock, as cr-sqlite 0.16's `changes_vtab_read.rs` / `changes_vtab.rs` produce
//! them:
//! - `table`, `pk` (the packed primary key), `cid` (column name, or `'-1'` for the sentinel);
//! - `val`: the column's current value in the table (NULL for sentinels); a column clock whose
//!   row is missing (possible only after writes with the triggers off) keeps its `cid` and has a
//!   NULL `val`, as cr-sqlite's `crsql_changes` reads it (its row statement finds no row, and a
//!   column of a statement without a row is NULL);
//! - `col_version`, `db_version` (local: when this database last wrote or merged it), `seq`;
//! - `site_id`: the 16-byte id of the database that made the change: this database's id for
//!   local writes, the original writer's for merged ones;
//! - `cl`: the row's causal length, the sentinel's `col_version`, 1 when there is no sentinel.
//!
//! Ordered by `(db_version, seq)` (cr-sqlite's default order); ties, which only backfills after
//! an alter can create, are broken by table, pk and cid so the order is deterministic.
//!
//! The rows read by one call share their table names, column names and site ids ([`Names`]).

use super::state;
use super::tables::{clock_ident, crr_tables, quote_ident, quote_str, TableInfo};
use super::Change;
use crate::error::Result;
use rusqlite::types::{FromSqlError, Type, ValueRef};
use rusqlite::Connection;
use std::collections::HashSet;
use std::sync::Arc;

/// `SELECT <the nine change columns> FROM <clock> ... WHERE <cond>` for one table; `?3` must be
/// bound to this database's site id.
pub(super) fn table_select(info: &TableInfo, cond: &str) -> String {
    let clock = clock_ident(&info.name);
    let tbl = quote_ident(&info.name);
    let (join, val) = if info.cols.is_empty() {
        (String::new(), "NULL".to_owned())
    } else {
        let on = info
            .pks
            .iter()
            .enumerate()
            .map(|(i, p)| format!("b.{} = crsql_internal_unpack(c.key, {i})", quote_ident(p)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let cases = info
            .cols
            .iter()
            .map(|col| format!("WHEN {} THEN b.{}", quote_str(col), quote_ident(col)))
            .collect::<Vec<_>>()
            .join(" ");
        (
            format!("LEFT JOIN {tbl} AS b ON c.col_name != '-1' AND {on}"),
            format!("CASE c.col_name {cases} ELSE NULL END"),
        )
    };
    format!(
        "SELECT {name} AS tbl, c.key AS pk, c.col_name AS cid, {val} AS val, c.col_version AS col_version, \
         c.db_version AS db_version, coalesce(s.site_id, ?3) AS site_id, \
         coalesce(cl.col_version, 1) AS cl, c.seq AS seq \
         FROM {clock} AS c {join} \
         LEFT JOIN {clock} AS cl ON cl.key = c.key AND cl.col_name = '-1' \
         LEFT JOIN crsql_site_id AS s ON s.ordinal = c.site_id \
         WHERE {cond}",
        name = quote_str(&info.name),
    )
}

fn table_query(info: &TableInfo, exclude: bool) -> String {
    let filter = if exclude {
        " AND coalesce(s.site_id, ?3) IS NOT ?2"
    } else {
        ""
    };
    table_select(info, &format!("c.db_version > ?1{filter}"))
}

fn build_query(conn: &Connection, exclude: bool) -> Result<String> {
    let parts: Vec<String> = crr_tables(conn)?
        .iter()
        .map(|t| table_query(t, exclude))
        .collect();
    if parts.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "SELECT tbl, pk, cid, val, col_version, db_version, site_id, cl, seq FROM ({}) \
         ORDER BY db_version, seq, tbl, pk, cid",
        parts.join(" UNION ALL ")
    ))
}

/// Change rows with `db_version > since`, ordered by `(db_version, seq)`, optionally without
/// those whose `site_id` is `exclude_site` (typically the peer being sent to).
pub fn changes_since(
    conn: &Connection,
    since: i64,
    exclude_site: Option<&[u8]>,
) -> Result<Vec<Change>> {
    let shared = state::get(conn)?;
    let key = if exclude_site.is_some() {
        "changes_since/exclude"
    } else {
        "changes_since"
    };
    let sql = shared.cached_sql(conn, key, || build_query(conn, exclude_site.is_some()))?;
    if sql.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.raw_bind_parameter(1, since)?;
    if let Some(site) = exclude_site {
        stmt.raw_bind_parameter(2, site)?;
    }
    stmt.raw_bind_parameter(3, &shared.site_id[..])?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    let mut names = Names::default();
    while let Some(r) = rows.next()? {
        out.push(read_change(r, &mut names)?);
    }
    Ok(out)
}

/// One shared copy of each table name, column name and site id met while reading rows.
#[derive(Default)]
pub(super) struct Names {
    strs: HashSet<Arc<str>>,
    sites: HashSet<Arc<[u8]>>,
}

impl Names {
    fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strs.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.strs.insert(a.clone());
        a
    }

    fn site(&mut self, b: &[u8]) -> Arc<[u8]> {
        if let Some(a) = self.sites.get(b) {
            return a.clone();
        }
        let a: Arc<[u8]> = b.into();
        self.sites.insert(a.clone());
        a
    }
}

fn conversion(i: usize, ty: Type, e: FromSqlError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, ty, Box::new(e))
}

/// A [`Change`] from a row of [`table_select`].
pub(super) fn read_change(r: &rusqlite::Row<'_>, names: &mut Names) -> Result<Change> {
    let text = |i: usize| -> Result<&str> {
        Ok(r.get_ref(i)?
            .as_str()
            .map_err(|e| conversion(i, Type::Text, e))?)
    };
    let site = match r.get_ref(6)? {
        ValueRef::Blob(b) => names.site(b),
        ValueRef::Null => names.site(&[]),
        v => {
            return Err(conversion(6, v.data_type(), FromSqlError::InvalidType).into());
        }
    };
    Ok(Change {
        table: names.str(text(0)?),
        pk: r.get(1)?,
        cid: names.str(text(2)?),
        val: crate::exec::owned(r.get_ref(3)?),
        col_version: r.get(4)?,
        db_version: r.get(5)?,
        site_id: site,
        cl: r.get(7)?,
        seq: r.get(8)?,
    })
}
