//! Schema changes of replicated tables as cr-sqlite 0.16.3 makes them (`alter.rs`,
//! `backfill.rs`, `crsql_commit_alter`): a reordered composite primary key keeps the clocks,
//! `crsql_commit_alter` without `crsql_begin_alter` fails, and the backfill after an alter gives
//! a clock to every column that lacks one. Natively and in wasm (dedicated worker).

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

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

const PAIRS: &str = "CREATE TABLE pairs (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, w DEFAULT 0,
                       PRIMARY KEY (k1, k2));
                     SELECT crsql_as_crr('pairs');";

/// Swaps the primary-key columns of `pairs` (SQLite cannot alter a primary key: copy, drop,
/// rename) between `crsql_begin_alter` and `crsql_commit_alter`.
const SWAP_PK: &str = "SELECT crsql_begin_alter('pairs');
    CREATE TABLE pairs_new (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, w DEFAULT 0, PRIMARY KEY (k2, k1));
    INSERT INTO pairs_new SELECT k1, k2, v, w FROM pairs;
    DROP TABLE pairs;
    ALTER TABLE pairs_new RENAME TO pairs;
    SELECT crsql_commit_alter('pairs');";

const SONGS: &str = "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title, plays DEFAULT 0);
                     SELECT crsql_as_crr('songs');";

