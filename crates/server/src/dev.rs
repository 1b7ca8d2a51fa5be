//! Development endpoints (`--dev` only): seed a room with rows, read a table, room stats. The
//! demo's "seed 50k rows" button, the browser tests and the benchmarks use them.
//!
//! - `POST /rooms/{room}/seed?rows=N[&table=T]` -> `{"rows": N, "changes": <change rows in the room>}`
//! - `GET /rooms/{room}/rows/{table}` -> JSON array of rows (arrays, BLOBs as hex), by primary key
//! - `GET /rooms/{room}/stats` -> `{"changes": n, "tables": {"songs": rows, ...},
//!   "db_version": v, "site_id": "<32 hex digits>", "connections": joined clients}`
//!
//! Errors are JSON `{"code": "...", "message": "..."}` with status 400 (bad room, table or
//! argument), 503 (shutting down) or 500.

use crate::error::ServerError;
use crate::http::{authorize_dev, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as Json_};
use std::collections::HashMap;
use std::sync::Arc;
use synqlite_core::crdt::{self, Cursor, SiteFilter};
use synqlite_core::rusqlite::types::ValueRef;
use synqlite_core::rusqlite::Connection;
use synqlite_core::Error as CoreError;

/// Most rows one seed call inserts.
pub const MAX_SEED_ROWS: usize = 1_000_000;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = match self.code() {
            "INVALID_ROOM" | "INVALID_ARGUMENT" | "SQLITE_CONSTRAINT" => StatusCode::BAD_REQUEST,
            "UNAUTHORIZED" => StatusCode::UNAUTHORIZED,
            "FORBIDDEN" => StatusCode::FORBIDDEN,
            "SERVER_BUSY" => StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(json!({ "code": self.code(), "message": self.to_string() })),
        )
            .into_response()
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Columns of `table`: `(name, declared type, primary-key position)`; an error if it is not a
/// user table.
fn columns(conn: &Connection, table: &str) -> Result<Vec<(String, String, i64)>, CoreError> {
    if crdt::is_metadata_table(table) {
        return Err(CoreError::InvalidArgument(format!("{table} is metadata")));
    }
    let mut stmt = conn.prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")?;
    let cols = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    if cols.is_empty() {
        return Err(CoreError::InvalidArgument(format!("no table {table}")));
    }
    Ok(cols)
}

/// Rows per seed transaction.
pub const SEED_BATCH: usize = 5000;

/// How [`seed_batch`] fills a table: the insert statement and this seeding's id prefix.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    table: String,
    sql: String,
    prefix: String,
}

/// Plans seeding `table`: `songs` gets plausible songs (title, artist, album, seconds, JSON
/// metadata: the five columns set); other tables a value per column from its declared type.
/// Ids are `seed-<random hex>-<i>`, unique across seedings.
pub fn seed_plan(conn: &Connection, table: &str) -> Result<SeedPlan, CoreError> {
    let cols = columns(conn, table)?;
    let nonce: String = conn.query_row("SELECT lower(hex(randomblob(4)))", [], |r| r.get(0))?;
    let sql = if table == "songs" {
        "INSERT INTO songs (id, title, artist, album, seconds, metadata) VALUES \
         (?1, 'Song ' || ?2, 'Artist ' || (?2 % 500), 'Album ' || (?2 % 2000), 60 + ?2 % 300, \
         json_object('artist', 'Artist ' || (?2 % 500), 'genre', 'genre ' || (?2 % 12)))"
            .to_owned()
    } else {
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (name, ty, pk) in &cols {
            let ty = ty.to_ascii_uppercase();
            names.push(quote(name));
            values.push(if *pk > 0 {
                if ty.contains("INT") {
                    "?2".to_owned()
                } else {
                    "?1".to_owned()
                }
            } else if ty.contains("INT") {
                "?2".to_owned()
            } else if ty.contains("REAL") || ty.contains("FLOA") || ty.contains("DOUB") {
                // Never integral: some clients cannot bind an integral REAL as a REAL.
                "?2 + 0.25".to_owned()
            } else if ty.contains("BLOB") {
                "randomblob(16)".to_owned()
            } else {
                format!("'{} ' || ?2", name.replace('\'', "''"))
            });
        }
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(table),
            names.join(", "),
            values.join(", ")
        )
    };
    Ok(SeedPlan {
        table: table.to_owned(),
        sql,
        prefix: format!("seed-{nonce}"),
    })
}

/// Inserts the rows numbered `from..to` of `plan` in one transaction.
pub fn seed_batch(
    conn: &Connection,
    plan: &SeedPlan,
    from: usize,
    to: usize,
) -> Result<(), CoreError> {
    let mut stmt = conn.prepare_cached(&plan.sql)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = (from..to).try_for_each(|i| {
        stmt.execute(synqlite_core::rusqlite::params![
            format!("{}-{i:07}", plan.prefix),
            i as i64
        ])
        .map(|_| ())
    });
    match r.and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(CoreError::from(e).context(&format!("seeding {}", plan.table)))
        }
    }
}

