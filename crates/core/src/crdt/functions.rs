//! SQL functions registered on each connection, named as in cr-sqlite 0.16 so existing vlcn
//! schemas and queries run unchanged.
//!
//! | function | does |
//! |---|---|
//! | `crsql_as_crr([schema,] table)` | [`as_crr`](super::as_crr); returns `'OK'` |
//! | `crsql_as_table([schema,] table)` | stop replicating the table |
//! | `crsql_begin_alter([schema,] table)` / `crsql_commit_alter([schema,] table)` | schema change |
//! | `crsql_site_id()` | this database's 16-byte site id |
//! | `crsql_db_version()` | last committed db_version |
//! | `crsql_next_db_version([merging])` | this transaction's db_version |
//! | `crsql_increment_and_get_seq()` / `crsql_get_seq()` | `seq` within the transaction |
//! | `crsql_pack_columns(v, ...)` | packed primary key |
//! | `crsql_rows_impacted()` | rows merged in the current transaction |
//! | `crsql_config_set(name, v)` / `crsql_config_get(name)` | `'merge-equal-values'` (0.16.3) |
//! | `crsql_finalize()` | no-op kept for clients that call it before closing |
//! | `crsql_internal_sync_bit([v])` | set while merging, so triggers stay silent |
//! | `crsql_internal_unpack(pk, i)` | i-th value of a packed key (used by `changes_since`) |

use super::state::Shared;
use super::{alter, crr, pack};
use crate::error::Error;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use std::sync::Arc;

fn user_err(e: Error) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(e))
}

fn misuse(msg: &str) -> rusqlite::Error {
    user_err(Error::InvalidArgument(msg.to_owned()))
}

/// The table argument of `crsql_as_crr('t')` / `crsql_as_crr('main', 't')`.
fn table_arg(ctx: &Context<'_>, fname: &str) -> rusqlite::Result<String> {
    let text = |i: usize| -> rusqlite::Result<String> {
        match ctx.get_raw(i) {
            ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
            _ => Err(misuse(&format!("{fname}: table name must be text"))),
        }
    };
    match ctx.len() {
        1 => text(0),
        2 => {
            let schema = text(0)?;
            if !schema.eq_ignore_ascii_case("main") {
                return Err(misuse(&format!(
                    "{fname}: only tables of the main schema can be replicated, not {schema}"
                )));
            }
            text(1)
        }
        _ => Err(misuse(&format!(
            "{fname}: pass the table name, or the schema name and the table name"
        ))),
    }
}

/// Registers every function on `conn`, bound to `shared`.
pub(crate) fn register(conn: &Connection, shared: &Arc<Shared>) -> rusqlite::Result<()> {
    let utf8 = FunctionFlags::SQLITE_UTF8;
    let innocuous = utf8 | FunctionFlags::SQLITE_INNOCUOUS;
    let pure = innocuous | FunctionFlags::SQLITE_DETERMINISTIC;
    let direct = utf8 | FunctionFlags::SQLITE_DIRECTONLY;

    let s = shared.clone();
    conn.create_scalar_function("crsql_site_id", 0, pure, move |_| Ok(s.site_id.to_vec()))?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_db_version", 0, innocuous, move |ctx| {
        // SAFETY: the handle is only used on this thread, during this call.
        let conn = unsafe { ctx.get_connection()? };
        s.db_version(&conn).map_err(user_err)
    })?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_next_db_version", -1, innocuous, move |ctx| {
        let merging = match ctx.len() {
            0 => None,
            _ => match ctx.get_raw(0) {
                ValueRef::Integer(i) => Some(i),
                ValueRef::Null => None,
                _ => return Err(misuse("crsql_next_db_version: argument must be an integer")),
            },
        };
        if let Some(v) = s.pending_db_version(merging) {
            return Ok(v);
        }
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        s.next_db_version(&conn, merging).map_err(user_err)
    })?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_increment_and_get_seq", 0, innocuous, move |_| {
        Ok(s.next_seq())
    })?;
    let s = shared.clone();
    conn.create_scalar_function("crsql_get_seq", 0, innocuous, move |_| Ok(s.seq()))?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_internal_sync_bit", -1, innocuous, move |ctx| {
        if ctx.len() == 1 {
            let on = matches!(ctx.get_raw(0), ValueRef::Integer(i) if i != 0);
            s.set_sync_bit(on);
        }
        Ok(i64::from(s.sync_bit()))
    })?;

    conn.create_scalar_function("crsql_pack_columns", -1, pure, |ctx| {
        pack::pack_refs((0..ctx.len()).map(|i| ctx.get_raw(i))).map_err(user_err)
    })?;

    conn.create_scalar_function("crsql_internal_unpack", 2, pure, |ctx| {
        let (ValueRef::Blob(b), ValueRef::Integer(i)) = (ctx.get_raw(0), ctx.get_raw(1)) else {
            return Ok(Value::Null);
        };
        let i = usize::try_from(i).map_err(|_| misuse("crsql_internal_unpack: bad index"))?;
        pack::unpack_nth(b, i).map_err(user_err)
    })?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_rows_impacted", 0, innocuous, move |_| {
        Ok(s.rows_impacted())
    })?;

    conn.create_scalar_function("crsql_finalize", 0, direct, |_| Ok("finalized"))?;

    conn.create_scalar_function("crsql_as_crr", -1, direct, |ctx| {
        let table = table_arg(ctx, "crsql_as_crr")?;
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        crr::as_crr(&conn, &table).map_err(user_err)?;
        Ok("OK")
    })?;
    conn.create_scalar_function("crsql_as_table", -1, direct, |ctx| {
        let table = table_arg(ctx, "crsql_as_table")?;
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        alter::as_table(&conn, &table).map_err(user_err)?;
        Ok("OK")
    })?;
    conn.create_scalar_function("crsql_begin_alter", -1, direct, |ctx| {
        let table = table_arg(ctx, "crsql_begin_alter")?;
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        alter::begin_alter(&conn, &table).map_err(user_err)?;
        Ok("OK")
    })?;
    conn.create_scalar_function("crsql_commit_alter", -1, direct, |ctx| {
        let table = table_arg(ctx, "crsql_commit_alter")?;
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        alter::commit_alter(&conn, &table).map_err(user_err)?;
        Ok("OK")
    })?;

    let s = shared.clone();
    conn.create_scalar_function("crsql_config_set", 2, utf8, move |ctx| {
        let name = ctx.get::<String>(0)?;
        if name != "merge-equal-values" {
            return Err(misuse(&format!("crsql_config_set: unknown setting {name}")));
        }
        let value = ctx.get::<i64>(1)?;
        // SAFETY: as above.
        let conn = unsafe { ctx.get_connection()? };
        conn.execute(
            "INSERT OR REPLACE INTO crsql_master (key, value) VALUES ('config.merge-equal-values', ?1)",
            [value],
        )?;
        s.set_merge_equal_values(value != 0);
        Ok(value)
    })?;
    let s = shared.clone();
    conn.create_scalar_function("crsql_config_get", 1, innocuous, move |ctx| {
        let name = ctx.get::<String>(0)?;
        if name != "merge-equal-values" {
            return Err(misuse(&format!("crsql_config_get: unknown setting {name}")));
        }
        Ok(i64::from(s.merge_equal_values()))
    })?;
    Ok(())
}
