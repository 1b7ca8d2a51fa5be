//! Merge results never depend on batching (cr-sqlite merges change rows one at a time; synqlite
//! groups a batch by row and merges in memory). Property: from one random starting state (merged
//! changes and local writes), a random list of change rows — every cid, mixed value types on
//! columns of every affinity, random versions, causal lengths and sites — applied in one
//! `apply_changes` call, in random chunks inside one transaction, and one by one in autocommit
//! gives identical tables (with SQL types), identical clocks (all but `db_version` and `seq`,
//! which are renumbered by design) and the same count of applied changes.
//! Natively and in wasm (dedicated worker).

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use synqlite_core::crdt::{self, pack, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;

const SCHEMA: &str = "
    CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, s TEXT, n NUMERIC, r REAL, i INTEGER, a,
                    d TEXT DEFAULT 'x');
    SELECT crsql_as_crr('t');
    CREATE TABLE p (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
    SELECT crsql_as_crr('p');
    CREATE TABLE o (id INTEGER PRIMARY KEY NOT NULL);
    SELECT crsql_as_crr('o');";

const TABLES: [(&str, &[&str]); 3] = [
    ("t", &["s", "n", "r", "i", "a", "d"]),
    ("p", &["v"]),
    ("o", &[]),
];

/// Local writes the starting state may hold.
const LOCAL: [&str; 8] = [
    "INSERT OR REPLACE INTO t (id, s, n, r, i, a) VALUES (1, 10, '5', 3, '7', 1.5)",
    "INSERT OR IGNORE INTO t (id, s) VALUES (2, 'b')",
    "UPDATE t SET s = '9', n = 4.5 WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "INSERT OR REPLACE INTO p VALUES ('x', 0, 'v')",
    "DELETE FROM p WHERE k1 = 'x'",
    "INSERT OR IGNORE INTO o VALUES (1)",
    "DELETE FROM o WHERE id = 1",
];

#[cfg(not(target_family = "wasm"))]
const CASES: u32 = 1000;
#[cfg(target_family = "wasm")]
const CASES: u32 = 200;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-2i64..12).prop_map(Value::Integer),
        prop::sample::select(vec![-1.5, 0.0, 1.0, 2.5, 3.0, 10.0]).prop_map(Value::Real),
        prop::sample::select(vec!["", "a", "1", "2.5", " 3", "10", "9", "x"])
            .prop_map(|s| Value::Text(s.into())),
        prop::sample::select(vec![vec![], vec![0u8], vec![0x31u8]]).prop_map(Value::Blob),
        Just(Value::Null),
    ]
}

/// A random change row on rows with ids `0..ids`.
fn change(ids: i64) -> impl Strategy<Value = Change> {
    (
        0usize..TABLES.len(),
        (0i64..ids, any::<bool>()),
        any::<Index>(),
        value(),
        (0i64..4, 1i64..6, 1i64..10, 0i64..3),
        1u8..4,
    )
        .prop_map(move |(tbl, (id, k1), col, val, (cv, cl, dbv, seq), site)| {
            let (table, cols) = TABLES[tbl];
            let pk = if table == "p" {
                vec![
                    Value::Text(if k1 { "x" } else { "y" }.into()),
                    Value::Integer(if ids <= 3 { id % 2 } else { id }),
                ]
            } else {
                vec![Value::Integer(id)]
            };
            // One pick in three is the sentinel (on `o` every pick is).
            let pick = col.index(cols.len() + cols.len() / 2 + 1);
            let (cid, val) = match cols.get(pick) {
                Some(c) => (*c, val),
                None => ("-1", Value::Null),
            };
            Change {
                table: table.into(),
                pk: pack::pack(&pk).unwrap(),
                cid: cid.into(),
                val,
                col_version: cv,
                db_version: dbv,
                site_id: vec![site; 16].into(),
                cl,
                seq,
            }
        })
}

fn template() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crdt::init(&mut conn).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn
}

fn copy(template: &Connection) -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    synqlite_core::rusqlite::backup::Backup::new(template, &mut conn)
        .unwrap()
        .run_to_completion(1000, std::time::Duration::ZERO, None)
        .unwrap();
    crdt::init(&mut conn).unwrap();
    conn
}

