//! The worker-side database object that the npm package's worker script drives.
//!
//! One `Database` owns one SQLite connection on the storage chosen at open. Every method is
//! synchronous except `open` and the durability promise of `flush`, so SQL runs without
//! interleaving; the worker script serializes calls and transactions.

use crate::errors::{js, to_js, JsResult};
use crate::storage::{self, Backend};
use crate::values::{cell_to_js, integer_to_js, is_safe_integer, params_from_js};
use js_sys::{
    Array, BigInt64Array, Float64Array, Object, Promise, Reflect, Uint32Array, Uint8Array,
};
use std::cell::RefCell;
use synqlite_core::change_feed::{ChangeFeed, RowOp, TxChanges};
use synqlite_core::rusqlite::{Connection, Row};
use synqlite_core::{crdt, schema, Error, ExecResult, Params, RowSink};
use wasm_bindgen::prelude::*;

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 256;

struct Open {
    conn: Connection,
    backend: Backend,
    feed: ChangeFeed,
}

/// A SQLite database opened inside a worker.
///
/// ```js
/// import init, { Database } from './wasm/synqlite.js';
/// await init();
/// const db = await Database.open('media', 'auto');
/// db.exec('CREATE TABLE IF NOT EXISTS t (x)');
/// db.exec('INSERT INTO t VALUES (?)', [1]);
/// await db.flush();               // durable on IndexedDB; a no-op elsewhere
/// const { columns, values } = db.query('SELECT x FROM t');
/// db.close();
/// ```
#[wasm_bindgen]
pub struct Database {
    name: String,
    storage: &'static str,
    open: RefCell<Option<Open>>,
}

#[wasm_bindgen]
impl Database {
    /// Opens (creating if needed) the database `name` on `storage`: `'auto'` (default), `'opfs'`,
    /// `'idb'` or `'memory'`. Rejects with `STORAGE_UNAVAILABLE` when that storage cannot be used
    /// and `INVALID_ARGUMENT` for a bad name.
    pub async fn open(name: String, storage: Option<String>) -> JsResult<Database> {
        let wanted = storage.unwrap_or_else(|| "auto".into());
        let (mut conn, backend) = js(storage::open(&name, &wanted).await)?;
        let prepared = crdt::init(&mut conn).and_then(|()| ChangeFeed::install(&mut conn));
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let feed = match prepared {
            Ok(feed) => feed,
            Err(e) => {
                drop(conn);
                backend.release();
                return Err(to_js(e));
            }
        };
        let db = Database {
            name,
            storage: backend.kind(),
            open: RefCell::new(Some(Open {
                conn,
                backend,
                feed,
            })),
        };
        // A new database got its CRDT metadata (the site id): make that durable now.
        if let Some(durable) = db.flush()? {
            wasm_bindgen_futures::JsFuture::from(durable).await?;
        }
        db.take_changes();
        Ok(db)
    }

