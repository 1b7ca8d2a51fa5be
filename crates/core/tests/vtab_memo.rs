//! `INSERT INTO crsql_changes` keeps, from one row's merge to the next in a transaction, the
//! site ordinals it resolved and the clocks of the row it merged last. These tests change or
//! undo what it keeps between two merges of the same row (a savepoint rolled back, a statement
//! rolled back by an error outside the merge, a transaction rolled back, a local write, a merge
//! through `apply_changes`, a schema change, another connection's write) and check the second
//! merge decides on what is stored; natively and in wasm.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{self, pack, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::{params, Connection};

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a TEXT, b TEXT);
                      SELECT crsql_as_crr('t');";

const S1: [u8; 16] = [1; 16];
const S2: [u8; 16] = [2; 16];

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c
}

fn key(id: i64) -> Vec<u8> {
    pack::pack(&[Value::Integer(id)]).unwrap()
}

/// Merges column `cid` of row `id` through the virtual table (causal length 1).
fn merge(c: &Connection, id: i64, cid: &str, val: &str, col_version: i64, site: &[u8]) {
    c.execute(
        "INSERT INTO crsql_changes VALUES ('t', ?1, ?2, ?3, ?4, 1, ?5, 1, 0)",
        params![key(id), cid, val, col_version, site],
    )
    .unwrap();
}

fn a_of(c: &Connection, id: i64) -> Option<String> {
    c.query_row("SELECT a FROM t WHERE id = ?1", [id], |r| r.get(0))
        .ok()
}