fn query(c: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Rows and clocks (by site id blob, without db_version and seq) of every table.
fn state(c: &Connection) -> Vec<Vec<Vec<Value>>> {
    let mut out = Vec::new();
    for (table, _) in TABLES {
        let order = if table == "p" { "k1, k2" } else { "id" };
        out.push(query(c, &format!("SELECT * FROM {table} ORDER BY {order}")));
        out.push(query(
            c,
            &format!(
                "SELECT c.key, c.col_name, c.col_version, s.site_id FROM {table}__crsql_clock AS c
                 LEFT JOIN crsql_site_id AS s ON s.ordinal = c.site_id ORDER BY c.key, c.col_name"
            ),
        ));
    }
    out
}

struct Case {
    merge_equal: bool,
    before: Vec<Change>,
    local: Vec<Index>,
    changes: Vec<Change>,
    cuts: Vec<Index>,
}

/// A case on rows with ids `0..ids`, with up to `before` changes merged first and `changes`
/// change rows to merge.
fn case(
    ids: i64,
    before: std::ops::Range<usize>,
    changes: std::ops::Range<usize>,
) -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::vec(change(ids), before),
        prop::collection::vec(any::<Index>(), 0..4),
        prop::collection::vec(change(ids), changes),
        prop::collection::vec(any::<Index>(), 0..6),
    )
        .prop_map(|(merge_equal, before, local, changes, cuts)| Case {
            merge_equal,
            before,
            local,
            changes,
            cuts,
        })
}

fn run(template: &Connection, case: &Case) -> Result<(), TestCaseError> {
    let start = copy(template);
    if case.merge_equal {
        crdt::set_merge_equal_values(&start, true).unwrap();
    }
    for ch in &case.before {
        crdt::apply_changes(&start, std::slice::from_ref(ch)).unwrap();
    }
    for l in &case.local {
        start.execute_batch(LOCAL[l.index(LOCAL.len())]).unwrap();
    }
    let (one, chunked, single) = (copy(&start), copy(&start), copy(&start));
    let applied_one = crdt::apply_changes(&one, &case.changes).unwrap().applied;

    let mut cuts: Vec<usize> = case
        .cuts
        .iter()
        .map(|c| c.index(case.changes.len() + 1))
        .collect();
    cuts.extend([0, case.changes.len()]);
    cuts.sort_unstable();
    chunked.execute_batch("BEGIN").unwrap();
    let mut applied_chunked = 0;
    for w in cuts.windows(2) {
        applied_chunked += crdt::apply_changes(&chunked, &case.changes[w[0]..w[1]])
            .unwrap()
            .applied;
    }
    chunked.execute_batch("COMMIT").unwrap();

    let mut applied_single = 0;
    for ch in &case.changes {
        applied_single += crdt::apply_changes(&single, std::slice::from_ref(ch))
            .unwrap()
            .applied;
    }

    let want = state(&single);
    prop_assert_eq!(&state(&one), &want, "one batch differs from one by one");
    prop_assert_eq!(
        &state(&chunked),
        &want,
        "chunks {:?} differ from one by one",
        cuts
    );
    prop_assert_eq!(applied_one, applied_single);
    prop_assert_eq!(applied_chunked, applied_single);
    Ok(())
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn merge_results_do_not_depend_on_batching() {
    let template = template();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(3, 0..12, 1..30), |c| run(&template, &c))
        .unwrap();
}

/// The same on many rows: a call merges more rows than the merge reads or writes in one
/// statement (32 rows read ahead, 32 row upserts, 64 clocks), so every batch boundary and
/// every flush before a tie-break's read of a row is crossed.
#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn merge_results_do_not_depend_on_batching_many_rows() {
    let template = template();
    let mut runner = TestRunner::new(Config {
        cases: CASES / 25,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(120, 0..300, 100..600), |c| run(&template, &c))
        .unwrap();
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |ch: &[Change]| {
            ch.iter()
                .map(|c| {
                    format!(
                        "{} {:?} {} {:?} cv{} cl{} site{}",
                        c.table,
                        pack::unpack(&c.pk).unwrap(),
                        c.cid,
                        c.val,
                        c.col_version,
                        c.cl,
                        c.site_id[0]
                    )
                })
                .collect::<Vec<_>>()
        };
        f.debug_struct("Case")
            .field("merge_equal", &self.merge_equal)
            .field("before", &show(&self.before))
            .field(
                "local",
                &self
                    .local
                    .iter()
                    .map(|l| LOCAL[l.index(LOCAL.len())])
                    .collect::<Vec<_>>(),
            )
            .field("changes", &show(&self.changes))
            .field("cuts", &self.cuts)
            .finish()
    }
}