fn check_seed_rows(n: usize) -> Result<(), CoreError> {
    if n > MAX_SEED_ROWS {
        return Err(CoreError::InvalidArgument(format!(
            "at most {MAX_SEED_ROWS} rows per seed"
        )));
    }
    Ok(())
}

/// Inserts `n` generated rows into `table` ([`seed_plan`]) in transactions of
/// [`SEED_BATCH`] rows. Returns the room's change-row count.
pub fn seed_rows(conn: &Connection, table: &str, n: usize) -> Result<u64, CoreError> {
    check_seed_rows(n)?;
    let plan = seed_plan(conn, table)?;
    let mut done = 0;
    while done < n {
        let end = (done + SEED_BATCH).min(n);
        seed_batch(conn, &plan, done, end)?;
        done = end;
    }
    crdt::count_changes(conn, Cursor::START, SiteFilter::All)
}

fn rows_json(conn: &Connection, table: &str) -> Result<Json_, CoreError> {
    let cols = columns(conn, table)?;
    let mut pks: Vec<&(String, String, i64)> = cols.iter().filter(|c| c.2 > 0).collect();
    pks.sort_by_key(|c| c.2);
    let order = if pks.is_empty() {
        "rowid".to_owned()
    } else {
        pks.iter()
            .map(|c| quote(&c.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let list = cols
        .iter()
        .map(|c| quote(&c.0))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {list} FROM {} ORDER BY {order}",
        quote(table)
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Json_::Null,
                ValueRef::Integer(v) => json!(v),
                ValueRef::Real(v) => json!(v),
                ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => {
                    json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                }
            });
        }
        out.push(Json_::Array(row));
    }
    Ok(Json_::Array(out))
}

fn stats_json(conn: &Connection) -> Result<Json_, CoreError> {
    let changes = crdt::count_changes(conn, Cursor::START, SiteFilter::All)?;
    let mut stmt = conn.prepare(
        "SELECT substr(name, 1, length(name) - 13) FROM sqlite_master \
         WHERE type = 'table' AND name LIKE '%\\_\\_crsql\\_clock' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut tables = serde_json::Map::new();
    for t in names {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(&t)), [], |r| {
            r.get(0)
        })?;
        tables.insert(t, json!(n));
    }
    Ok(json!({
        "changes": changes,
        "tables": tables,
        "db_version": crdt::db_version(conn)?,
        "site_id": crate::connection::hex(&crdt::site_id(conn)?),
    }))
}

/// `POST /rooms/{room}/seed?rows=N&table=T` (defaults: 1000 rows, `songs`). Each batch of
/// [`SEED_BATCH`] rows is its own transaction on the room's thread, whose clients are served
/// (the new rows included) between batches.
pub async fn seed(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Json_>, ServerError> {
    authorize_dev(&state, &headers, &room).await?;
    let n: usize = q
        .get("rows")
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| CoreError::InvalidArgument("rows must be a non-negative integer".into()))?
        .unwrap_or(1000);
    check_seed_rows(n)?;
    let table = q.get("table").cloned().unwrap_or_else(|| "songs".into());
    let room = state.rooms.get(&room).await?;
    let t = table.clone();
    let plan = Arc::new(room.with(move |conn| seed_plan(conn, &t)).await??);
    let mut done = 0;
    while done < n {
        if *state.stop.borrow() {
            return Err(ServerError::ShuttingDown);
        }
        let end = (done + SEED_BATCH).min(n);
        let p = plan.clone();
        room.with(move |conn| seed_batch(conn, &p, done, end))
            .await??;
        done = end;
    }
    let changes = room
        .with(|conn| crdt::count_changes(conn, Cursor::START, SiteFilter::All))
        .await??;
    tracing::info!(room = room.name, table, rows = n, changes, "seeded");
    Ok(Json(json!({ "rows": n, "changes": changes })))
}

/// `GET /rooms/{room}/rows/{table}`.
pub async fn rows(
    State(state): State<Arc<AppState>>,
    Path((room, table)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Json_>, ServerError> {
    authorize_dev(&state, &headers, &room).await?;
    let room = state.rooms.get(&room).await?;
    Ok(Json(room.with(move |conn| rows_json(conn, &table)).await??))
}

/// `GET /rooms/{room}/stats`.
pub async fn stats(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Json_>, ServerError> {
    authorize_dev(&state, &headers, &room).await?;
    let room = state.rooms.get(&room).await?;
    let mut stats = room.with(stats_json).await??;
    stats["connections"] = json!(room.connections());
    Ok(Json(stats))
}
