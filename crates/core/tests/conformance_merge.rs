//! Merge and change-reading cases where synqlite must do what cr-sqlite 0.16.3 does
//! (`changes_vtab_write.rs`, `changes_vtab.rs`): comparison with the value as stored (after the
//! column's affinity) within one batch, change rows naming a column the receiver lacks, exact
//! (case-sensitive) table and column names, and a clock that survives without its row.
//! Natively and in wasm (dedicated worker).

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{self, pack, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c
}

fn peer(schema: &str) -> Connection {
    let c = open();
    c.execute_batch(schema).unwrap();
    c
}

const SONGS: &str = "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title, plays DEFAULT 0);
                     SELECT crsql_as_crr('songs');";

/// One column per affinity (TEXT, NUMERIC, REAL, INTEGER, none).
const TYPED: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, s TEXT, n NUMERIC, r REAL,
                     i INTEGER, a); SELECT crsql_as_crr('t');";

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

fn key(v: i64) -> Vec<u8> {
    pack::pack(&[Value::Integer(v)]).unwrap()
}

fn change(
    table: &str,
    pk: i64,
    cid: &str,
    val: Value,
    col_version: i64,
    cl: i64,
    site: u8,
) -> Change {
    Change {
        table: table.into(),
        pk: key(pk),
        cid: cid.into(),
        val,
        col_version,
        db_version: 1,
        site_id: vec![site; 16].into(),
        cl,
        seq: 0,
    }
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn all(c: &Connection) -> Vec<Change> {
    crdt::changes_since(c, 0, None).unwrap()
}

macro_rules! both {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {$(
        $(#[$meta])*
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    /// cr-sqlite writes each winning change at once and compares the next one with the column
    /// as stored, after its affinity converted the value.
    fn same_batch_compares_with_the_stored_value() {
        // (column, first value, second value, the stored value that must win)
        let cases = [
            // TEXT stores 10 as '10'; '9' > '10' bytewise (raw: INTEGER 10 > TEXT '9').
            ("s", Value::Integer(10), t("9"), t("9")),
            // NUMERIC stores '5' as 5; INTEGER 5 > REAL 4.5 (raw: REAL 4.5 > TEXT '5').
            ("n", t("5"), Value::Real(4.5), Value::Integer(5)),
            // REAL stores 3 as 3.0; 3.5 > 3.0 (raw: INTEGER 3 > REAL 3.5).
            ("r", Value::Integer(3), Value::Real(3.5), Value::Real(3.5)),
            // INTEGER stores '7' as 7; 7 > 6 (raw: INTEGER 6 > TEXT '7').
            ("i", t("7"), Value::Integer(6), Value::Integer(7)),
            // No affinity: stored as given; INTEGER 1 > REAL 1.5.
            ("a", Value::Integer(1), Value::Real(1.5), Value::Integer(1)),
        ];
        for (col, first, second, want) in cases {
            let batch = [
                change("t", 1, col, first.clone(), 1, 1, 0xa),
                change("t", 1, col, second.clone(), 1, 1, 0xb),
            ];
            let one = peer(TYPED);
            crdt::apply_changes(&one, &batch).unwrap();
            let two = peer(TYPED);
            crdt::apply_changes(&two, &batch[..1]).unwrap();
            crdt::apply_changes(&two, &batch[1..]).unwrap();
            let q = format!("SELECT {col} FROM t");
            assert_eq!(rows(&two, &q), vec![vec![want.clone()]], "two calls, column {col}");
            assert_eq!(rows(&one, &q), vec![vec![want.clone()]], "one batch, column {col}");
            let site = |c: &Connection| all(c).into_iter().find(|ch| &*ch.cid == col).unwrap().site_id;
            assert_eq!(site(&one), site(&two), "clock site, column {col}");
        }
        // A value equal to the stored one after affinity is a no-op: 10 was stored as '10'.
        let c = peer(TYPED);
        let s = crdt::apply_changes(&c, &[change("t", 1, "s", Value::Integer(10), 1, 1, 0xa),
                                         change("t", 1, "s", t("10"), 1, 1, 0xb)]).unwrap();
        assert_eq!(s.applied, 1);
        assert!(all(&c).iter().find(|ch| &*ch.cid == "s").unwrap().site_id[..] == [0xa; 16]);
    }

    /// cr-sqlite ignores a change naming a column the receiver lacks when it cannot win anyway
    /// (older causal length, a delete, a local clock of that name with a higher col_version) and
    /// fails otherwise.
    fn unknown_columns_follow_cr_sqlite() {
        let c = peer(SONGS);
        c.execute_batch("INSERT INTO songs VALUES (1, 'a', 0);
                         DELETE FROM songs; INSERT INTO songs VALUES (1, 'a', 0);").unwrap(); // cl 3
        let other = change("songs", 2, "title", t("b"), 1, 1, 7);
        // An older life of the row: ignored, the rest of the batch applies.
        let s = crdt::apply_changes(&c, &[change("songs", 1, "genre", t("x"), 1, 1, 7), other.clone()]).unwrap();
        assert_eq!(s.applied, 1);
        assert_eq!(rows(&c, "SELECT id, title FROM songs ORDER BY id"), vec![vec![Value::Integer(1), t("a")], vec![Value::Integer(2), t("b")]]);
        // An even causal length is a delete, whatever the column.
        let s = crdt::apply_changes(&c, &[change("songs", 1, "genre", Value::Null, 4, 4, 7)]).unwrap();
        assert_eq!(s.applied, 1);
        assert!(rows(&c, "SELECT * FROM songs WHERE id = 1").is_empty());
        // The same delete again: nothing to do.
        assert_eq!(crdt::apply_changes(&c, &[change("songs", 1, "genre", Value::Null, 4, 4, 7)]).unwrap().applied, 0);
        // A local clock of that name (a column dropped here) with a higher col_version wins.
        c.execute_batch("INSERT INTO songs__crsql_clock (key, col_name, col_version, db_version, site_id, seq)
                         VALUES (crsql_pack_columns(2), 'genre', 5, 1, 0, 0)").unwrap();
        assert_eq!(crdt::apply_changes(&c, &[change("songs", 2, "genre", t("x"), 4, 1, 7)]).unwrap().applied, 0);
        // Every case where the change would win fails the whole batch, clearly.
        let fails = [
            ("col_version above the local clock", change("songs", 2, "genre", t("x"), 6, 1, 7)),
            ("equal col_version (values compared)", change("songs", 2, "genre", t("x"), 5, 1, 7)),
            ("no local clock", change("songs", 2, "year", Value::Integer(1), 1, 1, 7)),
            ("row unknown here", change("songs", 3, "genre", t("x"), 1, 1, 7)),
            ("newer life of the row", change("songs", 2, "genre", t("x"), 1, 3, 7)),
            ("resurrecting a deleted row", change("songs", 1, "genre", t("x"), 1, 5, 7)),
            ("a primary-key column", change("songs", 2, "id", Value::Integer(2), 1, 1, 7)),
        ];
        let before = (rows(&c, "SELECT * FROM songs ORDER BY id"), all(&c), crdt::db_version(&c).unwrap());
        for (case, bad) in fails {
            let good = change("songs", 9, "title", t("z"), 1, 1, 7);
            let name = format!("column {}", bad.cid);
            let e = crdt::apply_changes(&c, &[good, bad]).unwrap_err();
            assert_eq!(e.code(), "INVALID_CHANGE", "{case}: {e}");
            assert!(e.to_string().contains(&name), "{case}: {e}");
            assert_eq!((rows(&c, "SELECT * FROM songs ORDER BY id"), all(&c), crdt::db_version(&c).unwrap()), before, "{case}");
        }
        // The failed batches used no version: the next write takes the next one.
        c.execute_batch("UPDATE songs SET plays = 9 WHERE id = 2").unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), before.2 + 1);
    }

    /// `crsql_rows_impacted()` counts as cr-sqlite's merge does: a column change that
    /// resurrects its row counts the resurrect and the column.
    fn rows_impacted_counts_as_cr_sqlite() {
        let c = peer(SONGS);
        let impacted = || c.query_row("SELECT crsql_rows_impacted()", [], |r| r.get::<_, i64>(0)).unwrap();
        // Asserted after COMMIT: dropping a connection inside a transaction is not what this tests.
        c.execute_batch("BEGIN").unwrap();
        let s = crdt::apply_changes(&c, &[change("songs", 1, "title", t("a"), 1, 3, 7)]).unwrap();
        let first = (s.applied, impacted());
        crdt::apply_changes(&c, &[change("songs", 1, "title", t("a"), 1, 3, 7),
                                  change("songs", 2, "title", t("b"), 1, 1, 7),
                                  change("songs", 1, "-1", Value::Null, 4, 4, 7)]).unwrap();
        let second = impacted();
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(first, (1, 2));
        assert_eq!(second, 4);
        assert_eq!(impacted(), 0);
    }

    /// cr-sqlite looks tables and columns up by exact name.
    fn names_match_exactly() {
        let c = peer(SONGS);
        c.execute_batch("INSERT INTO songs VALUES (1, 'a', 0)").unwrap();
        let e = crdt::apply_changes(&c, &[change("SONGS", 1, "title", t("b"), 9, 1, 7)]).unwrap_err();
        assert_eq!(e.code(), "INVALID_CHANGE");
        assert!(e.to_string().contains("not a replicated table"), "{e}");
        let e = crdt::apply_changes(&c, &[change("songs", 1, "TITLE", t("b"), 9, 1, 7)]).unwrap_err();
        assert_eq!(e.code(), "INVALID_CHANGE");
        assert!(e.to_string().contains("has no column TITLE"), "{e}");
        assert_eq!(rows(&c, "SELECT title FROM songs"), vec![vec![t("a")]]);
        // Mixed case in the schema itself is fine when the names agree.
        let m = peer("CREATE TABLE Songs (Id INTEGER PRIMARY KEY NOT NULL, Title); SELECT crsql_as_crr('Songs');");
        crdt::apply_changes(&m, &[change("Songs", 1, "Title", t("b"), 1, 1, 7)]).unwrap();
        assert_eq!(rows(&m, "SELECT Title FROM Songs"), vec![vec![t("b")]]);
        assert!(crdt::apply_changes(&m, &[change("songs", 1, "Title", t("c"), 2, 1, 7)]).is_err());
    }

    /// A column clock whose row is gone (written with the triggers off) is read as cr-sqlite's
    /// `crsql_changes` reads it: the column's name, a NULL value.
    fn clock_without_row_reads_as_cr_sqlite() {
        let c = peer(SONGS);
        c.execute_batch("INSERT INTO songs VALUES (1, 'a', 0);
                         INSERT INTO songs__crsql_clock (key, col_name, col_version, db_version, site_id, seq)
                         VALUES (crsql_pack_columns(5), 'title', 3, 7, 0, 0)").unwrap();
        let orphan: Vec<Change> = all(&c).into_iter().filter(|ch| ch.pk == key(5)).collect();
        assert_eq!(orphan.len(), 1);
        let o = &orphan[0];
        assert_eq!((&*o.cid, &o.val, o.col_version, o.db_version, o.cl), ("title", &Value::Null, 3, 7, 1));
        assert_eq!(o.site_id[..], crdt::site_id(&c).unwrap()[..]);
        // A peer merging it gets the row with a NULL title, as from cr-sqlite.
        let p = peer(SONGS);
        crdt::apply_changes(&p, &orphan).unwrap();
        assert_eq!(rows(&p, "SELECT id, title, plays FROM songs"), vec![vec![Value::Integer(5), Value::Null, Value::Integer(0)]]);
    }
}