macro_rules! both {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {$(
        $(#[$meta])*
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

/// A change row with its key unpacked: (key values, cid, val, col_version, db_version, site
/// id, cl).
type Keyed = (Vec<Value>, String, Value, i64, i64, Vec<u8>, i64);

/// Everything of a change row but its packed key, with the key's values in `order`.
fn keyed(ch: &[Change], order: [usize; 2]) -> Vec<Keyed> {
    let mut v: Vec<_> = ch
        .iter()
        .map(|c| {
            let pk = pack::unpack(&c.pk).unwrap();
            (
                order.iter().map(|&i| pk[i].clone()).collect::<Vec<_>>(),
                c.cid.to_string(),
                c.val.clone(),
                c.col_version,
                c.db_version,
                c.site_id.to_vec(),
                c.cl,
            )
        })
        .collect();
    v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    v
}

both! {
    /// cr-sqlite compares the primary-key columns as a set: a new order is not a new identity.
    fn reordered_primary_key_keeps_the_clocks() {
        let a = peer(PAIRS);
        a.execute_batch("INSERT INTO pairs (k1, k2, v) VALUES ('x', 1, 'a'), ('y', 2, 'b'), ('z', 3, 'c');
                         UPDATE pairs SET v = 'a2' WHERE k1 = 'x';
                         DELETE FROM pairs WHERE k1 = 'z';").unwrap();
        let before = all(&a);
        let version = crdt::db_version(&a).unwrap();
        a.execute_batch(SWAP_PK).unwrap();
        assert!(crdt::is_replicated(&a, "pairs").unwrap());
        let after = all(&a);
        // Same clocks (versions, db_versions, tombstone), keys packed in the new order.
        assert_eq!(keyed(&after, [0, 1]), keyed(&before, [1, 0]));
        assert_eq!(crdt::db_version(&a).unwrap(), version);
        for c in &after {
            let pk = pack::unpack(&c.pk).unwrap();
            assert!(matches!(pk[0], Value::Integer(_)) && matches!(pk[1], Value::Text(_)), "{pk:?}");
        }
        // Local writes go on from the kept versions.
        a.execute_batch("UPDATE pairs SET v = 'a3' WHERE k1 = 'x'; INSERT INTO pairs (k1, k2, v) VALUES ('z', 3, 'c2');").unwrap();
        let v = all(&a).into_iter().find(|c| &*c.cid == "v" && c.val == t("a3")).unwrap();
        assert_eq!(v.col_version, 3);
        let z = all(&a).into_iter().find(|c| c.val == t("c2")).unwrap();
        assert_eq!(z.cl, 3);
        // Peers that made the same alter, or that started with the new order, converge.
        let b = peer(PAIRS);
        b.execute_batch(SWAP_PK).unwrap();
        let c = peer("CREATE TABLE pairs (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, w DEFAULT 0, PRIMARY KEY (k2, k1));
                      SELECT crsql_as_crr('pairs');");
        let q = "SELECT k1, k2, v, w FROM pairs ORDER BY k1";
        for p in [&b, &c] {
            crdt::apply_changes(p, &all(&a)).unwrap();
            assert_eq!(rows(p, q), rows(&a, q));
            assert_eq!(keyed(&all(p), [0, 1]).into_iter().map(|k| (k.0, k.1, k.3, k.6)).collect::<Vec<_>>(),
                       keyed(&all(&a), [0, 1]).into_iter().map(|k| (k.0, k.1, k.3, k.6)).collect::<Vec<_>>());
        }
        // A changed set of key columns is a new identity: the clocks start over.
        a.execute_batch("SELECT crsql_begin_alter('pairs');
            CREATE TABLE pairs_new (k1 TEXT NOT NULL, k2 INTEGER NOT NULL DEFAULT 0, v, w DEFAULT 0, PRIMARY KEY (k1));
            INSERT INTO pairs_new SELECT k1, k2, v, w FROM pairs;
            DROP TABLE pairs;
            ALTER TABLE pairs_new RENAME TO pairs;
            SELECT crsql_commit_alter('pairs');").unwrap();
        let fresh = all(&a);
        assert_eq!(fresh.len(), 3 * 3);
        assert!(fresh.iter().all(|c| c.col_version == 1 && c.cl == 1 && pack::unpack(&c.pk).unwrap().len() == 1));
    }

    /// `crsql_commit_alter` releases the savepoint `crsql_begin_alter` opened; without it,
    /// cr-sqlite fails and changes nothing.
    fn commit_alter_needs_begin_alter() {
        let a = peer(SONGS);
        a.execute_batch("INSERT INTO songs VALUES (1, 'a', 0)").unwrap();
        let before = all(&a);
        let e = crdt::commit_alter(&a, "songs").unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.to_string().contains("crsql_begin_alter"), "{e}");
        let e = a.execute_batch("SELECT crsql_commit_alter('songs')").unwrap_err();
        assert!(e.to_string().contains("crsql_begin_alter"), "{e}");
        // Inside a transaction too; the transaction stays usable.
        a.execute_batch("BEGIN; UPDATE songs SET title = 'b';").unwrap();
        assert!(crdt::commit_alter(&a, "songs").is_err());
        a.execute_batch("COMMIT").unwrap();
        assert!(crdt::is_replicated(&a, "songs").unwrap());
        assert_eq!(all(&a).len(), before.len());
        assert_eq!(rows(&a, "SELECT title FROM songs"), vec![vec![t("b")]]);
        // The pair still works; a second commit fails.
        a.execute_batch("SELECT crsql_begin_alter('songs'); ALTER TABLE songs ADD COLUMN year;
                         SELECT crsql_commit_alter('songs');").unwrap();
        assert!(crdt::commit_alter(&a, "songs").is_err());
        a.execute_batch("UPDATE songs SET year = 1999").unwrap();
        assert!(all(&a).iter().any(|c| &*c.cid == "year"));
    }

    /// The backfill after an alter gives a clock to every column of every row that lacks one
    /// and does not hold the column's default, not only to added columns (cr-sqlite
    /// `backfill_missing_columns`).
    fn backfill_after_alter_covers_every_column() {
        let a = peer(SONGS);
        // A merged row has clocks only for the merged columns.
        crdt::apply_changes(&a, &[Change {
            table: "songs".into(),
            pk: pack::pack(&[Value::Integer(1)]).unwrap(),
            cid: "title".into(),
            val: t("a"),
            col_version: 1,
            db_version: 1,
            site_id: vec![7; 16].into(),
            cl: 1,
            seq: 0,
        }]).unwrap();
        a.execute_batch("INSERT INTO songs VALUES (2, 'b', 0)").unwrap();
        let version = crdt::db_version(&a).unwrap();
        crdt::begin_alter(&a, "songs").unwrap();
        a.execute_batch("UPDATE songs SET plays = 5 WHERE id = 1;
                         ALTER TABLE songs ADD COLUMN genre TEXT DEFAULT 'pop';
                         ALTER TABLE songs ADD COLUMN year;
                         UPDATE songs SET year = 1999 WHERE id = 2;").unwrap();
        crdt::commit_alter(&a, "songs").unwrap();
        let clocks: Vec<(i64, String, i64, i64)> = {
            let mut v: Vec<_> = all(&a)
                .iter()
                .map(|c| {
                    let id = match pack::unpack(&c.pk).unwrap()[0] { Value::Integer(i) => i, _ => unreachable!() };
                    (id, c.cid.to_string(), c.col_version, c.db_version)
                })
                .collect();
            v.sort();
            v
        };
        let me = version;
        assert_eq!(clocks, vec![
            (1, "plays".into(), 1, me), // backfilled: not the default any more
            (1, "title".into(), 1, 1),
            (2, "plays".into(), 1, me),
            (2, "title".into(), 1, me),
            (2, "year".into(), 1, me), // added, not NULL
        ]);
        let plays = all(&a).into_iter().find(|c| &*c.cid == "plays" && c.val == Value::Integer(5)).unwrap();
        assert_eq!(plays.site_id[..], crdt::site_id(&a).unwrap()[..]);
    }

    /// Compaction after an alter keeps, of a row that is gone, only its tombstone (cr-sqlite
    /// `compact_post_alter`): clocks written by hand or left by the triggers being off go.
    fn compaction_keeps_only_tombstones_of_gone_rows() {
        let a = peer(SONGS);
        a.execute_batch("INSERT INTO songs VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0);
                         DELETE FROM songs WHERE id = 3;
                         INSERT INTO songs__crsql_clock (key, col_name, col_version, db_version, site_id, seq)
                           VALUES (crsql_pack_columns(3), 'title', 1, 1, 0, 9),
                                  (crsql_pack_columns(4), '-1', 3, 1, 0, 9),
                                  (crsql_pack_columns(4), 'title', 1, 1, 0, 9);").unwrap();
        crdt::begin_alter(&a, "songs").unwrap();
        a.execute_batch("DELETE FROM songs WHERE id = 2").unwrap();
        crdt::commit_alter(&a, "songs").unwrap();
        let mut left: Vec<(Vec<Value>, String, i64)> = all(&a)
            .iter()
            .map(|c| (pack::unpack(&c.pk).unwrap(), c.cid.to_string(), c.cl))
            .collect();
        left.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        assert_eq!(left, vec![
            (vec![Value::Integer(1)], "plays".into(), 1),
            (vec![Value::Integer(1)], "title".into(), 1),
            (vec![Value::Integer(3)], "-1".into(), 2),
        ]);
    }
}
