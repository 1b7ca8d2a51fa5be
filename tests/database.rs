//! The wasm `Database` object in a dedicated worker: storage selection, value conversion in both
//! directions, error objects with codes, and durability hooks.
#![cfg(target_family = "wasm")]

use js_sys::{Array, BigInt, Object, Reflect, Uint8Array};
use synqlite::Database;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

fn arr(items: &[JsValue]) -> JsValue {
    items.iter().collect::<Array>().into()
}

fn code(err: &JsValue) -> String {
    assert!(
        err.is_instance_of::<js_sys::Error>(),
        "rejections are Error objects"
    );
    get(err, "code").as_string().unwrap()
}

async fn open(name: &str, storage: &str) -> Database {
    Database::open(name.into(), Some(storage.into()))
        .await
        .unwrap()
}

#[wasm_bindgen_test]
async fn memory_round_trips_every_type() {
    let db = open("types", "memory").await;
    assert_eq!(db.storage(), "memory");
    db.exec(
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
        JsValue::UNDEFINED,
    )
    .unwrap();
    let big = BigInt::from(i64::MAX);
    let blob = Uint8Array::from(&[1u8, 2, 3][..]);
    let params = arr(&[
        JsValue::from(7),
        JsValue::from(0.25),
        "é".into(),
        blob.into(),
        JsValue::NULL,
    ]);
    let r = db
        .exec("INSERT INTO t VALUES (?, ?, ?, ?, ?)", params)
        .unwrap();
    assert_eq!(get(&r, "changes").as_f64(), Some(1.0));
    assert_eq!(get(&r, "lastInsertRowid").as_f64(), Some(1.0));
    db.exec("INSERT INTO t (i) VALUES (?)", arr(&[big.clone().into()]))
        .unwrap();

    let q = db
        .query(
            "SELECT i, r, s, b, n FROM t ORDER BY rowid",
            JsValue::UNDEFINED,
        )
        .unwrap();
    let columns: Array = get(&q, "columns").unchecked_into();
    assert_eq!(columns.length(), 5);
    let values: Array = get(&q, "values").unchecked_into();
    assert_eq!(values.length(), 10);
    assert_eq!(values.get(0).as_f64(), Some(7.0));
    assert_eq!(values.get(1).as_f64(), Some(0.25));
    assert_eq!(values.get(2).as_string().as_deref(), Some("é"));
    assert_eq!(
        values.get(3).unchecked_into::<Uint8Array>().to_vec(),
        vec![1, 2, 3]
    );
    assert!(values.get(4).is_null());
    // Beyond 2^53 integers come back as bigint, exactly.
    assert!(values.get(5).is_bigint());
    assert_eq!(values.get(5), JsValue::from(big));
    db.close().unwrap();
    assert!(db.closed());
}

#[wasm_bindgen_test]
async fn named_parameters_from_objects() {
    let db = open("named", "memory").await;
    let params: JsValue = Object::new().into();
    Reflect::set(&params, &"a".into(), &1.into()).unwrap();
    Reflect::set(&params, &"$b".into(), &"x".into()).unwrap();
    let q = db.query("SELECT :a AS a, $b AS b", params).unwrap();
    let values: Array = get(&q, "values").unchecked_into();
    assert_eq!(values.get(0).as_f64(), Some(1.0));
    assert_eq!(values.get(1).as_string().as_deref(), Some("x"));
}