    /// The storage actually used: `'opfs'`, `'idb'` or `'memory'`.
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        self.storage.into()
    }

    /// The database name given to `open`.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Runs one or more statements, discarding rows. Returns `{ changes, lastInsertRowid }`.
    ///
    /// ```js
    /// db.exec('INSERT INTO songs (title) VALUES (:title)', { title: 'Intro' });
    /// ```
    pub fn exec(&self, sql: &str, params: JsValue) -> JsResult<JsValue> {
        let params = js(params_from_js(&params))?;
        let r = self.with_conn(|c| synqlite_core::exec(c, sql, &params))?;
        Ok(exec_result(&r))
    }

    /// Runs a query. Returns `{ columns, values, changes, lastInsertRowid }` where `values` holds
    /// the cells row after row (`values.length === rows * columns.length`).
    ///
    /// ```js
    /// const { columns, values } = db.query('SELECT id, title FROM songs WHERE id = ?', [1]);
    /// ```
    pub fn query(&self, sql: &str, params: JsValue) -> JsResult<JsValue> {
        let params = js(params_from_js(&params))?;
        let mut sink = JsRows::default();
        let r = self.with_conn(|c| synqlite_core::query(c, sql, &params, &mut sink))?;
        let out = exec_result(&r);
        set(&out, "columns", &sink.columns);
        set(&out, "values", &sink.values);
        Ok(out)
    }

    /// Runs `[[sql, params?], ...]` atomically: all statements apply or none does. Returns one
    /// `{ changes, lastInsertRowid }` per statement. The error names the failing entry.
    ///
    /// ```js
    /// db.batch([['INSERT INTO t VALUES (?)', [1]], ['INSERT INTO t VALUES (?)', [2]]]);
    /// ```
    pub fn batch(&self, items: JsValue) -> JsResult<Array> {
        let items = js(batch_items(&items))?;
        let results = self.with_conn(|c| synqlite_core::batch(c, &items))?;
        Ok(results.iter().map(exec_result).collect())
    }

    /// True when no transaction is open.
    #[wasm_bindgen(js_name = isAutocommit)]
    pub fn is_autocommit(&self) -> bool {
        self.open
            .borrow()
            .as_ref()
            .is_some_and(|o| o.conn.is_autocommit())
    }

    /// Makes committed writes durable. On IndexedDB storage, outside a transaction and with
    /// unsaved writes, returns a promise that resolves once the IndexedDB transaction holding
    /// them completed (rejecting with `SQLITE_FULL` on a full quota, in which case the writes are
    /// undone). Otherwise returns `undefined`: OPFS and memory writes are done when `exec` returns.
    /// Call it after every write and await it before running more SQL.
    pub fn flush(&self) -> JsResult<Option<Promise>> {
        let guard = self.open.borrow();
        let Some(open) = guard.as_ref() else {
            return Ok(None);
        };
        let Backend::Idb(store) = &open.backend else {
            return Ok(None);
        };
        if !open.conn.is_autocommit() || !store.is_dirty() {
            return Ok(None);
        }
        let pending = js(store.flush())?;
        Ok(Some(wasm_bindgen_futures::future_to_promise(async move {
            pending.await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })))
    }

    /// Closes the connection and releases the storage (OPFS handles, IndexedDB connection) so
    /// another worker can open the database. An open transaction is rolled back. Idempotent.
    pub fn close(&self) -> JsResult<()> {
        let Some(open) = self.open.borrow_mut().take() else {
            return Ok(());
        };
        let Open { conn, backend, .. } = open;
        let closed = conn.close().map_err(|(_, e)| to_js(e.into()));
        backend.release();
        closed
    }

    /// The transactions committed since the last call, oldest first, each as
    /// `{ tables, ops, table, rowids }`: row `i` is `ops[i]` (0 insert, 1 update, 2 delete) on
    /// `tables[table[i]]`, rowid `rowids[i]` (a `Float64Array`, or a `BigInt64Array` when a
    /// rowid is beyond ±2^53). Typed arrays clone in one copy when the worker broadcasts them.
    /// CRDT metadata tables are left out.
    ///
    /// ```js
    /// db.exec("INSERT INTO songs (title) VALUES ('x')");
    /// db.takeChanges(); // [{ tables: ['songs'], ops: Uint8Array [0], table: Uint32Array [0], rowids: Float64Array [1] }]
    /// ```
    #[wasm_bindgen(js_name = takeChanges)]
    pub fn take_changes(&self) -> Array {
        let guard = self.open.borrow();
        let Some(open) = guard.as_ref() else {
            return Array::new();
        };
        open.feed.take_compact().iter().map(tx_to_js).collect()
    }

    /// The tables `sql` reads (found by SQLite's authorizer, so views and subqueries count).
    ///
    /// ```js
    /// db.tablesRead('SELECT * FROM songs JOIN artists USING (artist_id)'); // ['artists', 'songs']
    /// ```
    #[wasm_bindgen(js_name = tablesRead)]
    pub fn tables_read(&self, sql: &str) -> JsResult<Array> {
        let mut guard = self.open.borrow_mut();
        let open = guard.as_mut().ok_or_else(|| to_js(Error::Closed))?;
        let tables = js(synqlite_core::read_set::tables_read(&mut open.conn, sql))?;
        Ok(tables.into_iter().map(JsValue::from).collect())
    }

    /// Makes `table` a replicated table (cr-sqlite's `crsql_as_crr`): its writes are recorded as
    /// change rows from now on, existing rows included. Idempotent. Rejects with
    /// `CRR_UNSUPPORTED` (and the reason) for tables cr-sqlite cannot replicate.
    ///
    /// ```js
    /// db.asCrr('songs');
    /// ```
    #[wasm_bindgen(js_name = asCrr)]
    pub fn as_crr(&self, table: &str) -> JsResult<()> {
        self.with_conn(|c| crdt::as_crr(c, table))
    }

    /// Change rows with `db_version > since`, ordered by `(db_version, seq)`, leaving out those
    /// made by `exclude_site`. See the module docs of `change_rows` for the value mapping.
    ///
    /// ```js
    /// const rows = db.changes(0n, undefined);
    /// ```
    pub fn changes(&self, since: JsValue, exclude_site: Option<Uint8Array>) -> JsResult<Array> {
        let since = js(crate::values::value_from_js(&since).and_then(|v| match v {
            synqlite_core::rusqlite::types::Value::Integer(i) => Ok(i),
            synqlite_core::rusqlite::types::Value::Null => Ok(0),
            _ => Err(Error::InvalidArgument(
                "since must be an integer db_version".into(),
            )),
        }))?;
        let exclude = exclude_site.map(|s| s.to_vec());
        let rows = self.with_conn(|c| crdt::changes_since(c, since, exclude.as_deref()))?;
        Ok(crate::change_rows::to_js(&rows))
    }

    /// Merges change rows (objects or 9-tuples) with cr-sqlite's rules in one transaction.
    /// Returns `{ received, applied }`.
    ///
    /// ```js
    /// const { applied } = db.applyChanges(peerRows);
    /// ```
    #[wasm_bindgen(js_name = applyChanges)]
    pub fn apply_changes(&self, rows: JsValue) -> JsResult<JsValue> {
        let rows = js(crate::change_rows::from_js(&rows))?;
        let stats = self.with_conn(|c| crdt::apply_changes(c, &rows))?;
        let out: JsValue = Object::new().into();
        set(&out, "received", &JsValue::from_f64(stats.received as f64));
        set(&out, "applied", &JsValue::from_f64(stats.applied as f64));
        Ok(out)
    }

    /// Applies a declarative schema (`mode`: `'strict'`, `'auto'` or `'reset'`); returns what
    /// happened: `'apply'`, `'noop'`, `'migrate'` or `'reset'`. A different version rejects with
    /// `SCHEMA_MISMATCH` unless `'auto'`, a different name with `SCHEMA_NAME_MISMATCH` unless
    /// `'reset'`.
    ///
    /// ```js
    /// db.applySchema('init', 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY NOT NULL)', 'auto');
    /// ```
    #[wasm_bindgen(js_name = applySchema)]
    pub fn apply_schema(&self, name: &str, sql: &str, mode: &str) -> JsResult<String> {
        let mode = js(schema::SchemaMode::parse(mode))?;
        let outcome = self.with_conn(|c| schema::apply_schema(c, name, sql, mode))?;
        Ok(outcome.as_str().into())
    }

    /// Applies the pending ones of `[{ name, sql }]` timestamp-named migration files, each in its
    /// own transaction; returns the names applied now.
    ///
    /// ```js
    /// db.applyMigrations([{ name: '1718000000_create_songs.sql', sql }]); // ['1718000000_create_songs.sql']
    /// ```
    #[wasm_bindgen(js_name = applyMigrations)]
    pub fn apply_migrations(&self, files: JsValue) -> JsResult<Array> {
        let files = js(migrations_from_js(&files))?;
        let applied = self.with_conn(|c| schema::apply_migrations(c, &files))?;
        Ok(applied.into_iter().map(JsValue::from).collect())
    }

    /// `{ name, version, migrations: [{ name, appliedAt }] }` (name/version `null` when no
    /// declarative schema was applied).
    #[wasm_bindgen(js_name = schemaInfo)]
    pub fn schema_info(&self) -> JsResult<JsValue> {
        let info = self.with_conn(schema::schema_info)?;
        let out: JsValue = Object::new().into();
        set(
            &out,
            "name",
            &info.name.map_or(JsValue::NULL, JsValue::from),
        );
        set(
            &out,
            "version",
            &info.version.map_or(JsValue::NULL, integer_to_js),
        );
        let files: Array = info
            .migrations
            .into_iter()
            .map(|(name, at)| {
                let o: JsValue = Object::new().into();
                set(&o, "name", &name.into());
                set(&o, "appliedAt", &at.into());
                o
            })
            .collect();
        set(&out, "migrations", &files);
        Ok(out)
    }

    /// The database's current `db_version` (`crsql_db_version()`).
    #[wasm_bindgen(getter, js_name = dbVersion)]
    pub fn db_version(&self) -> JsResult<JsValue> {
        Ok(integer_to_js(self.with_conn(crdt::db_version)?))
    }

    /// This database's 16-byte CRDT site id.
    #[wasm_bindgen(getter, js_name = siteId)]
    pub fn site_id(&self) -> JsResult<Uint8Array> {
        let id = self.with_conn(crdt::site_id)?;
        Ok(Uint8Array::from(&id[..]))
    }

    /// Whether `close` was called.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.open.borrow().is_none()
    }

    /// The SQLite library version, e.g. `3.53.0`.
    #[wasm_bindgen(js_name = sqliteVersion)]
    pub fn sqlite_version() -> String {
        synqlite_core::rusqlite::version().into()
    }
}

