//! Which tables a query reads, found by SQLite itself (the authorizer sees every table access,
//! also through views, subqueries and CTEs) rather than by parsing SQL. Live queries re-run when
//! one of these tables changes.

use crate::crdt::is_metadata_table;
use crate::error::Result;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The user tables `sql` reads, sorted. The statement is prepared (not run) once with an
/// authorizer installed; errors in `sql` are returned as they would be by running it.
pub fn tables_read(conn: &mut Connection, sql: &str) -> Result<Vec<String>> {
    let found = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = found.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let AuthAction::Read { table_name, .. } = ctx.action {
            if !is_metadata_table(table_name) && !table_name.starts_with("sqlite_") {
                let name = match ctx.database_name {
                    Some("main") | None => table_name.to_owned(),
                    Some(db) => format!("{db}.{table_name}"),
                };
                if let Ok(mut set) = sink.lock() {
                    set.insert(name);
                }
            }
        }
        Authorization::Allow
    }))?;
    // Prepared fresh (a cached statement would not consult the authorizer).
    let prepared = conn.prepare(sql).map(drop);
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
    prepared?;
    let set = std::mem::take(&mut *found.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(set.into_iter().collect())
}
