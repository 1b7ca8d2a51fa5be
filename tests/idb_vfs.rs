//! Browser tests of the durable IndexedDB VFS (`src/idb_vfs`), in a dedicated worker.
//!
//! The module is private to the `synqlite` crate, so it is compiled into this test crate too
//! (`#[path]`), which also gives access to its crate-private helpers.
#![cfg(target_family = "wasm")]

#[allow(dead_code)]
#[path = "../src/idb_vfs/mod.rs"]
mod idb_vfs;

use std::cell::RefCell;
use std::rc::Rc;

use idb_vfs::file::BlockFile;
use idb_vfs::vfs::IdbHandle;
use idb_vfs::{idb, IdbStore};
use js_sys::Reflect;
use synqlite_core::rusqlite::{params, Connection, OpenFlags};
use synqlite_core::Error;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_URI
}

/// Deletes any leftover and opens `name` empty.
async fn fresh(name: &str) -> IdbStore {
    IdbStore::delete(name).await.expect("delete leftover");
    IdbStore::open(name).await.expect("open")
}

/// A connection as the worker makes it (journal in memory).
fn connect(store: &IdbStore) -> Connection {
    let conn = Connection::open_with_flags_and_vfs(store.file_name(), flags(), IdbStore::VFS_NAME)
        .expect("connect");
    conn.execute_batch("PRAGMA journal_mode=MEMORY")
        .expect("journal mode");
    conn
}

async fn flush(store: &IdbStore) {
    store.flush().expect("flush start").await.expect("flush");
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn table_exists(conn: &Connection, table: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .expect("sqlite_master")
        == 1
}

/// Deterministic pseudo-random bytes (xorshift), so content can be re-derived for checks.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn close(conn: Connection, store: IdbStore) {
    conn.close().map_err(|(_, e)| e).expect("close connection");
    store.close();
}

