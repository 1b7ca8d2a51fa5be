//! Running caller SQL: single or multiple statements, cached statements, atomic batches.
//!
//! A SQL string with one statement is prepared once and served from rusqlite's statement cache on
//! later calls. A string with several statements (a schema script) runs them in order; this is the
//! slow path and is not cached. Rows go to a [`RowSink`], so the wasm bindings can build JS values
//! directly without an intermediate copy.

use crate::error::Result;
use crate::params::{Binder, Params};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Row, Statement};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecResult {
    /// Rows inserted, updated or deleted by the call's statements (not counting trigger writes).
    pub changes: u64,
    /// `last_insert_rowid()` of the connection after the call.
    pub last_insert_rowid: i64,
}

/// Receives the result rows of a query.
pub trait RowSink {
    /// A statement that returns rows starts; its column names. Called once per such statement,
    /// so a sink that keeps only the last result set resets here.
    fn columns(&mut self, names: &[&str]) -> Result<()>;
    /// One row of the current statement.
    fn row(&mut self, row: &Row<'_>, ncols: usize) -> Result<()>;
}

/// Rows collected as owned values (used natively and by the server).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    /// Column names of the last statement that returned rows.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: Vec<Vec<Value>>,
}

impl RowSink for QueryResult {
    fn columns(&mut self, names: &[&str]) -> Result<()> {
        self.columns = names.iter().map(|n| (*n).to_owned()).collect();
        self.rows.clear();
        Ok(())
    }

    fn row(&mut self, row: &Row<'_>, ncols: usize) -> Result<()> {
        let mut out = Vec::with_capacity(ncols);
        for i in 0..ncols {
            out.push(owned(row.get_ref(i)?));
        }
        self.rows.push(out);
        Ok(())
    }
}

/// A sink that discards rows (for `exec`).
struct Discard;

impl RowSink for Discard {
    fn columns(&mut self, _: &[&str]) -> Result<()> {
        Ok(())
    }
    fn row(&mut self, _: &Row<'_>, _: usize) -> Result<()> {
        Ok(())
    }
}

/// Runs `sql` (one or more statements) with `params`, discarding any rows.
///
/// Statements before a failing one stay applied unless the caller wraps the call in a
/// transaction; use [`batch`] for all-or-nothing.
pub fn exec(conn: &Connection, sql: &str, params: &Params) -> Result<ExecResult> {
    run(conn, sql, params, &mut Discard)
}

/// Runs `sql` and streams the rows of each statement that returns rows into `sink`.
pub fn query<S: RowSink>(
    conn: &Connection,
    sql: &str,
    params: &Params,
    sink: &mut S,
) -> Result<ExecResult> {
    run(conn, sql, params, sink)
}

/// Runs each `(sql, params)` in order, atomically: either all apply or none does. Outside a
/// transaction this is a transaction of its own; inside one, a savepoint.
///
/// On failure the error says which entry (0-based) failed and the database is as before the call.
pub fn batch(conn: &Connection, items: &[(String, Params)]) -> Result<Vec<ExecResult>> {
    // A real transaction when we can: its ROLLBACK is what tells observers (the change feed)
    // that nothing happened; `ROLLBACK TO` a savepoint tells them nothing.
    let own_tx = conn.is_autocommit();
    let (begin, commit, undo) = if own_tx {
        ("BEGIN", "COMMIT", "ROLLBACK")
    } else {
        (
            "SAVEPOINT synqlite_batch",
            "RELEASE synqlite_batch",
            "ROLLBACK TO synqlite_batch; RELEASE synqlite_batch",
        )
    };
    conn.prepare_cached(begin)?.execute([])?;
    let mut results = Vec::with_capacity(items.len());
    for (index, (sql, params)) in items.iter().enumerate() {
        match exec(conn, sql, params) {
            Ok(r) => results.push(r),
            Err(e) => {
                // If SQLite already rolled the transaction back (e.g. ON CONFLICT ROLLBACK), the
                // savepoint is gone with it and there is nothing left to undo.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch(undo);
                }
                return Err(e.context(&format!("batch statement {index}")));
            }
        }
    }
    if let Err(e) = conn.prepare_cached(commit).and_then(|mut s| s.execute([])) {
        if own_tx && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(e.into());
    }
    Ok(results)
}

