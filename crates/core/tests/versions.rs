//! Version poisoning: a peer cannot push a database's versions out of the protocol's range or
//! leave it without versions for its own writes, and the database's own counters never pass
//! `MAX_ACCEPTED_VERSION` (a write that would fails cleanly with `VERSION_EXHAUSTED`).

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{
    self, pack, Change, MAX_ACCEPTED_VERSION, MAX_VERSION, VERSION_HEADROOM,
};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::Error;

const SONGS: &str =
    "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT, plays INTEGER);
                     SELECT crsql_as_crr('songs');";

fn peer() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c.execute_batch(SONGS).unwrap();
    c
}

fn change(id: i64, cid: &str, val: Value) -> Change {
    Change {
        table: "songs".into(),
        pk: pack::pack(&[Value::Integer(id)]).unwrap(),
        cid: cid.into(),
        val,
        col_version: 1,
        db_version: 1,
        site_id: vec![9; 16].into(),
        cl: 1,
        seq: 0,
    }
}

/// Every clock of the database: (cid, col_version, db_version).
fn clocks(c: &Connection) -> Vec<(String, i64, i64)> {
    let mut s = c
        .prepare("SELECT col_name, col_version, db_version FROM songs__crsql_clock ORDER BY key, col_name")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn songs(c: &Connection) -> Vec<(i64, Option<String>, Option<i64>)> {
    let mut s = c
        .prepare("SELECT id, title, plays FROM songs ORDER BY id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn max_clock_version(c: &Connection) -> i64 {
    c.query_row(
        "SELECT max(max(col_version), max(db_version)) FROM songs__crsql_clock",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn constants() {
        assert_eq!(MAX_VERSION, 9_007_199_254_740_991);
        assert_eq!(VERSION_HEADROOM, 1 << 40);
        assert_eq!(MAX_ACCEPTED_VERSION, MAX_VERSION - VERSION_HEADROOM);
        assert_eq!(synqlite_core::sync::MAX_ACCEPTED_VERSION, MAX_ACCEPTED_VERSION);
    }

    fn out_of_range_versions_are_refused_and_change_nothing() {
        let c = peer();
        c.execute("INSERT INTO songs VALUES (1, 'a', 1)", []).unwrap();
        let (before_rows, before_clocks) = (songs(&c), clocks(&c));
        let before_version = crdt::db_version(&c).unwrap();
        let good = change(2, "title", Value::Text("x".into()));
        for (field, v) in [
            ("db_version", MAX_VERSION),
            ("db_version", MAX_ACCEPTED_VERSION + 1),
            ("col_version", MAX_VERSION),
            ("col_version", MAX_ACCEPTED_VERSION + 1),
            ("cl", MAX_VERSION),
            ("seq", MAX_VERSION),
            ("db_version", -1),
            ("col_version", -1),
            ("cl", i64::MIN),
            ("seq", i64::MAX),
        ] {
            let mut bad = good.clone();
            match field {
                "db_version" => bad.db_version = v,
                "col_version" => bad.col_version = v,
                "cl" => bad.cl = v,
                _ => bad.seq = v,
            }
            // The bad row comes last: nothing of the batch is written.
            let err = crdt::apply_changes(&c, &[good.clone(), bad]).unwrap_err();
            assert_eq!(err.code(), "INVALID_CHANGE", "{field} {v}");
            let msg = err.to_string();
            assert!(msg.contains(field) && msg.contains(&v.to_string()), "{msg}");
            assert_eq!(songs(&c), before_rows);
            assert_eq!(clocks(&c), before_clocks);
            assert_eq!(crdt::db_version(&c).unwrap(), before_version);
        }
        // The same row in range goes through, and local writes go on as before.
        crdt::apply_changes(&c, &[good]).unwrap();
        c.execute("UPDATE songs SET plays = 2 WHERE id = 1", []).unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), before_version + 2);
    }

    fn a_peer_at_the_limit_leaves_room_for_local_writes() {
        let c = peer();
        let mut top = change(1, "title", Value::Text("x".into()));
        top.db_version = MAX_ACCEPTED_VERSION;
        top.seq = MAX_ACCEPTED_VERSION;
        assert_eq!(crdt::apply_changes(&c, &[top]).unwrap().applied, 1);
        // The merge raised the db_version only as far as leaves VERSION_HEADROOM commits.
        let raised = crdt::db_version(&c).unwrap();
        assert_eq!(raised, MAX_ACCEPTED_VERSION - VERSION_HEADROOM);
        c.execute("INSERT INTO songs VALUES (2, 'b', 1)", []).unwrap();
        c.execute("UPDATE songs SET plays = 5 WHERE id = 1", []).unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), raised + 2);
        assert!(max_clock_version(&c) <= MAX_ACCEPTED_VERSION);
        // Its changes stay acceptable to a peer.
        let other = peer();
        crdt::apply_changes(&other, &crdt::changes_since(&c, 0, None).unwrap()).unwrap();
        assert_eq!(songs(&other), songs(&c));
    }

    fn a_column_at_the_limit_refuses_local_writes_cleanly() {
        let c = peer();
        let mut col = change(1, "title", Value::Text("x".into()));
        col.col_version = MAX_ACCEPTED_VERSION;
        let mut other_col = change(1, "plays", Value::Integer(1));
        other_col.col_version = 3;
        crdt::apply_changes(&c, &[col, other_col]).unwrap();
        let (before_rows, before_clocks) = (songs(&c), clocks(&c));
        // Bumping that column's version would pass the limit: refused, nothing written.
        let err = Error::from(c.execute("UPDATE songs SET title = 'y' WHERE id = 1", []).unwrap_err());
        assert_eq!(err.code(), "VERSION_EXHAUSTED", "{err}");
        assert!(err.to_string().contains("songs"), "{err}");
        let err = synqlite_core::exec(&c, "UPDATE songs SET title = 'y' WHERE id = 1", &Default::default())
            .unwrap_err();
        assert_eq!(err.code(), "VERSION_EXHAUSTED", "{err}");
        assert_eq!(songs(&c), before_rows);
        assert_eq!(clocks(&c), before_clocks);
        // Other columns and rows still take writes.
        c.execute("UPDATE songs SET plays = 7 WHERE id = 1", []).unwrap();
        c.execute("INSERT INTO songs VALUES (2, 'b', 1)", []).unwrap();
        assert!(max_clock_version(&c) <= MAX_ACCEPTED_VERSION);
    }

    fn a_causal_length_at_the_limit_refuses_deletes_cleanly() {
        let c = peer();
        // MAX_ACCEPTED_VERSION is odd: the row is alive at that causal length.
        assert_eq!(MAX_ACCEPTED_VERSION % 2, 1);
        let mut sentinel = change(1, "-1", Value::Null);
        sentinel.col_version = MAX_ACCEPTED_VERSION;
        sentinel.cl = MAX_ACCEPTED_VERSION;
        crdt::apply_changes(&c, &[sentinel]).unwrap();
        assert_eq!(songs(&c), vec![(1, None, None)]);
        let err = Error::from(c.execute("DELETE FROM songs WHERE id = 1", []).unwrap_err());
        assert_eq!(err.code(), "VERSION_EXHAUSTED", "{err}");
        assert_eq!(songs(&c), vec![(1, None, None)]);
        assert!(max_clock_version(&c) <= MAX_ACCEPTED_VERSION);
    }
}