fn now_ms() -> f64 {
    let global: JsValue = js_sys::global().into();
    Reflect::get(&global, &"performance".into())
        .and_then(|p| Reflect::get(&p, &"now".into()).map(|f| (p, f)))
        .ok()
        .and_then(|(p, f)| {
            js_sys::Function::from(f)
                .call0(&p)
                .ok()
                .and_then(|v| v.as_f64())
        })
        .unwrap_or_else(js_sys::Date::now)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[wasm_bindgen_test]
async fn rows_survive_close_and_reopen() {
    let store = fresh("t-basic").await;
    let conn = connect(&store);
    assert!(!store.is_dirty());
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    conn.execute("INSERT INTO t(v) VALUES (?1), (?2)", params!["a", "b"])
        .unwrap();
    assert!(store.is_dirty());
    flush(&store).await;
    assert!(!store.is_dirty());
    close(conn, store);

    let store = IdbStore::open("t-basic").await.unwrap();
    let conn = connect(&store);
    let values: Vec<String> = conn
        .prepare("SELECT v FROM t ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values, ["a", "b"]);
    assert_eq!(integrity(&conn), "ok");
    close(conn, store);
    IdbStore::delete("t-basic").await.unwrap();
}

#[wasm_bindgen_test]
async fn large_data_and_a_blob_spanning_many_blocks_survive() {
    let store = fresh("t-large").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT); CREATE TABLE b(x BLOB)")
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..600 {
        conn.execute(
            "INSERT INTO t(body) VALUES (?1)",
            [format!("{i:04}").repeat(500)],
        )
        .unwrap();
    }
    conn.execute("INSERT INTO b VALUES (?1)", [pattern(7, 1_500_000)])
        .unwrap();
    conn.execute_batch("COMMIT").unwrap();
    flush(&store).await;
    let size = store.file_size();
    assert!(size > 2_500_000, "file is {size} bytes");
    close(conn, store);

    let store = IdbStore::open("t-large").await.unwrap();
    assert_eq!(store.file_size(), size);
    let conn = connect(&store);
    assert_eq!(count(&conn, "t"), 600);
    let body: String = conn
        .query_row("SELECT body FROM t WHERE id = 321", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, "0320".repeat(500));
    let blob: Vec<u8> = conn.query_row("SELECT x FROM b", [], |r| r.get(0)).unwrap();
    assert!(blob == pattern(7, 1_500_000), "blob differs after reopen");
    assert_eq!(integrity(&conn), "ok");
    close(conn, store);
    IdbStore::delete("t-large").await.unwrap();
}

#[wasm_bindgen_test]
async fn vacuum_shrinks_the_stored_file() {
    let store = fresh("t-vacuum").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, x BLOB)")
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..400 {
        conn.execute("INSERT INTO t(x) VALUES (?1)", [pattern(i, 5000)])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    flush(&store).await;
    let big = store.file_size();
    conn.execute_batch("DELETE FROM t WHERE id > 20; VACUUM")
        .unwrap();
    let small = store.file_size();
    assert!(small * 5 < big, "VACUUM did not shrink: {big} -> {small}");
    flush(&store).await;
    close(conn, store);

    // Reopening validates that exactly ceil(size / 4096) blocks are stored, so stale blocks past
    // the new end would make this fail.
    let store = IdbStore::open("t-vacuum").await.unwrap();
    assert_eq!(store.file_size(), small);
    let conn = connect(&store);
    assert_eq!(count(&conn, "t"), 20);
    let x: Vec<u8> = conn
        .query_row("SELECT x FROM t WHERE id = 20", [], |r| r.get(0))
        .unwrap();
    assert!(x == pattern(19, 5000));
    assert_eq!(integrity(&conn), "ok");
    close(conn, store);
    IdbStore::delete("t-vacuum").await.unwrap();
}

#[wasm_bindgen_test]
async fn unflushed_writes_are_gone_after_a_crash() {
    let store = fresh("t-crash").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    flush(&store).await;
    // Committed but never flushed, then a transaction left open: the worker dies here.
    conn.execute_batch("INSERT INTO t VALUES (2); CREATE TABLE u(y)")
        .unwrap();
    conn.execute_batch("BEGIN; INSERT INTO t SELECT x + 10 FROM t")
        .unwrap();
    drop(store);
    drop(conn);

    let store = IdbStore::open("t-crash").await.unwrap();
    let conn = connect(&store);
    assert_eq!(count(&conn, "t"), 1);
    assert!(!table_exists(&conn, "u"));
    assert_eq!(integrity(&conn), "ok");
    close(conn, store);
    IdbStore::delete("t-crash").await.unwrap();
}

/// Reads what IndexedDB holds right now through a second, independent connection (as another
/// worker would after this one was killed) and counts the rows of `t` in it.
async fn count_in_a_second_view(name: &str, view: &str) -> i64 {
    let db_name = IdbStore::idb_name(name);
    let raw = idb::open_database(&db_name).await.unwrap();
    let loaded = idb::load(&raw, &db_name).await.unwrap();
    raw.close();
    let file = Rc::new(RefCell::new(BlockFile::from_durable(
        loaded.blocks,
        loaded.size,
        loaded.generation,
    )));
    let state = idb_vfs::vfs::state().unwrap();
    assert!(state.attach(view, file.clone()));
    let conn = Connection::open_with_flags_and_vfs(view, flags(), IdbStore::VFS_NAME).unwrap();
    let n = count(&conn, "t");
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    state.detach(view, &file);
    n
}

#[wasm_bindgen_test]
async fn a_second_view_sees_exactly_the_flushed_state() {
    let store = fresh("t-view").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    flush(&store).await;
    conn.execute_batch("INSERT INTO t VALUES (3)").unwrap();
    // Committed in SQLite, not flushed: IndexedDB still has the flushed state, intact.
    assert_eq!(count_in_a_second_view("t-view", "/view/1").await, 2);
    flush(&store).await;
    // Once the flush resolved it is in IndexedDB, with the store still open.
    assert_eq!(count_in_a_second_view("t-view", "/view/2").await, 3);
    close(conn, store);
    IdbStore::delete("t-view").await.unwrap();
}

#[wasm_bindgen_test]
async fn flush_while_a_flush_is_in_flight_is_refused() {
    let store = fresh("t-inflight").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    let first = store.flush().unwrap();
    match store.flush() {
        Err(e) => {
            assert_eq!(e.code(), "SQLITE_MISUSE");
            assert!(e.to_string().contains("in flight"), "{e}");
        }
        Ok(_) => panic!("second flush accepted while the first is in flight"),
    }
    first.await.unwrap();
    // Nothing new to write: resolves at once.
    store.flush().unwrap().await.unwrap();
    close(conn, store);
    IdbStore::delete("t-inflight").await.unwrap();
}

#[wasm_bindgen_test]
async fn flush_inside_a_write_transaction_is_refused() {
    let store = fresh("t-intx").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
        .unwrap();
    let err = store.flush().err().expect("flush inside a transaction");
    assert_eq!(err.code(), "SQLITE_MISUSE");
    conn.execute_batch("COMMIT").unwrap();
    flush(&store).await;
    close(conn, store);
    let store = IdbStore::open("t-intx").await.unwrap();
    let conn = connect(&store);
    assert_eq!(count(&conn, "t"), 1);
    close(conn, store);
    IdbStore::delete("t-intx").await.unwrap();
}

#[wasm_bindgen_test]
async fn two_databases_are_independent() {
    let a = fresh("t-ind-a").await;
    let b = fresh("t-ind-b").await;
    let ca = connect(&a);
    let cb = connect(&b);
    ca.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES ('a')")
        .unwrap();
    cb.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES ('b'), ('b')")
        .unwrap();
    flush(&a).await;
    flush(&b).await;
    cb.execute_batch("INSERT INTO t VALUES ('unflushed')")
        .unwrap();
    close(ca, a);
    close(cb, b);

    let a = IdbStore::open("t-ind-a").await.unwrap();
    let b = IdbStore::open("t-ind-b").await.unwrap();
    let (ca, cb) = (connect(&a), connect(&b));
    let xa: String = ca
        .query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
        .unwrap();
    let xb: String = cb
        .query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!((xa.as_str(), xb.as_str()), ("a", "b,b"));
    close(ca, a);
    close(cb, b);
    IdbStore::delete("t-ind-a").await.unwrap();
    // Deleting one leaves the other.
    let b = IdbStore::open("t-ind-b").await.unwrap();
    let cb = connect(&b);
    assert_eq!(count(&cb, "t"), 2);
    close(cb, b);
    IdbStore::delete("t-ind-b").await.unwrap();
}

#[wasm_bindgen_test]
async fn delete_drops_the_database() {
    let store = fresh("t-delete").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    flush(&store).await;
    let err = IdbStore::delete("t-delete")
        .await
        .expect_err("delete while open");
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    close(conn, store);
    IdbStore::delete("t-delete").await.unwrap();
    IdbStore::delete("t-delete").await.unwrap(); // deleting nothing is fine

    let store = IdbStore::open("t-delete").await.unwrap();
    assert_eq!(store.file_size(), 0);
    let conn = connect(&store);
    assert!(!table_exists(&conn, "t"));
    close(conn, store);
    IdbStore::delete("t-delete").await.unwrap();
}

#[wasm_bindgen_test]
async fn opening_twice_in_one_worker_is_refused() {
    let store = fresh("t-twice").await;
    let err = IdbStore::open("t-twice").await.err().expect("second open");
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    assert!(err.to_string().contains("already open"), "{err}");
    store.close();
    let again = IdbStore::open("t-twice").await.unwrap();
    again.close();
    IdbStore::delete("t-twice").await.unwrap();
}

#[wasm_bindgen_test]
async fn a_database_held_by_another_worker_is_refused() {
    IdbStore::delete("t-locked").await.unwrap();
    // What another tab's worker holds while it has the database open. (Waits: the lock that
    // delete() just dropped is released asynchronously.)
    let lock = idb::acquire_lock(&IdbStore::idb_name("t-locked"), 2000)
        .await
        .unwrap()
        .expect("Web Locks available");
    let err = IdbStore::open_with_lock_wait("t-locked", 50)
        .await
        .err()
        .expect("open while locked");
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    assert!(err.to_string().contains("another tab or worker"), "{err}");
    drop(lock);
    let store = IdbStore::open_with_lock_wait("t-locked", 50).await.unwrap();
    store.close();
    IdbStore::delete("t-locked").await.unwrap();
}

#[wasm_bindgen_test]
async fn a_failed_flush_restores_the_durable_state() {
    let store = fresh("t-fail").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    flush(&store).await;
    let durable_size = store.file_size();

    // Grow the file, change the schema, then have the IndexedDB transaction abort.
    conn.execute("INSERT INTO t VALUES (?1)", [pattern(3, 300_000)])
        .unwrap();
    conn.execute_batch("CREATE TABLE u(y); INSERT INTO u VALUES (1)")
        .unwrap();
    store.fail_next_flush();
    let err = store.flush().unwrap().await.expect_err("injected failure");
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    assert!(err.to_string().contains("ConstraintError"), "{err}");
    assert!(err.to_string().contains("undone"), "{err}");

    // Memory is back at the durable state and SQLite noticed.
    assert!(!store.is_dirty());
    assert_eq!(store.file_size(), durable_size);
    assert_eq!(count(&conn, "t"), 2);
    assert!(!table_exists(&conn, "u"));
    assert_eq!(integrity(&conn), "ok");

    // Shrinking then failing re-grows the file.
    conn.execute_batch("DELETE FROM t; VACUUM").unwrap();
    store.fail_next_flush();
    assert!(store.flush().unwrap().await.is_err());
    assert_eq!(count(&conn, "t"), 2);
    assert_eq!(integrity(&conn), "ok");

    // And the database keeps working.
    conn.execute_batch("INSERT INTO t VALUES (3)").unwrap();
    flush(&store).await;
    close(conn, store);
    let store = IdbStore::open("t-fail").await.unwrap();
    let conn = connect(&store);
    let sum: i64 = conn
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 6);
    assert_eq!(integrity(&conn), "ok");
    close(conn, store);
    IdbStore::delete("t-fail").await.unwrap();
}

