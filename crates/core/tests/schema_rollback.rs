//! What the CRDT layer derives from the schema (generated SQL, the replicated tables' columns)
//! is cached while the schema stays the same. `PRAGMA schema_version` cannot tell: after a
//! `ROLLBACK` or `ROLLBACK TO` of DDL, other DDL brings the schema back to the same version
//! with another shape. These tests reach that state (asserting the versions match, so they
//! cannot pass for another reason) and check that reads through `changes_since`,
//! `changes_page`, `SELECT ... FROM crsql_changes` and merges through
//! `INSERT INTO crsql_changes` see the new tables; natively and in wasm.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{self, pack, Cursor, SiteFilter};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::{params, Connection};

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c.execute_batch(
        "CREATE TABLE keep (id INTEGER PRIMARY KEY NOT NULL, v TEXT);
         SELECT crsql_as_crr('keep');
         INSERT INTO keep VALUES (1, 'k');",
    )
    .unwrap();
    c
}

fn schema_version(c: &Connection) -> i64 {
    c.query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap()
}

// Two replicated tables of different names and columns whose creation takes the same number
// of schema changes.
const A: &str = "CREATE TABLE a (id INTEGER PRIMARY KEY NOT NULL, x TEXT);
                 SELECT crsql_as_crr('a');
                 INSERT INTO a VALUES (1, 'ax');";
const B: &str = "CREATE TABLE b (id INTEGER PRIMARY KEY NOT NULL, y TEXT);
                 SELECT crsql_as_crr('b');
                 INSERT INTO b VALUES (1, 'by');";