/// A file database whose db_version is at the limit (written by an older version, before
/// versions were checked) refuses local writes and merges with `VERSION_EXHAUSTED`.
#[cfg(not(target_family = "wasm"))]
#[test]
fn an_exhausted_database_refuses_writes_cleanly() {
    let dir = std::env::temp_dir().join(format!("synqlite-versions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("exhausted.db");
    let _ = std::fs::remove_file(&path);
    {
        let mut c = Connection::open(&path).unwrap();
        crdt::init(&mut c).unwrap();
        c.execute_batch(SONGS).unwrap();
        c.execute("INSERT INTO songs VALUES (1, 'a', 1)", [])
            .unwrap();
        c.execute(
            "UPDATE songs__crsql_clock SET db_version = ?1",
            [MAX_ACCEPTED_VERSION],
        )
        .unwrap();
    }
    let mut c = Connection::open(&path).unwrap();
    crdt::init(&mut c).unwrap();
    assert_eq!(crdt::db_version(&c).unwrap(), MAX_ACCEPTED_VERSION);
    let err = Error::from(
        c.execute("INSERT INTO songs VALUES (2, 'b', 1)", [])
            .unwrap_err(),
    );
    assert_eq!(err.code(), "VERSION_EXHAUSTED", "{err}");
    let err = crdt::apply_changes(&c, &[change(3, "title", Value::Text("x".into()))]).unwrap_err();
    assert_eq!(err.code(), "VERSION_EXHAUSTED", "{err}");
    assert_eq!(songs(&c), vec![(1, Some("a".into()), Some(1))]);
    assert_eq!(max_clock_version(&c), MAX_ACCEPTED_VERSION);
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Triggers made before the `col_version` check are replaced when the database is opened.
#[cfg(not(target_family = "wasm"))]
#[test]
fn old_triggers_are_upgraded_on_open() {
    let dir = std::env::temp_dir().join(format!("synqlite-triggers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.db");
    let _ = std::fs::remove_file(&path);
    let trigger_sql = |c: &Connection| -> String {
        c.query_row(
            "SELECT group_concat(sql) FROM sqlite_master WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    {
        let mut c = Connection::open(&path).unwrap();
        crdt::init(&mut c).unwrap();
        c.execute_batch(SONGS).unwrap();
        assert!(trigger_sql(&c).contains("RAISE(ABORT"));
        // What an older version left: triggers without the check, no triggers version.
        c.execute_batch(
            "DROP TRIGGER songs__crsql_utrig;
             CREATE TRIGGER songs__crsql_utrig AFTER UPDATE ON songs BEGIN SELECT 1; END;
             DELETE FROM crsql_master WHERE key = 'synqlite_triggers_version';",
        )
        .unwrap();
    }
    let mut c = Connection::open(&path).unwrap();
    crdt::init(&mut c).unwrap();
    let sql = trigger_sql(&c);
    assert!(sql.matches("RAISE(ABORT").count() >= 3, "{sql}");
    let version: i64 = c
        .query_row(
            "SELECT value FROM crsql_master WHERE key = 'synqlite_triggers_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 2);
    c.execute("INSERT INTO songs VALUES (1, 'a', 1)", [])
        .unwrap();
    c.execute("UPDATE songs SET title = 'b' WHERE id = 1", [])
        .unwrap();
    assert_eq!(
        clocks(&c)
            .iter()
            .find(|(cid, _, _)| cid == "title")
            .map(|c| c.1),
        Some(2)
    );
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