#[wasm_bindgen_test]
async fn a_foreign_write_makes_the_flush_fail_instead_of_overwriting() {
    let store = fresh("t-conflict").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    flush(&store).await;

    // Another writer (bypassing the lock) bumps the generation.
    let db_name = IdbStore::idb_name("t-conflict");
    let raw = idb::open_database(&db_name).await.unwrap();
    let tx = idb::write_transaction(&raw).unwrap();
    let meta = tx.object_store(idb::META).unwrap();
    meta.put_with_key(
        &idb::meta_value(store.file_size(), 999).unwrap(),
        &idb::META_KEY.into(),
    )
    .unwrap();
    // Flush transactions ask for strict durability (fsync before `complete`).
    let durability = Reflect::get(&tx, &"durability".into()).unwrap();
    assert_eq!(durability.as_string().as_deref(), Some("strict"));
    JsFuture::from(idb::transaction_promise(&tx)).await.unwrap();
    raw.close();

    conn.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    let err = store.flush().unwrap().await.expect_err("conflict");
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    assert!(err.to_string().contains("another tab or worker"), "{err}");
    assert_eq!(count(&conn, "t"), 1);
    close(conn, store);
    IdbStore::delete("t-conflict").await.unwrap();
}

#[wasm_bindgen_test]
fn quota_exceeded_maps_to_sqlite_full() {
    let quota =
        web_sys::DomException::new_with_message_and_name("no space", "QuotaExceededError").unwrap();
    let err = idb::storage_error("saving", &quota.into());
    assert_eq!(err.code(), "SQLITE_FULL");
    assert!(matches!(
        err,
        Error::Sqlite {
            extended_code: 13,
            ..
        }
    ));
    assert!(
        err.to_string().starts_with("storage quota exceeded: "),
        "{err}"
    );

    let other = web_sys::DomException::new_with_message_and_name("gone", "UnknownError").unwrap();
    let err = idb::storage_error("saving", &other.into());
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
    assert!(err.to_string().contains("UnknownError: gone"), "{err}");
}