impl Database {
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> synqlite_core::Result<T>,
    ) -> JsResult<T> {
        let guard = self.open.borrow();
        let open = guard.as_ref().ok_or_else(|| to_js(Error::Closed))?;
        js(f(&open.conn))
    }
}

fn set(obj: &JsValue, key: &str, value: &JsValue) {
    // Defining a data property on a plain object we created cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

fn exec_result(r: &ExecResult) -> JsValue {
    let out: JsValue = Object::new().into();
    set(&out, "changes", &JsValue::from_f64(r.changes as f64));
    set(&out, "lastInsertRowid", &integer_to_js(r.last_insert_rowid));
    out
}

fn migrations_from_js(files: &JsValue) -> synqlite_core::Result<Vec<schema::Migration>> {
    let arr = files.dyn_ref::<Array>().ok_or_else(|| {
        Error::InvalidArgument("migrations must be an array of { name, sql }".into())
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, f)| {
            let field = |k: &str| Reflect::get(&f, &k.into()).ok().and_then(|v| v.as_string());
            match (field("name"), field("sql")) {
                (Some(name), Some(sql)) => Ok(schema::Migration::new(name, sql)),
                _ => Err(Error::InvalidArgument(format!(
                    "migration {i} must be {{ name: string, sql: string }}"
                ))),
            }
        })
        .collect()
}

fn batch_items(items: &JsValue) -> synqlite_core::Result<Vec<(String, Params)>> {
    let arr = items
        .dyn_ref::<Array>()
        .ok_or_else(|| Error::BadParams("batch expects an array of [sql, params?] pairs".into()))?;
    let mut out = Vec::with_capacity(arr.length() as usize);
    for (i, item) in arr.iter().enumerate() {
        let bad = || Error::BadParams(format!("batch entry {i} must be [sql, params?]"));
        let pair = item.dyn_ref::<Array>().ok_or_else(bad)?;
        let sql = pair.get(0).as_string().ok_or_else(bad)?;
        let params =
            params_from_js(&pair.get(1)).map_err(|e| e.context(&format!("batch entry {i}")))?;
        out.push((sql, params));
    }
    Ok(out)
}

/// Collects rows straight into JS arrays (no intermediate Rust copy).
struct JsRows {
    columns: JsValue,
    values: JsValue,
}

impl Default for JsRows {
    fn default() -> Self {
        JsRows {
            columns: Array::new().into(),
            values: Array::new().into(),
        }
    }
}

impl RowSink for JsRows {
    fn columns(&mut self, names: &[&str]) -> synqlite_core::Result<()> {
        self.columns = names
            .iter()
            .map(|n| JsValue::from_str(n))
            .collect::<Array>()
            .into();
        self.values = Array::new().into();
        Ok(())
    }

    fn row(&mut self, row: &Row<'_>, ncols: usize) -> synqlite_core::Result<()> {
        let values: &Array = self.values.unchecked_ref();
        for i in 0..ncols {
            values.push(&cell_to_js(row.get_ref(i)?));
        }
        Ok(())
    }
}

/// One committed transaction in the columnar form `takeChanges` documents.
fn tx_to_js(tx: &TxChanges) -> JsValue {
    let obj = Object::new();
    let tables: Array = tx.tables.iter().map(|t| JsValue::from_str(t)).collect();
    let ops: Vec<u8> = tx
        .rows
        .iter()
        .map(|r| match r.0 {
            RowOp::Insert => 0,
            RowOp::Update => 1,
            RowOp::Delete => 2,
        })
        .collect();
    let table: Vec<u32> = tx.rows.iter().map(|r| r.1).collect();
    let rowids: JsValue = if tx.rows.iter().all(|r| is_safe_integer(r.2)) {
        let v: Vec<f64> = tx.rows.iter().map(|r| r.2 as f64).collect();
        Float64Array::from(v.as_slice()).into()
    } else {
        let v: Vec<i64> = tx.rows.iter().map(|r| r.2).collect();
        BigInt64Array::from(v.as_slice()).into()
    };
    set(&obj, "tables", &tables);
    set(&obj, "ops", &Uint8Array::from(ops.as_slice()));
    set(&obj, "table", &Uint32Array::from(table.as_slice()));
    set(&obj, "rowids", &rowids);
    obj.into()
}