#[wasm_bindgen_test]
async fn errors_are_error_objects_with_codes() {
    let db = open("errors", "memory").await;
    let e = db.exec("SELEC 1", JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code(&e), "SQLITE_ERROR");
    let e = db
        .exec("SELECT ?", arr(&[Object::new().into()]))
        .unwrap_err();
    assert_eq!(code(&e), "BAD_PARAMS");
    let e = db
        .exec("SELECT ?", arr(&[BigInt::from(u64::MAX).into()]))
        .unwrap_err();
    assert_eq!(code(&e), "BAD_PARAMS");
    let e = db.exec("SELECT 1", "not params".into()).unwrap_err();
    assert_eq!(code(&e), "BAD_PARAMS");
    let e = db.batch("nope".into()).unwrap_err();
    assert_eq!(code(&e), "BAD_PARAMS");
    db.exec("CREATE TABLE u (x UNIQUE)", JsValue::UNDEFINED)
        .unwrap();
    db.exec("INSERT INTO u VALUES (1)", JsValue::UNDEFINED)
        .unwrap();
    let e = db
        .exec("INSERT INTO u VALUES (1)", JsValue::UNDEFINED)
        .unwrap_err();
    assert_eq!(code(&e), "SQLITE_CONSTRAINT");
    assert_eq!(
        get(&e, "extendedCode").as_string().as_deref(),
        Some("SQLITE_CONSTRAINT_UNIQUE")
    );
    db.close().unwrap();
    let e = db.exec("SELECT 1", JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code(&e), "CLOSED");
    let e = Database::open("../escape".into(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), "INVALID_ARGUMENT");
    let e = Database::open("ok".into(), Some("floppy".into()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), "INVALID_ARGUMENT");
}

#[wasm_bindgen_test]
async fn opfs_persists_across_close_and_reopen() {
    let db = open("wasm-opfs", "opfs").await;
    assert_eq!(db.storage(), "opfs");
    db.exec("CREATE TABLE IF NOT EXISTS t (x)", JsValue::UNDEFINED)
        .unwrap();
    db.exec("DELETE FROM t", JsValue::UNDEFINED).unwrap();
    db.batch(arr(&[
        arr(&["INSERT INTO t VALUES (?)".into(), arr(&[1.into()])]),
        arr(&["INSERT INTO t VALUES (?)".into(), arr(&[2.into()])]),
    ]))
    .unwrap();
    // OPFS writes are durable when exec returns: there is nothing to flush.
    assert!(db.flush().unwrap().is_none());
    db.close().unwrap();
    let db = open("wasm-opfs", "opfs").await;
    let q = db
        .query("SELECT sum(x) AS s FROM t", JsValue::UNDEFINED)
        .unwrap();
    let values: Array = get(&q, "values").unchecked_into();
    assert_eq!(values.get(0).as_f64(), Some(3.0));
    db.close().unwrap();
}

#[wasm_bindgen_test]
async fn idb_writes_are_durable_after_flush() {
    let db = open("wasm-idb", "idb").await;
    assert_eq!(db.storage(), "idb");
    db.exec("CREATE TABLE IF NOT EXISTS t (x)", JsValue::UNDEFINED)
        .unwrap();
    if let Some(p) = db.flush().unwrap() {
        wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
    }
    db.exec("INSERT INTO t VALUES (42)", JsValue::UNDEFINED)
        .unwrap();
    let p = db
        .flush()
        .unwrap()
        .expect("a write on IndexedDB storage needs a flush");
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
    assert!(db.flush().unwrap().is_none(), "nothing left to flush");
    // Inside a transaction nothing is flushed until commit.
    db.exec("BEGIN", JsValue::UNDEFINED).unwrap();
    db.exec("INSERT INTO t VALUES (43)", JsValue::UNDEFINED)
        .unwrap();
    assert!(db.flush().unwrap().is_none());
    db.exec("COMMIT", JsValue::UNDEFINED).unwrap();
    wasm_bindgen_futures::JsFuture::from(db.flush().unwrap().unwrap())
        .await
        .unwrap();
    db.close().unwrap();
    let db = open("wasm-idb", "idb").await;
    let q = db
        .query(
            "SELECT count(*) FROM t WHERE x IN (42, 43)",
            JsValue::UNDEFINED,
        )
        .unwrap();
    let values: Array = get(&q, "values").unchecked_into();
    assert_eq!(values.get(0).as_f64(), Some(2.0));
    db.close().unwrap();
}

#[wasm_bindgen_test]
async fn auto_prefers_opfs() {
    let db = open("wasm-auto", "auto").await;
    assert_eq!(db.storage(), "opfs");
    db.close().unwrap();
}