#[wasm_bindgen_test]
async fn rollback_journal_in_delete_mode_stays_in_memory() {
    let store = fresh("t-journal").await;
    let conn = Connection::open_with_flags_and_vfs(store.file_name(), flags(), IdbStore::VFS_NAME)
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    conn.execute_batch("BEGIN; INSERT INTO t VALUES (2); ROLLBACK")
        .unwrap();
    assert_eq!(count(&conn, "t"), 1);
    // WAL needs shared memory the VFS does not offer: SQLite keeps the rollback journal.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode, "wal");
    flush(&store).await;
    close(conn, store);
    let store = IdbStore::open("t-journal").await.unwrap();
    let conn = connect(&store);
    assert_eq!(count(&conn, "t"), 1);
    close(conn, store);
    IdbStore::delete("t-journal").await.unwrap();
}

#[wasm_bindgen_test]
async fn two_connections_on_one_file_respect_locks() {
    let store = fresh("t-locks").await;
    let a = connect(&store);
    let b = connect(&store);
    a.execute_batch("CREATE TABLE t(x)").unwrap();
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
        .unwrap();
    let err = b.execute_batch("INSERT INTO t VALUES (2)").unwrap_err();
    assert_eq!(Error::from(err).code(), "SQLITE_BUSY");
    a.execute_batch("COMMIT").unwrap();
    b.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    assert_eq!(count(&a, "t"), 2);
    flush(&store).await;
    a.close().map_err(|(_, e)| e).unwrap();
    close(b, store);
    IdbStore::delete("t-locks").await.unwrap();
}