fn run<S: RowSink>(
    conn: &Connection,
    sql: &str,
    params: &Params,
    sink: &mut S,
) -> Result<ExecResult> {
    let mut binder = Binder::new(params);
    let mut changes = 0;
    if is_blank(sql) {
        binder.finish()?;
        return Ok(ExecResult {
            changes,
            last_insert_rowid: conn.last_insert_rowid(),
        });
    }
    match conn.prepare_cached(sql) {
        Ok(mut stmt) => {
            step_all(&mut stmt, &mut binder, sink, true)?;
            if is_dml(sql, &stmt) {
                changes += conn.changes();
            }
        }
        // rusqlite reports several statements by preparing the rest of the string, which fails
        // when it refers to what an earlier statement creates; so any error on a string that
        // holds more than one statement means: run them one by one.
        Err(e) if matches!(e, rusqlite::Error::MultipleStatement) || has_several(sql) => {
            let mut offset = 0;
            while offset < sql.len() {
                let rest = &sql[offset..];
                let (mut stmt, tail) = prepare_one(conn, rest)?;
                offset += tail;
                match stmt.as_mut() {
                    Some(stmt) => {
                        step_all(stmt, &mut binder, sink, false)?;
                        if is_dml(rest, stmt) {
                            changes += conn.changes();
                        }
                    }
                    None => break,
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    binder.finish()?;
    Ok(ExecResult {
        changes,
        last_insert_rowid: conn.last_insert_rowid(),
    })
}

/// Whether a statement is an INSERT, UPDATE or DELETE (possibly behind a WITH clause), the only
/// statements whose row count `sqlite3_changes` reports; any other statement leaves a stale value.
fn is_dml(sql: &str, stmt: &Statement<'_>) -> bool {
    let keyword: String = skip_comments(sql)
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match keyword.as_str() {
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" => true,
        "WITH" => !stmt.readonly(),
        _ => false,
    }
}

/// Prepares the first statement of `sql`, returning it (None for only whitespace/comments) and
/// the byte length it consumed.
fn prepare_one<'c>(conn: &'c Connection, sql: &str) -> Result<(Option<Statement<'c>>, usize)> {
    // rusqlite has no public "prepare with tail" API; find the end of the first complete
    // statement with sqlite3_complete over growing prefixes cut at ';'.
    let mut end = None;
    for (i, _) in sql.match_indices(';') {
        if is_complete(&sql[..=i]) {
            end = Some(i + 1);
            break;
        }
    }
    let end = end.unwrap_or(sql.len());
    let piece = &sql[..end];
    if is_blank(piece) {
        return Ok((None, end.max(1)));
    }
    Ok((Some(conn.prepare(piece)?), end))
}

/// Whether `sql` holds more than one statement.
fn has_several(sql: &str) -> bool {
    sql.match_indices(';')
        .find(|(i, _)| is_complete(&sql[..=*i]))
        .is_some_and(|(i, _)| !is_blank(&sql[i + 1..]))
}

fn is_complete(sql: &str) -> bool {
    match std::ffi::CString::new(sql) {
        // SAFETY: sqlite3_complete reads a NUL-terminated string and has no other preconditions.
        Ok(c) => unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 },
        Err(_) => false,
    }
}

/// True when `sql` holds no statement: only whitespace, `;` and comments.
fn is_blank(sql: &str) -> bool {
    skip_comments(sql).is_empty()
}

/// `sql` without its leading whitespace, `;` and comments.
fn skip_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            return rest;
        }
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
    }
}

fn step_all<S: RowSink>(
    stmt: &mut Statement<'_>,
    binder: &mut Binder<'_>,
    sink: &mut S,
    only: bool,
) -> Result<()> {
    binder.bind(stmt, only)?;
    let ncols = stmt.column_count();
    if ncols > 0 {
        let names: Vec<&str> = stmt.column_names().collect();
        sink.columns(&names)?;
    }
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        sink.row(row, ncols)?;
    }
    Ok(())
}

/// Copies a cell out of SQLite; TEXT that is not valid UTF-8 is decoded lossily.
pub fn owned(cell: ValueRef<'_>) -> Value {
    match cell {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
