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

/// `SELECT typeof(v), quote(v)` of every cell of `t`, in row order: what a merge stored.
fn cells(db: &Database) -> Vec<String> {
    let q = db
        .query(
            "SELECT id, typeof(i), quote(i), typeof(r), quote(r), quote(s), quote(b), typeof(n) \
             FROM t ORDER BY id",
            JsValue::UNDEFINED,
        )
        .unwrap();
    let values: Array = get(&q, "values").unchecked_into();
    values
        .iter()
        .map(|v| js_sys::JSON::stringify(&v).unwrap().as_string().unwrap())
        .collect()
}

const CELLS_DDL: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, i, r, s, b, n)";

async fn crr(name: &str) -> Database {
    let db = open(name, "memory").await;
    db.exec(CELLS_DDL, JsValue::UNDEFINED).unwrap();
    db.exec("SELECT crsql_as_crr('t')", JsValue::UNDEFINED)
        .unwrap();
    db
}

/// JS `(rows) => ...` run on `rows` (test helper).
fn js_map(body: &str, rows: &JsValue) -> JsValue {
    js_sys::Function::new_with_args("rows", body)
        .call1(&JsValue::NULL, rows)
        .unwrap()
}

#[wasm_bindgen_test]
async fn apply_changes_takes_every_value_shape_as_objects_and_tuples() {
    let a = crr("shapes-a").await;
    // Every kind of cell: big and small integers, integral and fractional reals, -0.0, text
    // beyond ASCII, empty and non-empty blobs, NULL.
    a.exec(
        "INSERT INTO t VALUES \
         (1, 9223372036854775807, 2.0, 'é✓😀', x'', NULL), \
         (2, -2147483648, -0.0, '', x'00ff', 1), \
         (3, 2147483648, 0.5, 'x', NULL, 'n'), \
         (4, NULL, 1e300, NULL, x'01', x'02')",
        JsValue::UNDEFINED,
    )
    .unwrap();
    a.exec("DELETE FROM t WHERE id = 4", JsValue::UNDEFINED)
        .unwrap();
    let rows: JsValue = a.changes(JsValue::from(0), None).unwrap().into();

    // As objects (what `changes` returns).
    let b = crr("shapes-b").await;
    let stats = b.apply_changes(rows.clone()).unwrap();
    assert_eq!(get(&stats, "received"), get(&stats, "applied"));
    assert_eq!(cells(&b), cells(&a));

    // As 9-tuples with numbers for versions and a few rows' site ids copied (equal bytes,
    // another object), mixed with objects.
    let tuples = js_map(
        "return rows.map((r, i) => i % 2 ? [r.table, r.pk, r.cid, r.val, Number(r.col_version), \
         Number(r.db_version), new Uint8Array(r.site_id), Number(r.cl), Number(r.seq)] : r)",
        &rows,
    );
    let c = crr("shapes-c").await;
    c.apply_changes(tuples).unwrap();
    assert_eq!(cells(&c), cells(&a));

    // Values as the other JS shapes: an int32 number is an INTEGER, another number a REAL, a
    // one-element Float64Array a REAL, undefined a NULL.
    let shaped = js_map(
        "const site = new Uint8Array(16).fill(7);\
         const row = (id, cid, val) => ({ table: 't', pk: Uint8Array.of(1, 9, id), cid, val, \
           col_version: 1, db_version: 1, site_id: site, cl: 1, seq: 0 });\
         return [row(1, 'i', 5), row(1, 'r', 5.5), row(1, 's', Float64Array.of(3)), \
           row(1, 'n', undefined), row(1, 'b', -0)];",
        &JsValue::UNDEFINED,
    );
    let d = crr("shapes-d").await;
    d.apply_changes(shaped).unwrap();
    let q = d
        .query(
            "SELECT typeof(i), i, typeof(r), typeof(s), s, typeof(n), typeof(b), b FROM t",
            JsValue::UNDEFINED,
        )
        .unwrap();
    let got = js_sys::JSON::stringify(&get(&q, "values"))
        .unwrap()
        .as_string()
        .unwrap();
    assert_eq!(got, r#"["integer",5,"real","real",3,"null","integer",0]"#);
}

#[wasm_bindgen_test]
async fn apply_changes_refuses_bad_rows_by_index_and_keeps_nothing() {
    let db = crr("bad-rows").await;
    let bad = |field: &str, value: &str| {
        js_map(
            &format!(
                "const ok = {{ table: 't', pk: Uint8Array.of(1, 9, 1), cid: 'i', val: 1, \
                 col_version: 1, db_version: 1, site_id: new Uint8Array(16).fill(3), cl: 1, seq: 0 }};\
                 return [ok, {{ ...ok, pk: Uint8Array.of(1, 9, 2), {field}: {value} }}];"
            ),
            &JsValue::UNDEFINED,
        )
    };
    for (field, value, says) in [
        ("col_version", "2 ** 53", "col_version must be an integer"),
        ("seq", "0.5", "seq must be an integer"),
        ("cl", "2n ** 63n", "cl is out of range"),
        ("val", "2n ** 64n", "val is out of range"),
        ("val", "Float64Array.of(1, 2)", "exactly one number"),
        ("val", "{}", "val must be null"),
        ("pk", "[1, 9, 2]", "pk must be a Uint8Array"),
        ("table", "1", "table must be a string"),
    ] {
        let err = db.apply_changes(bad(field, value)).unwrap_err();
        assert_eq!(code(&err), "INVALID_CHANGE", "{field}: {value}");
        let message = get(&err, "message").as_string().unwrap();
        assert!(
            message.contains("change row 1") && message.contains(says),
            "{field}: {value}: {message}"
        );
    }
    let q = db
        .query("SELECT count(*) FROM t", JsValue::UNDEFINED)
        .unwrap();
    let values: Array = get(&q, "values").unchecked_into();
    assert_eq!(values.get(0).as_f64(), Some(0.0));
}