both! {
    fn savepoint_rolled_back_between_merges_of_a_row() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        c.execute_batch("SAVEPOINT s").unwrap();
        merge(&c, 1, "a", "y", 5, &S1);
        c.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
        // The stored clock of `a` is at 1 again: version 3 wins.
        merge(&c, 1, "a", "z", 3, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("z"));
    }

    fn statement_rolled_back_by_an_error_after_its_merge() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        // The first row merges, then the SELECT fails on the second (integer overflow in
        // abs()), outside the merge: SQLite undoes the whole statement.
        let err = c
            .execute(
                "INSERT INTO crsql_changes SELECT 't', ?1, column1, \
                 CASE WHEN column2 = 'boom' THEN abs(-9223372036854775807 - column3) ELSE column2 END, \
                 column3, 1, ?2, 1, 0 FROM (VALUES ('a', 'y', 5), ('b', 'boom', 1))",
                params![key(1), &S1[..]],
            )
            .unwrap_err();
        assert!(err.to_string().contains("integer overflow"), "{err}");
        assert_eq!(a_of(&c, 1).as_deref(), Some("x"));
        merge(&c, 1, "a", "z", 3, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("z"));
    }

    fn transaction_rolled_back_between_merges_of_a_row() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "y", 5, &S1);
        c.execute_batch("ROLLBACK; BEGIN").unwrap();
        merge(&c, 1, "a", "z", 3, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("z"));
    }

    fn transaction_committed_and_as_many_clocks_written_since() {
        // `seq` restarts with every transaction: the same count of clock writes since a merge
        // does not mean the same clocks.
        let c = open();
        merge(&c, 1, "a", "x", 1, &S1);
        c.execute_batch("BEGIN").unwrap();
        c.execute("UPDATE t SET a = 'l1' WHERE id = 1", []).unwrap();
        // Loses to the local write's version 2.
        merge(&c, 1, "a", "z", 1, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("l1"));
    }

    fn transaction_rolled_back_and_as_many_clocks_written_since() {
        let c = open();
        merge(&c, 1, "a", "x", 1, &S1);
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 2, "a", "x", 1, &S1);
        c.execute_batch("ROLLBACK; BEGIN").unwrap();
        c.execute("UPDATE t SET a = 'l1' WHERE id = 1", []).unwrap();
        // Row 2 is gone again: even version 0 wins.
        merge(&c, 2, "a", "v", 0, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 2).as_deref(), Some("v"));
    }

    fn local_write_between_merges_of_a_row() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        // A local write: `a` is at version 2 with 'local'.
        c.execute("UPDATE t SET a = 'local' WHERE id = 1", []).unwrap();
        // Equal versions: the greater value wins, and 'local' > 'aaa'.
        merge(&c, 1, "a", "aaa", 2, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("local"));
    }

    fn apply_changes_between_merges_of_a_row() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        let change = Change {
            table: "t".into(),
            pk: key(1),
            cid: "a".into(),
            val: Value::Text("q".into()),
            col_version: 4,
            db_version: 1,
            site_id: S2.to_vec().into(),
            cl: 1,
            seq: 0,
        };
        crdt::apply_changes(&c, &[change]).unwrap();
        merge(&c, 1, "a", "r", 3, &S1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(a_of(&c, 1).as_deref(), Some("q"));
    }

    fn site_ordinal_rolled_back_and_taken_by_another_site() {
        let c = open();
        c.execute_batch("BEGIN; SAVEPOINT s").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        c.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
        // S2 now gets the ordinal S1 had.
        merge(&c, 2, "a", "x", 1, &S2);
        merge(&c, 3, "a", "x", 1, &S1);
        c.execute_batch("COMMIT").unwrap();
        let site = |id: i64| -> Vec<u8> {
            c.query_row(
                "SELECT site_id FROM crsql_changes WHERE pk = ?1 AND cid = 'a'",
                [key(id)],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(site(2), S2.to_vec());
        assert_eq!(site(3), S1.to_vec());
        assert_eq!(a_of(&c, 1), None);
    }

    fn schema_change_between_merges_of_a_row() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        merge(&c, 1, "a", "x", 1, &S1);
        c.execute_batch(
            "SELECT crsql_begin_alter('t'); ALTER TABLE t ADD COLUMN d TEXT; SELECT crsql_commit_alter('t');",
        )
        .unwrap();
        merge(&c, 1, "d", "new", 1, &S1);
        merge(&c, 1, "a", "y", 2, &S1);
        c.execute_batch("COMMIT").unwrap();
        let row: (String, String) = c
            .query_row("SELECT a, d FROM t WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, ("y".into(), "new".into()));
    }

    fn many_merges_of_one_row_match_apply_changes() {
        // Every outcome rule in a run of changes to one row, each merged as its own statement
        // (so each one after the first starts from what the previous left), against one
        // apply_changes call.
        let rows: Vec<(&str, &str, i64, i64)> = vec![
            ("a", "x", 1, 1), ("b", "p", 1, 1), ("a", "w", 1, 1), ("a", "y", 1, 1),
            ("-1", "", 2, 2), ("a", "gone", 3, 2), ("-1", "", 3, 3), ("a", "back", 1, 3),
            ("b", "q", 2, 3), ("b", "q", 2, 3), ("a", "old", 5, 1), ("b", "r", 1, 5),
        ];
        let changes: Vec<Change> = rows
            .iter()
            .map(|&(cid, val, col_version, cl)| Change {
                table: "t".into(),
                pk: key(1),
                cid: cid.into(),
                val: if cid == "-1" { Value::Null } else { Value::Text(val.into()) },
                col_version,
                db_version: 1,
                site_id: S1.to_vec().into(),
                cl,
                seq: 0,
            })
            .collect();
        let via_vtab = open();
        via_vtab.execute_batch("BEGIN").unwrap();
        for ch in &changes {
            via_vtab
                .execute(
                    "INSERT INTO crsql_changes VALUES ('t', ?1, ?2, ?3, ?4, 1, ?5, ?6, 0)",
                    params![ch.pk, &*ch.cid, ch.val, ch.col_version, &ch.site_id[..], ch.cl],
                )
                .unwrap();
        }
        via_vtab.execute_batch("COMMIT").unwrap();
        let via_apply = open();
        crdt::apply_changes(&via_apply, &changes).unwrap();
        let dump = |c: &Connection| -> Vec<(String, Value, i64, i64)> {
            let mut s = c
                .prepare("SELECT cid, val, col_version, cl FROM crsql_changes ORDER BY cid")
                .unwrap();
            let v = s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            v
        };
        assert_eq!(dump(&via_vtab), dump(&via_apply));
        let row = |c: &Connection| -> Vec<(i64, Option<String>, Option<String>)> {
            let mut s = c.prepare("SELECT id, a, b FROM t").unwrap();
            let v = s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            v
        };
        assert_eq!(row(&via_vtab), row(&via_apply));
    }
}

/// Another connection writes between two transactions that merge the same row.
#[cfg(not(target_family = "wasm"))]
#[test]
fn another_connection_writes_between_transactions() {
    let dir = std::env::temp_dir().join(format!("synqlite-vtab-memo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut one = Connection::open(&path).unwrap();
    crdt::init(&mut one).unwrap();
    one.execute_batch(SCHEMA).unwrap();
    let mut two = Connection::open(&path).unwrap();
    crdt::init(&mut two).unwrap();
    for (id, begin) in [(1, "BEGIN"), (2, "")] {
        merge(&one, id, "a", "x", 1, &S1);
        // A merge that writes nothing (an equal change), in its own transaction.
        one.execute_batch(begin).unwrap();
        merge(&one, id, "a", "x", 1, &S1);
        if !begin.is_empty() {
            one.execute_batch("COMMIT").unwrap();
        }
        // `a` at version 2 with 'other', written elsewhere.
        two.execute("UPDATE t SET a = 'other' WHERE id = ?1", [id])
            .unwrap();
        one.execute_batch(begin).unwrap();
        // Equal versions: 'other' > 'abc' stays.
        merge(&one, id, "a", "abc", 2, &S1);
        if !begin.is_empty() {
            one.execute_batch("COMMIT").unwrap();
        }
        assert_eq!(a_of(&one, id).as_deref(), Some("other"), "{begin:?}");
    }
    drop((one, two));
    std::fs::remove_dir_all(&dir).unwrap();
}