/// `(table, cid, val)` of every change row, via `changes_since`.
fn via_changes_since(c: &Connection) -> Vec<(String, String, Value)> {
    let mut v: Vec<_> = crdt::changes_since(c, 0, None)
        .unwrap()
        .into_iter()
        .map(|ch| (ch.table.to_string(), ch.cid.to_string(), ch.val))
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// The same via `changes_page` (and `count_changes`, which must agree).
fn via_page(c: &Connection) -> Vec<(String, String, Value)> {
    let page = crdt::changes_page(c, Cursor::default(), 1000, SiteFilter::All).unwrap();
    let n = crdt::count_changes(c, Cursor::default(), SiteFilter::All).unwrap();
    assert_eq!(n, page.changes.len() as u64);
    let mut v: Vec<_> = page
        .changes
        .into_iter()
        .map(|ch| (ch.table.to_string(), ch.cid.to_string(), ch.val))
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// The same via `SELECT ... FROM crsql_changes`, once unfiltered and once per table.
fn via_vtab(c: &Connection) -> Vec<(String, String, Value)> {
    let read = |sql: &str, p: &[&dyn synqlite_core::rusqlite::ToSql]| {
        let mut stmt = c.prepare(sql).unwrap();
        let rows: Vec<(String, String, Value)> = stmt
            .query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    let mut all = read(
        "SELECT \"table\", cid, val FROM crsql_changes ORDER BY 1, 2",
        &[],
    );
    let mut per_table = Vec::new();
    for t in ["keep", "a", "b"] {
        per_table.extend(read(
            "SELECT \"table\", cid, val FROM crsql_changes WHERE \"table\" = ? ORDER BY 2",
            &[&t],
        ));
    }
    all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    per_table.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(all, per_table);
    all
}

fn expect(table: &str, cid: &str, val: &str) -> (String, String, Value) {
    (table.into(), cid.into(), Value::Text(val.into()))
}

/// Reads through every path (filling every cache), runs `undo` (which rolls `A` back), creates
/// `B` at the same schema version and checks every path sees `B`, then that a change for `B`
/// merges through `INSERT INTO crsql_changes`.
fn check(c: &Connection, begin: &str, undo: &str) {
    c.execute_batch(begin).unwrap();
    c.execute_batch(A).unwrap();
    let at_a = schema_version(c);
    let with_a = vec![expect("a", "x", "ax"), expect("keep", "v", "k")];
    assert_eq!(via_changes_since(c), with_a);
    assert_eq!(via_page(c), with_a);
    assert_eq!(via_vtab(c), with_a);
    // A merge fills the virtual table's table cache too.
    c.execute(
        "INSERT INTO crsql_changes VALUES ('a', ?, 'x', 'merged', 9, 1, NULL, 1, 0)",
        [pack::pack(&[Value::Integer(2)]).unwrap()],
    )
    .unwrap();
    c.execute_batch(undo).unwrap();
    c.execute_batch(begin).unwrap();
    c.execute_batch(B).unwrap();
    assert_eq!(
        schema_version(c),
        at_a,
        "the trap needs equal schema versions"
    );
    let with_b = vec![expect("b", "y", "by"), expect("keep", "v", "k")];
    assert_eq!(via_changes_since(c), with_b);
    assert_eq!(via_page(c), with_b);
    assert_eq!(via_vtab(c), with_b);
    c.execute(
        "INSERT INTO crsql_changes VALUES ('b', ?, 'y', 'merged', 9, 1, NULL, 1, 0)",
        [pack::pack(&[Value::Integer(2)]).unwrap()],
    )
    .unwrap();
    let y: String = c
        .query_row("SELECT y FROM b WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(y, "merged");
    // A change for the rolled-back table is refused.
    let err = c
        .execute(
            "INSERT INTO crsql_changes VALUES ('a', ?, 'x', 'merged', 9, 1, NULL, 1, 0)",
            [pack::pack(&[Value::Integer(3)]).unwrap()],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("table a is not a replicated table here"),
        "{err}"
    );
    c.execute_batch("COMMIT").unwrap();
}

both! {
    fn rollback_of_ddl_then_other_ddl_at_the_same_schema_version() {
        check(&open(), "BEGIN", "ROLLBACK");
    }

    fn rollback_to_of_ddl_then_other_ddl_at_the_same_schema_version() {
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        check(&c, "SAVEPOINT s", "ROLLBACK TO s; RELEASE s");
    }

    fn rollback_to_without_release() {
        let c = open();
        c.execute_batch("BEGIN; SAVEPOINT s").unwrap();
        c.execute_batch(A).unwrap();
        let at_a = schema_version(&c);
        assert_eq!(via_vtab(&c), vec![expect("a", "x", "ax"), expect("keep", "v", "k")]);
        assert_eq!(via_changes_since(&c).len(), 2);
        c.execute_batch("ROLLBACK TO s").unwrap();
        c.execute_batch(B).unwrap();
        assert_eq!(schema_version(&c), at_a);
        let with_b = vec![expect("b", "y", "by"), expect("keep", "v", "k")];
        assert_eq!(via_vtab(&c), with_b);
        assert_eq!(via_changes_since(&c), with_b);
        c.execute_batch("COMMIT").unwrap();
    }

    fn statement_cache_flushed_between() {
        // The cached statement that watches the schema is gone (a statement cache evicted or
        // flushed it); a fresh copy must not vouch for the old schema.
        let c = open();
        c.execute_batch("BEGIN").unwrap();
        c.execute_batch(A).unwrap();
        let at_a = schema_version(&c);
        assert_eq!(via_changes_since(&c).len(), 2);
        c.execute_batch("ROLLBACK").unwrap();
        c.flush_prepared_statement_cache();
        c.execute_batch("BEGIN").unwrap();
        c.execute_batch(B).unwrap();
        assert_eq!(schema_version(&c), at_a);
        assert_eq!(via_changes_since(&c), vec![expect("b", "y", "by"), expect("keep", "v", "k")]);
        c.execute_batch("COMMIT").unwrap();
    }

    fn cached_reads_stay_right_across_plain_writes_and_commits() {
        let c = open();
        let mut want = vec![expect("keep", "v", "k")];
        for i in 2..6 {
            assert_eq!(via_changes_since(&c), want);
            assert_eq!(via_vtab(&c), want);
            c.execute("INSERT INTO keep VALUES (?1, 'k')", params![i]).unwrap();
            want.push(expect("keep", "v", "k"));
        }
        c.execute_batch("ALTER TABLE keep ADD COLUMN w TEXT DEFAULT 'd'; SELECT crsql_begin_alter('keep'); SELECT crsql_commit_alter('keep');").unwrap();
        c.execute("UPDATE keep SET w = 'w' WHERE id = 1", []).unwrap();
        want.push(expect("keep", "w", "w"));
        want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(via_changes_since(&c), want);
        assert_eq!(via_vtab(&c), want);
    }
}

/// Schema changes by another connection (a file shared by two connections).
#[cfg(not(target_family = "wasm"))]
#[test]
fn ddl_by_another_connection() {
    let dir = std::env::temp_dir().join(format!("synqlite-schema-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut one = Connection::open(&path).unwrap();
    crdt::init(&mut one).unwrap();
    one.execute_batch(
        "CREATE TABLE keep (id INTEGER PRIMARY KEY NOT NULL, v TEXT);
         SELECT crsql_as_crr('keep');
         INSERT INTO keep VALUES (1, 'k');",
    )
    .unwrap();
    assert_eq!(via_changes_since(&one), vec![expect("keep", "v", "k")]);
    assert_eq!(via_vtab(&one), vec![expect("keep", "v", "k")]);
    let mut two = Connection::open(&path).unwrap();
    crdt::init(&mut two).unwrap();
    two.execute_batch(B).unwrap();
    drop(two);
    let with_b = vec![expect("b", "y", "by"), expect("keep", "v", "k")];
    assert_eq!(via_changes_since(&one), with_b);
    assert_eq!(via_vtab(&one), with_b);
    drop(one);
    std::fs::remove_dir_all(&dir).unwrap();
}
