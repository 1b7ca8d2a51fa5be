//! CRDT change tracking (cr-sqlite 0.16 compatible), natively and in wasm (dedicated worker):
//! pk packing vectors, crr rules, local change rows, merge tie-breaks, idempotence, alter.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{self, pack, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::Error;

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c
}

// Untyped columns: no affinity, so 0 and 0.0 (or 1 and '1') are different values.
const SONGS: &str = "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title, plays DEFAULT 0);
                     SELECT crsql_as_crr('songs');";

fn peer(schema: &str) -> Connection {
    let c = open();
    c.execute_batch(schema).unwrap();
    c
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn all(c: &Connection) -> Vec<Change> {
    crdt::changes_since(c, 0, None).unwrap()
}

/// (cid, col_version, db_version, cl, seq) of each change row.
fn shape(ch: &[Change]) -> Vec<(String, i64, i64, i64, i64)> {
    ch.iter()
        .map(|c| (c.cid.to_string(), c.col_version, c.db_version, c.cl, c.seq))
        .collect()
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

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

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn pk_packing_vectors() {
        let p = |v: Vec<Value>| hex(&pack::pack(&v).unwrap());
        assert_eq!(p(vec![Value::Integer(1)]), "010901");
        assert_eq!(p(vec![t("a")]), "010b0161");
        assert_eq!(p(vec![Value::Integer(12), t("str"), Value::Blob(vec![1, 2, 3])]), "03090c0b037374720c03010203");
        assert_eq!(p(vec![Value::Integer(0)]), "0101");
        assert_eq!(p(vec![Value::Integer(128)]), "010980");
        assert_eq!(p(vec![Value::Integer(256)]), "01110100");
        assert_eq!(p(vec![Value::Integer(-1)]), "0141ffffffffffffffff");
        assert_eq!(p(vec![Value::Integer(-2500000)]), "0141ffffffffffd9da60");
        assert_eq!(p(vec![Value::Real(1.5)]), "01023ff8000000000000");
        assert_eq!(p(vec![Value::Real(-0.25)]), "0102bfd0000000000000");
        assert_eq!(p(vec![Value::Null]), "0105");
        assert_eq!(p(vec![t("")]), "0103");
        assert_eq!(p(vec![Value::Blob(vec![])]), "0104");
        assert_eq!(p(vec![Value::Integer(1), t("a")]), "020901" .to_owned() + "0b0161");
        let long = "x".repeat(300);
        assert_eq!(&p(vec![t(&long)])[..8], "0113012c");
        for v in [
            vec![Value::Integer(i64::MIN), Value::Integer(i64::MAX), Value::Integer(255), Value::Integer(1 << 40)],
            vec![Value::Real(3.25), t("é😀"), Value::Blob(vec![0; 70_000]), Value::Null],
        ] {
            assert_eq!(pack::unpack(&pack::pack(&v).unwrap()).unwrap(), v);
        }
        // SQL function and Rust agree.
        let c = open();
        let b: Vec<u8> = c.query_row("SELECT crsql_pack_columns(12, 'str', x'010203')", [], |r| r.get(0)).unwrap();
        assert_eq!(hex(&b), "03090c0b037374720c03010203");
        let b: Vec<u8> = c.query_row("SELECT crsql_pack_columns(-1, 1.5, NULL)", [], |r| r.get(0)).unwrap();
        assert_eq!(b, pack::pack(&[Value::Integer(-1), Value::Real(1.5), Value::Null]).unwrap());
    }

    fn malformed_pks_are_rejected() {
        for bad in [&[][..], &[1][..], &[1, 0x09][..], &[1, 0x0b, 5, b'a'][..], &[1, 0x06][..],
                    &[1, 0x49, 1, 2, 3, 4, 5, 6, 7, 8, 9][..], &[1, 0x02, 0, 0][..], &[1, 0x0b, 1, 0xff][..]] {
            let e = pack::unpack(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_CHANGE", "{bad:?}");
        }
    }

    fn as_crr_rejects_what_cr_sqlite_rejects() {
        let cases: &[(&str, &str, &str)] = &[
            ("CREATE TABLE a (id INTEGER, x)", "a", "no primary key"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY, x)", "a", "nullable primary key"),
            ("CREATE TABLE a (k1 NOT NULL, k2, x, PRIMARY KEY (k1, k2))", "a", "composite primary key is nullable"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, x)", "a", "AUTOINCREMENT"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL, x UNIQUE)", "a", "UNIQUE index"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL, x); CREATE UNIQUE INDEX ax ON a (x)", "a", "UNIQUE index ax"),
            ("CREATE TABLE p (id INTEGER PRIMARY KEY NOT NULL); CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL, p REFERENCES p (id))", "a", "FOREIGN KEY"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL, x TEXT NOT NULL)", "a", "NOT NULL column x has no DEFAULT"),
            ("CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL); CREATE VIEW v AS SELECT * FROM a", "v", "not an ordinary table"),
            ("", "missing", "no such table"),
            ("", "crsql_master", "metadata"),
        ];
        for (schema, table, rule) in cases {
            let c = peer(schema);
            let e = crdt::as_crr(&c, table).unwrap_err();
            assert_eq!(e.code(), "CRR_UNSUPPORTED", "{schema}");
            let msg = e.to_string();
            assert!(msg.contains(rule) && msg.contains(table), "{schema}: {msg}");
            // The SQL function fails with the same message and leaves nothing behind.
            let sql_err = c.query_row(&format!("SELECT crsql_as_crr('{table}')"), [], |r| r.get::<_, String>(0)).unwrap_err();
            assert!(sql_err.to_string().contains(rule), "{sql_err}");
            let n: i64 = c.query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%crsql_clock%' OR type = 'trigger'", [], |r| r.get(0)).unwrap();
            assert_eq!(n, 0);
        }
        // Accepted: NOT NULL with DEFAULT, WITHOUT ROWID, composite keys, non-unique indexes.
        let c = peer("CREATE TABLE ok (a TEXT NOT NULL, b INTEGER NOT NULL, x TEXT NOT NULL DEFAULT '', PRIMARY KEY (a, b)) WITHOUT ROWID;
                      CREATE INDEX okx ON ok (x);");
        crdt::as_crr(&c, "ok").unwrap();
        crdt::as_crr(&c, "OK").unwrap();
        let r: String = c.query_row("SELECT crsql_as_crr('main', 'ok')", [], |r| r.get(0)).unwrap();
        assert_eq!(r, "OK");
        assert!(crdt::is_replicated(&c, "ok").unwrap());
    }

    fn site_id_is_persistent_and_init_idempotent() {
        let mut c = open();
        let a = crdt::site_id(&c).unwrap();
        crdt::init(&mut c).unwrap();
        assert_eq!(crdt::site_id(&c).unwrap(), a);
        let sql: Vec<u8> = c.query_row("SELECT crsql_site_id()", [], |r| r.get(0)).unwrap();
        assert_eq!(sql, a.to_vec());
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(open().execute_batch("SELECT 1").ok(), Some(()));
        assert_ne!(crdt::site_id(&open()).unwrap(), a);
        let e = crdt::changes_since(&Connection::open_in_memory().unwrap(), 0, None).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
    }

    fn state_lookup_survives_closed_connections_and_reused_addresses() {
        // The per-thread cache in front of the registry: closed connections' states die with
        // them, so a new connection (often at the same address) is never taken for an old one.
        let mut sites = Vec::new();
        for i in 0..40 {
            let c = peer(SONGS);
            c.execute("INSERT INTO songs VALUES (?1, 'x', 1)", [i]).unwrap();
            assert_eq!(crdt::db_version(&c).unwrap(), 1);
            sites.push(crdt::site_id(&c).unwrap());
            drop(c);
            let bare = Connection::open_in_memory().unwrap();
            assert_eq!(crdt::db_version(&bare).unwrap_err().code(), "INVALID_ARGUMENT");
        }
        sites.sort();
        sites.dedup();
        assert_eq!(sites.len(), 40);
        // Many connections used in turn on one thread (more than the cache holds).
        let conns: Vec<Connection> = (0..9).map(|_| peer(SONGS)).collect();
        for round in 0..3i64 {
            for (i, c) in conns.iter().enumerate() {
                c.execute("INSERT INTO songs VALUES (?1, 'x', ?2)", [round * 100 + i as i64, round]).unwrap();
                assert_eq!(crdt::db_version(c).unwrap(), round + 1);
            }
        }
        let ids: Vec<[u8; 16]> = conns.iter().map(|c| crdt::site_id(c).unwrap()).collect();
        for (c, id) in conns.iter().zip(&ids) {
            assert_eq!(crdt::site_id(c).unwrap(), *id);
        }
    }

    fn local_insert_update_delete_reinsert() {
        let c = peer(SONGS);
        assert_eq!(crdt::db_version(&c).unwrap(), 0);
        c.execute_batch("INSERT INTO songs VALUES (1, 'a', 0)").unwrap();
        // Like cr-sqlite 0.16: a first insert writes one clock per column, cl 1, no sentinel row.
        assert_eq!(shape(&all(&c)), vec![("title".into(), 1, 1, 1, 0), ("plays".into(), 1, 1, 1, 1)]);
        let site = crdt::site_id(&c).unwrap().to_vec();
        assert!(all(&c).iter().all(|ch| ch.site_id[..] == site[..] && ch.pk == key(1) && &*ch.table == "songs"));
        assert_eq!(all(&c)[0].val, t("a"));

        // Update: only the changed column; 0 -> 0.0 is a change (types differ), 'a' -> 'a' is not.
        c.execute_batch("UPDATE songs SET title = 'a', plays = 0.0 WHERE id = 1").unwrap();
        assert_eq!(shape(&crdt::changes_since(&c, 1, None).unwrap()), vec![("plays".into(), 2, 2, 1, 0)]);
        assert_eq!(crdt::changes_since(&c, 1, None).unwrap()[0].val, Value::Real(0.0));

        // One db_version per transaction, seq within it.
        c.execute_batch("BEGIN; INSERT INTO songs VALUES (2, 'b', 5); UPDATE songs SET title = 'c' WHERE id = 1; COMMIT;").unwrap();
        assert_eq!(shape(&crdt::changes_since(&c, 2, None).unwrap()), vec![
            ("title".into(), 1, 3, 1, 0), ("plays".into(), 1, 3, 1, 1), ("title".into(), 2, 3, 1, 2)]);
        assert_eq!(crdt::db_version(&c).unwrap(), 3);

        // Delete: sentinel at 2, the other clocks go.
        c.execute_batch("DELETE FROM songs WHERE id = 2").unwrap();
        let d = crdt::changes_since(&c, 3, None).unwrap();
        assert_eq!(shape(&d), vec![("-1".into(), 2, 4, 2, 0)]);
        assert_eq!(d[0].val, Value::Null);
        assert!(all(&c).iter().all(|ch| ch.pk != key(2) || &*ch.cid == "-1"));

        // Re-insert: next odd causal length, columns start over.
        c.execute_batch("INSERT INTO songs VALUES (2, 'd', 1)").unwrap();
        assert_eq!(shape(&crdt::changes_since(&c, 4, None).unwrap()), vec![
            ("-1".into(), 3, 5, 3, 0), ("title".into(), 1, 5, 3, 1), ("plays".into(), 1, 5, 3, 2)]);
        c.execute_batch("DELETE FROM songs WHERE id = 2; INSERT INTO songs VALUES (2, 'e', 1)").unwrap();
        let last = crdt::changes_since(&c, 6, None).unwrap();
        assert_eq!(&*last[0].cid, "-1");
        assert_eq!(last[0].cl, 5);

        // Rolled-back transactions leave no trace and do not use up a version.
        c.execute_batch("BEGIN; UPDATE songs SET title = 'zzz'; ROLLBACK;").unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 7);
        c.execute_batch("UPDATE songs SET plays = 9 WHERE id = 1").unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 8);
        let v: i64 = c.query_row("SELECT crsql_db_version()", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 8);
    }

    fn pk_only_tables_and_pk_updates() {
        let c = peer("CREATE TABLE tags (a TEXT NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b)); SELECT crsql_as_crr('tags');
                      CREATE TABLE s (id INTEGER PRIMARY KEY NOT NULL, x); SELECT crsql_as_crr('s');");
        c.execute_batch("INSERT INTO tags VALUES ('x', 1); DELETE FROM tags; INSERT INTO tags VALUES ('x', 1);").unwrap();
        let ch = all(&c);
        assert_eq!(shape(&ch), vec![("-1".into(), 3, 3, 3, 0)]);
        assert_eq!(ch[0].pk, pack::pack(&[t("x"), Value::Integer(1)]).unwrap());
        c.execute_batch("INSERT INTO s VALUES (1, 'v'); UPDATE s SET id = 2 WHERE id = 1;").unwrap();
        let ch = crdt::changes_since(&c, 3, None).unwrap();
        let by_key = |k: i64| shape(&ch.iter().filter(|c| c.pk == key(k)).cloned().collect::<Vec<_>>());
        assert_eq!(by_key(1), vec![("-1".into(), 2, 5, 2, 0)]);
        assert_eq!(by_key(2), vec![("-1".into(), 1, 5, 1, 1), ("x".into(), 1, 5, 1, 2)]);
        // A peer converges.
        let p = peer("CREATE TABLE s (id INTEGER PRIMARY KEY NOT NULL, x); SELECT crsql_as_crr('s');
                      CREATE TABLE tags (a TEXT NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b)); SELECT crsql_as_crr('tags');");
        crdt::apply_changes(&p, &all(&c)).unwrap();
        assert_eq!(rows(&p, "SELECT * FROM s"), vec![vec![Value::Integer(2), t("v")]]);
        assert_eq!(rows(&p, "SELECT * FROM tags"), vec![vec![t("x"), Value::Integer(1)]]);
    }

    fn backfill_existing_rows() {
        let c = open();
        c.execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT, plays INTEGER DEFAULT 0);
                         INSERT INTO songs VALUES (1, 'a', 1), (2, 'b', 2);
                         SELECT crsql_as_crr('songs'); SELECT crsql_as_crr('songs');").unwrap();
        let ch = all(&c);
        assert_eq!(ch.len(), 4);
        assert!(ch.iter().all(|c| c.db_version == 1 && c.col_version == 1 && c.cl == 1));
        let p = peer(SONGS);
        crdt::apply_changes(&p, &ch).unwrap();
        assert_eq!(rows(&p, "SELECT * FROM songs ORDER BY id"), rows(&c, "SELECT * FROM songs ORDER BY id"));
    }

    fn merge_follows_causal_length() {
        let c = peer(SONGS);
        c.execute_batch("INSERT INTO songs VALUES (1, 'local', 0)").unwrap();
        // Older life (cl below local) is ignored; an equal delete is ignored.
        c.execute_batch("DELETE FROM songs; INSERT INTO songs VALUES (1, 'local', 0);").unwrap(); // cl 3
        let s = crdt::apply_changes(&c, &[change("songs", 1, "title", t("old"), 9, 1, 7),
                                         change("songs", 1, "-1", Value::Null, 2, 2, 7)]).unwrap();
        assert_eq!(s.applied, 0);
        assert_eq!(rows(&c, "SELECT title FROM songs"), vec![vec![t("local")]]);
        // A delete with a higher cl wins, whatever the column versions.
        crdt::apply_changes(&c, &[change("songs", 1, "-1", Value::Null, 4, 4, 7)]).unwrap();
        assert!(rows(&c, "SELECT * FROM songs").is_empty());
        assert_eq!(shape(&all(&c)).into_iter().map(|s| (s.0, s.1, s.3)).collect::<Vec<_>>(), vec![("-1".into(), 4, 4)]);
        // A column of a newer life resurrects the row (missed sentinel: out-of-order delivery).
        crdt::apply_changes(&c, &[change("songs", 1, "title", t("new"), 1, 5, 7)]).unwrap();
        assert_eq!(rows(&c, "SELECT title, plays FROM songs"), vec![vec![t("new"), Value::Integer(0)]]);
        let ch = all(&c);
        assert_eq!(ch.iter().map(|c| (&*c.cid, c.col_version, c.cl)).collect::<Vec<_>>(), vec![("-1", 5, 5), ("title", 1, 5)]);
        assert!(ch.iter().all(|c| c.site_id[..] == [7; 16]));
    }

    fn merge_tie_breaks() {
        let c = peer(SONGS);
        c.execute_batch("INSERT INTO songs VALUES (1, 'm', 0)").unwrap();
        let apply = |cid: &str, v: Value, cv: i64| crdt::apply_changes(&c, &[change("songs", 1, cid, v, cv, 1, 9)]).unwrap().applied;
        let title = || rows(&c, "SELECT title FROM songs")[0][0].clone();
        // Lower col_version loses even with a greater value; higher wins even with a smaller one.
        assert_eq!(apply("title", Value::Integer(99), 0), 0);
        assert_eq!(apply("title", t("a"), 2), 1);
        assert_eq!(title(), t("a"));
        // Equal col_version: the greater value wins; text bytewise.
        assert_eq!(apply("title", t("B"), 2), 0); // 'B' < 'a'
        assert_eq!(apply("title", t("b"), 2), 1);
        // Across types: INTEGER > REAL > TEXT > BLOB > NULL.
        assert_eq!(apply("title", Value::Blob(vec![0xff]), 2), 0);
        assert_eq!(apply("title", Value::Null, 2), 0);
        assert_eq!(apply("title", Value::Real(-1e300), 2), 1);
        assert_eq!(title(), Value::Real(-1e300));
        assert_eq!(apply("title", Value::Real(-2e300), 2), 0);
        assert_eq!(apply("title", Value::Integer(i64::MIN), 2), 1);
        assert_eq!(title(), Value::Integer(i64::MIN));
        assert_eq!(apply("title", Value::Real(1e300), 2), 0);
        // Equal values: a no-op, the clock keeps the local site.
        assert_eq!(apply("title", Value::Integer(i64::MIN), 2), 0);
        let local = crdt::site_id(&c).unwrap().to_vec();
        let clock = |cid: &str| all(&c).into_iter().find(|ch| &*ch.cid == cid).unwrap();
        assert_eq!(clock("title").site_id[..], [9; 16]);
        assert_eq!(clock("plays").site_id[..], local[..]);
        assert_eq!(apply("plays", Value::Integer(0), 1), 0);
        // merge-equal-values (cr-sqlite 0.16.3): the bytewise-greater site id takes the clock.
        c.query_row("SELECT crsql_config_set('merge-equal-values', 1)", [], |r| r.get::<_, i64>(0)).unwrap();
        let greater = local.iter().map(|_| 0xffu8).collect::<Vec<_>>();
        let mut ch = change("songs", 1, "plays", Value::Integer(0), 1, 1, 0);
        ch.site_id = greater.clone().into();
        assert_eq!(crdt::apply_changes(&c, &[ch]).unwrap().applied, 1);
        assert_eq!(clock("plays").site_id[..], greater[..]);
        assert_eq!(apply("plays", Value::Integer(0), 1), 0); // [9; 16] < [0xff; 16]
        assert_eq!(crdt::compare_values((&Value::Integer(1)).into(), (&Value::Real(2.0)).into()), std::cmp::Ordering::Greater);
    }

    fn apply_is_idempotent_and_not_rerecorded() {
        let a = peer(SONGS);
        a.execute_batch("INSERT INTO songs VALUES (1, 'a', 1), (2, 'b', 2); UPDATE songs SET plays = 3 WHERE id = 1; DELETE FROM songs WHERE id = 2;").unwrap();
        let b = peer(SONGS);
        b.execute_batch("INSERT INTO songs VALUES (3, 'c', 3)").unwrap();
        let b_before = crdt::db_version(&b).unwrap();
        let ch = all(&a);
        let s1 = crdt::apply_changes(&b, &ch).unwrap();
        assert_eq!((s1.received, s1.applied), (ch.len(), ch.len()));
        let after_once = (all(&b), rows(&b, "SELECT * FROM songs ORDER BY id"));
        let s2 = crdt::apply_changes(&b, &ch).unwrap();
        assert_eq!(s2.applied, 0);
        assert_eq!((all(&b), rows(&b, "SELECT * FROM songs ORDER BY id")), after_once);
        // Merged rows keep the writer's site id, get a local db_version above everything before,
        // and are not recorded as local writes.
        let a_site = crdt::site_id(&a).unwrap().to_vec();
        let b_site = crdt::site_id(&b).unwrap().to_vec();
        let merged = crdt::changes_since(&b, b_before, None).unwrap();
        assert_eq!(merged.len(), ch.len());
        assert!(merged.iter().all(|c| c.site_id[..] == a_site[..] && c.db_version > b_before));
        let local_only = crdt::changes_since(&b, 0, Some(&a_site)).unwrap();
        assert!(local_only.iter().all(|c| c.site_id[..] == b_site[..] && c.pk == key(3)));
        // And they travel on to a third peer with their original site id.
        let c = peer(SONGS);
        crdt::apply_changes(&c, &crdt::changes_since(&b, 0, None).unwrap()).unwrap();
        assert_eq!(rows(&c, "SELECT * FROM songs ORDER BY id"), rows(&b, "SELECT * FROM songs ORDER BY id"));
        assert!(all(&c).iter().all(|ch| &ch.site_id[..] == if ch.pk == key(3) { &b_site[..] } else { &a_site[..] }));
        // Inside a caller's transaction, apply uses a savepoint and rolls back with it.
        c.execute_batch("BEGIN").unwrap();
        crdt::apply_changes(&c, &[change("songs", 9, "title", t("x"), 1, 1, 5)]).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        assert!(rows(&c, "SELECT * FROM songs WHERE id = 9").is_empty());
    }

    fn integer_and_real_stay_distinct() {
        let a = peer("CREATE TABLE v (id INTEGER PRIMARY KEY NOT NULL, x); SELECT crsql_as_crr('v');");
        a.execute_batch("INSERT INTO v VALUES (1, 1), (2, 1.0), (3, '1'), (4, x'01'), (5, NULL)").unwrap();
        let b = peer("CREATE TABLE v (id INTEGER PRIMARY KEY NOT NULL, x); SELECT crsql_as_crr('v');");
        crdt::apply_changes(&b, &all(&a)).unwrap();
        assert_eq!(rows(&b, "SELECT typeof(x) FROM v ORDER BY id"),
            ["integer", "real", "text", "blob", "null"].iter().map(|s| vec![t(s)]).collect::<Vec<_>>());
        assert_eq!(all(&b).iter().map(|c| c.val.clone()).collect::<Vec<_>>(),
            vec![Value::Integer(1), Value::Real(1.0), t("1"), Value::Blob(vec![1]), Value::Null]);
    }

    fn invalid_changes_apply_nothing() {
        let c = peer(SONGS);
        let good = change("songs", 1, "title", t("x"), 1, 1, 3);
        let cases = vec![
            (Change { table: "nope".into(), ..good.clone() }, "not a replicated table"),
            (Change { cid: "nope".into(), ..good.clone() }, "no column nope"),
            (Change { pk: vec![1, 9], ..good.clone() }, "malformed"),
            (Change { pk: pack::pack(&[Value::Integer(1), Value::Integer(2)]).unwrap(), ..good.clone() }, "primary-key column"),
            (Change { site_id: vec![1; 17].into(), ..good.clone() }, "site_id"),
        ];
        for (bad, msg) in cases {
            let e: Error = crdt::apply_changes(&c, &[good.clone(), bad]).unwrap_err();
            assert_eq!(e.code(), "INVALID_CHANGE");
            assert!(e.to_string().contains(msg), "{e}");
            assert!(rows(&c, "SELECT * FROM songs").is_empty());
            assert!(all(&c).is_empty());
        }
    }

    fn alter_add_and_drop_columns_keep_syncing() {
        let a = peer(SONGS);
        let b = peer(SONGS);
        a.execute_batch("INSERT INTO songs VALUES (1, 'a', 1), (2, 'b', 2)").unwrap();
        let before = all(&a);
        for c in [&a, &b] {
            c.execute_batch("SELECT crsql_begin_alter('songs');
                             ALTER TABLE songs ADD COLUMN genre TEXT DEFAULT 'pop';
                             ALTER TABLE songs DROP COLUMN plays;
                             SELECT crsql_commit_alter('songs');").unwrap();
        }
        // Dropped column clocks are gone, no clocks for default-valued new columns.
        assert!(all(&a).iter().all(|c| &*c.cid == "title"));
        a.execute_batch("UPDATE songs SET genre = 'rock' WHERE id = 1; INSERT INTO songs (id, title) VALUES (3, 'c');").unwrap();
        // Old changes (with a dropped column) fail clearly; the current ones merge.
        assert_eq!(crdt::apply_changes(&b, &before).unwrap_err().code(), "INVALID_CHANGE");
        crdt::apply_changes(&b, &all(&a)).unwrap();
        let q = "SELECT id, title, genre FROM songs ORDER BY id";
        assert_eq!(rows(&b, q), rows(&a, q));
        assert_eq!(rows(&b, q).len(), 3);
        // Rows written while the triggers were off are picked up by commit_alter.
        crdt::begin_alter(&a, "songs").unwrap();
        a.execute_batch("ALTER TABLE songs ADD COLUMN year INTEGER; INSERT INTO songs (id, title, year) VALUES (4, 'd', 1999);
                         UPDATE songs SET year = 2000 WHERE id = 1; DELETE FROM songs WHERE id = 2;").unwrap();
        crdt::commit_alter(&a, "songs").unwrap();
        b.execute_batch("SELECT crsql_begin_alter('songs'); ALTER TABLE songs ADD COLUMN year INTEGER; SELECT crsql_commit_alter('songs');").unwrap();
        assert!(crdt::is_replicated(&a, "songs").unwrap());
        crdt::apply_changes(&b, &all(&a)).unwrap();
        let q = "SELECT id, title, genre, year FROM songs WHERE id != 2 ORDER BY id";
        assert_eq!(rows(&b, q), rows(&a, q));
        a.execute_batch("UPDATE songs SET year = 2001 WHERE id = 4").unwrap();
        assert_eq!(crdt::changes_since(&a, crdt::db_version(&a).unwrap() - 1, None).unwrap().len(), 1);
        // An alter that breaks the rules is rolled back as a whole.
        crdt::begin_alter(&a, "songs").unwrap();
        a.execute_batch("CREATE UNIQUE INDEX st ON songs (title)").unwrap();
        assert_eq!(crdt::commit_alter(&a, "songs").unwrap_err().code(), "CRR_UNSUPPORTED");
        assert!(crdt::is_replicated(&a, "songs").unwrap());
        assert_eq!(rows(&a, "SELECT count(*) FROM sqlite_master WHERE name = 'st'"), vec![vec![Value::Integer(0)]]);
        // Stop replicating.
        crdt::as_table(&a, "songs").unwrap();
        assert!(!crdt::is_replicated(&a, "songs").unwrap());
        assert!(all(&a).is_empty());
    }

    fn metadata_tables_are_recognized() {
        assert!(crdt::is_metadata_table("crsql_site_id"));
        assert!(crdt::is_metadata_table("songs__crsql_clock"));
        assert!(!crdt::is_metadata_table("songs"));
    }
}

/// Two connections on one file: each sees the other's commits when picking its next db_version
/// (cr-sqlite re-reads it when `PRAGMA data_version` moves). Native only: needs a file system.
#[cfg(not(target_family = "wasm"))]
#[test]
fn db_version_follows_other_connections() {
    let path = std::env::temp_dir().join(format!("synqlite-crdt-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut a = Connection::open(&path).unwrap();
    crdt::init(&mut a).unwrap();
    a.execute_batch(SONGS).unwrap();
    let mut b = Connection::open(&path).unwrap();
    crdt::init(&mut b).unwrap();
    assert_eq!(crdt::site_id(&a).unwrap(), crdt::site_id(&b).unwrap());
    a.execute_batch("INSERT INTO songs VALUES (1, 'a', 0)")
        .unwrap();
    b.execute_batch("INSERT INTO songs VALUES (2, 'b', 0)")
        .unwrap();
    a.execute_batch("INSERT INTO songs VALUES (3, 'c', 0)")
        .unwrap();
    let versions: Vec<i64> = all(&a).iter().map(|c| c.db_version).collect();
    assert_eq!(versions, vec![1, 1, 2, 2, 3, 3]);
    assert_eq!(crdt::db_version(&b).unwrap(), 3);
    drop((a, b));
    let _ = std::fs::remove_file(&path);
}

/// Connections moved between threads (as a server's room threads do) find their state on each.
#[cfg(not(target_family = "wasm"))]
#[test]
fn state_lookup_across_threads() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let c = peer(SONGS);
                for i in 0..50i64 {
                    c.execute("INSERT INTO songs VALUES (?1, 'x', ?2)", [i, t])
                        .unwrap();
                }
                (c, crdt::site_id(&peer(SONGS)).unwrap())
            })
        })
        .collect();
    for h in handles {
        let (c, _) = h.join().unwrap();
        // Used on another thread than the one that initialized it.
        assert_eq!(crdt::db_version(&c).unwrap(), 50);
        c.execute("UPDATE songs SET title = 'y' WHERE id = 1", [])
            .unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 51);
    }
}
