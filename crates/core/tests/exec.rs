//! Statement execution and parameter binding, natively and in wasm (dedicated worker).

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::{batch, exec, query, Error, Params, QueryResult};

fn db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    exec(
        &c,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, data BLOB)",
        &Params::None,
    )
    .unwrap();
    c
}

fn rows(c: &Connection, sql: &str, p: Params) -> QueryResult {
    let mut r = QueryResult::default();
    query(c, sql, &p, &mut r).unwrap();
    r
}

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn pos(v: Vec<Value>) -> Params {
    Params::Positional(v)
}

fn named(v: &[(&str, Value)]) -> Params {
    Params::Named(
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn positional_and_numbered_parameters() {
        let c = db();
        let r = exec(&c, "INSERT INTO t (name, score) VALUES (?, ?)", &pos(vec![t("a"), 1.5.into()])).unwrap();
        assert_eq!(r.changes, 1);
        assert_eq!(r.last_insert_rowid, 1);
        exec(&c, "INSERT INTO t (score, name) VALUES (?2, ?1)", &pos(vec![t("b"), 2.5.into()])).unwrap();
        let q = rows(&c, "SELECT name, score FROM t ORDER BY id", Params::None);
        assert_eq!(q.columns, vec!["name", "score"]);
        assert_eq!(q.rows, vec![
            vec![Value::Text("a".into()), Value::Real(1.5)],
            vec![Value::Text("b".into()), Value::Real(2.5)],
        ]);
    }

    fn named_parameters_with_every_prefix() {
        let c = db();
        for (i, sql) in ["INSERT INTO t (id, name) VALUES (:id, :name)",
                         "INSERT INTO t (id, name) VALUES (@id, @name)",
                         "INSERT INTO t (id, name) VALUES ($id, $name)"].iter().enumerate() {
            let id = i as i64 + 10;
            exec(&c, sql, &named(&[("id", id.into()), ("name", Value::Text(format!("n{i}")))])).unwrap();
        }
        // Keys may carry the prefix too.
        let q = rows(&c, "SELECT name FROM t WHERE id = :id", named(&[(":id", 11i64.into())]));
        assert_eq!(q.rows, vec![vec![Value::Text("n1".into())]]);
    }

    fn bad_params_are_reported_not_null_bound() {
        let c = db();
        let missing = exec(&c, "INSERT INTO t (id, name) VALUES (:id, :name)", &named(&[("id", 1i64.into())])).unwrap_err();
        assert_eq!(missing.code(), "BAD_PARAMS");
        assert!(missing.to_string().contains(":name"), "{missing}");
        let too_few = exec(&c, "INSERT INTO t (id, name) VALUES (?, ?)", &pos(vec![1i64.into()])).unwrap_err();
        assert_eq!(too_few.code(), "BAD_PARAMS");
        let too_many = exec(&c, "INSERT INTO t (name) VALUES (?)", &pos(vec![t("x"), t("y")])).unwrap_err();
        assert_eq!(too_many.code(), "BAD_PARAMS");
        let none = exec(&c, "INSERT INTO t (name) VALUES (?)", &Params::None).unwrap_err();
        assert_eq!(none.code(), "BAD_PARAMS");
        let object_for_positional = exec(&c, "INSERT INTO t (name) VALUES (?)", &named(&[("a", 1i64.into())])).unwrap_err();
        assert_eq!(object_for_positional.code(), "BAD_PARAMS");
        // Nothing was written by any of the failures.
        assert!(rows(&c, "SELECT * FROM t", Params::None).rows.is_empty());
    }

    fn sqlite_errors_keep_their_codes() {
        let c = db();
        let syntax = exec(&c, "INSRT INTO t VALUES (1)", &Params::None).unwrap_err();
        assert_eq!(syntax.code(), "SQLITE_ERROR");
        assert!(syntax.to_string().contains("syntax error"), "{syntax}");
        exec(&c, "INSERT INTO t (name) VALUES ('a')", &Params::None).unwrap();
        let unique = exec(&c, "INSERT INTO t (name) VALUES ('a')", &Params::None).unwrap_err();
        assert_eq!(unique.code(), "SQLITE_CONSTRAINT");
        assert_eq!(unique.extended_code(), Some("SQLITE_CONSTRAINT_UNIQUE"));
        assert!(unique.to_string().contains("UNIQUE constraint failed: t.name"), "{unique}");
        let notnull = exec(&c, "INSERT INTO t (name) VALUES (NULL)", &Params::None).unwrap_err();
        assert_eq!(notnull.extended_code(), Some("SQLITE_CONSTRAINT_NOTNULL"));
        let no_table = exec(&c, "SELECT * FROM nope", &Params::None).unwrap_err();
        assert!(no_table.to_string().contains("no such table: nope"), "{no_table}");
    }

    fn values_round_trip_exactly() {
        let c = db();
        let big = i64::MAX;
        let blob = vec![0u8, 1, 2, 255];
        exec(&c, "INSERT INTO t (id, name, score, data) VALUES (?, ?, ?, ?)",
             &pos(vec![big.into(), t("é😀"), Value::Null, blob.clone().into()])).unwrap();
        exec(&c, "INSERT INTO t (id, name, score) VALUES (?, ?, ?)",
             &pos(vec![i64::MIN.into(), t("min"), (-0.5f64).into()])).unwrap();
        let q = rows(&c, "SELECT id, name, score, data, typeof(score) FROM t ORDER BY id DESC", Params::None);
        assert_eq!(q.rows[0], vec![Value::Integer(big), Value::Text("é😀".into()), Value::Null,
                                   Value::Blob(blob), Value::Text("null".into())]);
        assert_eq!(q.rows[1][0], Value::Integer(i64::MIN));
        assert_eq!(q.rows[1][2], Value::Real(-0.5));
        // REAL stays REAL even when integral.
        let q = rows(&c, "SELECT ?, typeof(?)", pos(vec![Value::Real(2.0), Value::Real(2.0)]));
        assert_eq!(q.rows[0], vec![Value::Real(2.0), Value::Text("real".into())]);
    }

    fn multiple_statements_run_in_order() {
        let c = db();
        let r = exec(&c, "-- seed\nINSERT INTO t (name) VALUES ('a'); /* two */ INSERT INTO t (name) VALUES ('b;c');\n\n", &Params::None).unwrap();
        assert_eq!(r.changes, 2);
        let q = rows(&c, "SELECT name FROM t ORDER BY id", Params::None);
        assert_eq!(q.rows, vec![vec![Value::Text("a".into())], vec![Value::Text("b;c".into())]]);
        // Positional values are consumed statement by statement.
        exec(&c, "INSERT INTO t (name) VALUES (?); INSERT INTO t (name, score) VALUES (?, ?)",
             &pos(vec![t("d"), t("e"), 1.0.into()])).unwrap();
        assert_eq!(rows(&c, "SELECT count(*) FROM t", Params::None).rows[0][0], Value::Integer(4));
        // A query over several statements returns the last result set.
        let q = rows(&c, "SELECT 1 AS a; SELECT 2 AS b", Params::None);
        assert_eq!(q.columns, vec!["b"]);
        assert_eq!(q.rows, vec![vec![Value::Integer(2)]]);
        // Later statements may use what earlier ones create.
        exec(&c, "CREATE TABLE u (x); INSERT INTO u VALUES (1); CREATE TRIGGER tu AFTER INSERT ON u BEGIN INSERT INTO u VALUES (NEW.x + 1000); END; INSERT INTO u VALUES (2)", &Params::None).unwrap();
        assert_eq!(rows(&c, "SELECT sum(x) FROM u", Params::None).rows[0][0], Value::Integer(1005));
        // A bad single statement keeps its own error.
        let e = exec(&c, "INSERT INTO nope VALUES (1);", &Params::None).unwrap_err();
        assert!(e.to_string().contains("no such table: nope"), "{e}");
        // Empty SQL and comments only are no-ops.
        exec(&c, "", &Params::None).unwrap();
        exec(&c, "  -- nothing\n ; ", &Params::None).unwrap();
    }

    fn changes_count_direct_writes_only() {
        let c = db();
        exec(&c, "CREATE TABLE log (x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (1); INSERT INTO log VALUES (2); END", &Params::None).unwrap();
        let r = exec(&c, "INSERT INTO t (name) VALUES ('a'), ('b')", &Params::None).unwrap();
        assert_eq!(r.changes, 2);
        let r = exec(&c, "UPDATE t SET score = 1", &Params::None).unwrap();
        assert_eq!(r.changes, 2);
        let r = exec(&c, "CREATE TABLE other (x)", &Params::None).unwrap();
        assert_eq!(r.changes, 0);
    }

    fn batch_is_all_or_nothing() {
        let c = db();
        let ok = batch(&c, &[
            ("INSERT INTO t (name) VALUES (?)".to_owned(), pos(vec![t("a")])),
            ("INSERT INTO t (name) VALUES (:n)".to_owned(), named(&[("n", t("b"))])),
        ]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].last_insert_rowid, 2);
        let err = batch(&c, &[
            ("INSERT INTO t (name) VALUES ('c')".to_owned(), Params::None),
            ("INSERT INTO t (name) VALUES ('a')".to_owned(), Params::None),
        ]).unwrap_err();
        assert_eq!(err.code(), "SQLITE_CONSTRAINT");
        assert!(err.to_string().starts_with("batch statement 1:"), "{err}");
        let bad = batch(&c, &[
            ("INSERT INTO t (name) VALUES ('d')".to_owned(), Params::None),
            ("INSERT INTO t (name) VALUES (?)".to_owned(), Params::None),
        ]).unwrap_err();
        assert_eq!(bad.code(), "BAD_PARAMS");
        assert_eq!(rows(&c, "SELECT count(*) FROM t", Params::None).rows[0][0], Value::Integer(2));
        assert!(c.is_autocommit());
        // Inside an open transaction the batch is a nested savepoint: the outer work survives.
        exec(&c, "BEGIN", &Params::None).unwrap();
        exec(&c, "INSERT INTO t (name) VALUES ('outer')", &Params::None).unwrap();
        assert!(batch(&c, &[("INSERT INTO t (name) VALUES ('outer')".to_owned(), Params::None)]).is_err());
        exec(&c, "COMMIT", &Params::None).unwrap();
        assert_eq!(rows(&c, "SELECT count(*) FROM t", Params::None).rows[0][0], Value::Integer(3));
    }

    fn batch_survives_sqlite_rolling_back_itself() {
        let c = db();
        exec(&c, "INSERT INTO t (name) VALUES ('a')", &Params::None).unwrap();
        let err = batch(&c, &[
            ("INSERT INTO t (name) VALUES ('b')".to_owned(), Params::None),
            ("INSERT OR ROLLBACK INTO t (name) VALUES ('a')".to_owned(), Params::None),
        ]).unwrap_err();
        assert_eq!(err.code(), "SQLITE_CONSTRAINT");
        assert!(c.is_autocommit());
        assert_eq!(rows(&c, "SELECT count(*) FROM t", Params::None).rows[0][0], Value::Integer(1));
    }

    fn cached_statements_are_reused() {
        let c = db();
        for i in 0..100i64 {
            exec(&c, "INSERT INTO t (id, name) VALUES (?, ?)", &pos(vec![i.into(), Value::Text(format!("n{i}"))])).unwrap();
        }
        for i in 0..100i64 {
            let q = rows(&c, "SELECT name FROM t WHERE id = ?", pos(vec![i.into()]));
            assert_eq!(q.rows[0][0], Value::Text(format!("n{i}")));
        }
        let e: Error = exec(&c, "SELECT name FROM t WHERE id = ?", &Params::None).unwrap_err();
        assert_eq!(e.code(), "BAD_PARAMS");
        // The failed bind left the cached statement usable.
        assert_eq!(rows(&c, "SELECT name FROM t WHERE id = ?", pos(vec![5i64.into()])).rows[0][0], Value::Text("n5".into()));
    }
}