#[wasm_bindgen_test]
fn block_file_passes_the_vfs_file_checks() {
    let mut handle = IdbHandle::main(Rc::new(RefCell::new(BlockFile::empty())));
    sqlite_wasm_rs::vfs::test_suite::test_vfs_file(&mut handle).unwrap();
}

#[wasm_bindgen_test]
fn block_file_undo_covers_writes_during_a_flight() {
    let read_all = |f: &BlockFile| {
        let mut buf = vec![0u8; f.size() as usize];
        assert_eq!(f.read(&mut buf, 0), buf.len());
        buf
    };
    let mut f = BlockFile::empty();
    f.write(&pattern(1, 10_000), 0).unwrap();
    f.begin_flush().unwrap();
    f.finish_flush();
    let durable = read_all(&f);

    f.write(&pattern(2, 5000), 3000).unwrap();
    f.truncate(6000).unwrap();
    let plan = f.begin_flush().unwrap();
    assert_eq!(plan.size, 6000);
    assert_eq!(plan.delete_from, Some(2));
    assert!(f.begin_flush().is_err(), "second flight accepted");
    // Writes while the flight runs, including regrowth.
    f.write(&pattern(3, 20_000), 1000).unwrap();
    f.fail_flush();
    assert_eq!(read_all(&f), durable);
    assert!(!f.is_dirty());

    // Success keeps later writes dirty against the new durable state.
    f.write(&[9; 10], 0).unwrap();
    f.begin_flush().unwrap();
    f.write(&[8; 10], 5000).unwrap();
    f.finish_flush();
    assert!(f.is_dirty());
    let plan = f.begin_flush().unwrap();
    assert_eq!(plan.blocks.iter().map(|b| b.0).collect::<Vec<_>>(), [1]);
    f.fail_flush();
    let mut expected = durable.clone();
    expected[..10].fill(9);
    assert_eq!(read_all(&f), expected);
}

#[wasm_bindgen_test]
async fn measure_flush_latency_and_open_time() {
    let store = fresh("t-measure").await;
    let conn = connect(&store);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    flush(&store).await;
    let mut flushes = Vec::new();
    for i in 0..30 {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
        let t0 = now_ms();
        flush(&store).await;
        flushes.push(now_ms() - t0);
    }
    // Grow to ~10 MB.
    conn.execute_batch("CREATE TABLE b(x BLOB); BEGIN").unwrap();
    for i in 0..160 {
        conn.execute("INSERT INTO b VALUES (?1)", [pattern(i, 64 * 1024)])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    let t0 = now_ms();
    flush(&store).await;
    let big_flush = now_ms() - t0;
    let size = store.file_size();
    close(conn, store);

    let mut opens = Vec::new();
    for _ in 0..3 {
        let t0 = now_ms();
        let store = IdbStore::open("t-measure").await.unwrap();
        opens.push(now_ms() - t0);
        store.close();
    }
    console_log!(
        "idb_vfs: one-row insert flush median {:.1} ms (min {:.1}, max {:.1}, n=30); \
         flush of {:.1} MB {:.0} ms; open of {:.1} MB median {:.0} ms (n=3)",
        median(flushes.clone()),
        flushes.iter().cloned().fold(f64::MAX, f64::min),
        flushes.iter().cloned().fold(0.0, f64::max),
        size as f64 / 1e6,
        big_flush,
        size as f64 / 1e6,
        median(opens)
    );
    IdbStore::delete("t-measure").await.unwrap();
}
