//! Properties of `crsql_changes` on random histories, natively and in wasm (dedicated worker):
//!
//! - reading: on every replica, `SELECT * FROM crsql_changes WHERE db_version > ? [AND site_id
//!   IS NOT ?]` returns exactly what `changes_since` returns, in the same order;
//! - writing: `INSERT INTO crsql_changes` of a change set, in one transaction or in several,
//!   ends with the same tables and clocks as `apply_changes` of the same set.
//!
//! Histories: 3 replicas make random inserts, upserts, updates, deletes, re-inserts and key
//! moves on a single-key and a composite-key table (values of every type) and pull changes from
//! each other at random. Columns are untyped, so a stored value is the value merged.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use synqlite_core::crdt::{self, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::{params, Connection, ToSql};

const SCHEMA: &str = "
    CREATE TABLE items (id INTEGER PRIMARY KEY NOT NULL, a, b DEFAULT 'x');
    SELECT crsql_as_crr('items');
    CREATE TABLE pairs (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
    SELECT crsql_as_crr('pairs');";

#[cfg(not(target_family = "wasm"))]
const CASES: u32 = 250;
#[cfg(target_family = "wasm")]
const CASES: u32 = 60;

const REPLICAS: usize = 3;

#[derive(Debug, Clone)]
enum Stmt {
    Upsert(i64, Value, Value),
    Update(i64, bool, Value),
    Delete(i64),
    MoveKey(i64, i64),
    PairPut(&'static str, i64, Value),
    PairDelete(&'static str, i64),
}

#[derive(Debug, Clone)]
enum Op {
    /// Statements run by one replica in one transaction.
    Write(Index, Vec<Stmt>),
    /// One replica pulls everything it lacks from another.
    Pull(Index, Index),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-2i64..3).prop_map(Value::Integer),
        prop::sample::select(vec![-1.5, 0.0, 1.0, 2.5]).prop_map(Value::Real),
        prop::sample::select(vec!["", "a", "1"]).prop_map(|s| Value::Text(s.into())),
        prop::sample::select(vec![vec![], vec![1u8]]).prop_map(Value::Blob),
        Just(Value::Null),
    ]
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let id = 0i64..4;
    let k1 = prop::sample::select(vec!["x", "y"]);
    prop_oneof![
        3 => (id.clone(), value(), value()).prop_map(|(i, a, b)| Stmt::Upsert(i, a, b)),
        3 => (id.clone(), any::<bool>(), value()).prop_map(|(i, c, v)| Stmt::Update(i, c, v)),
        2 => id.clone().prop_map(Stmt::Delete),
        1 => (id.clone(), id).prop_map(|(f, t)| Stmt::MoveKey(f, t)),
        2 => (k1.clone(), 0i64..2, value()).prop_map(|(a, b, v)| Stmt::PairPut(a, b, v)),
        1 => (k1, 0i64..2).prop_map(|(a, b)| Stmt::PairDelete(a, b)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<Index>(), prop::collection::vec(stmt(), 1..4)).prop_map(|(r, s)| Op::Write(r, s)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(f, t)| Op::Pull(f, t)),
    ]
}

fn write(c: &Connection, s: &Stmt) {
    let exec = |sql: &str, p: &[&dyn ToSql]| c.prepare_cached(sql).and_then(|mut st| st.execute(p));
    // Constraint failures (a key move onto an existing row) are part of the game: ignore them.
    let _ = match s {
        Stmt::Upsert(i, a, b) => exec("INSERT INTO items (id, a, b) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET a = excluded.a, b = excluded.b", params![i, a, b]),
        Stmt::Update(i, col, v) => exec(if *col { "UPDATE items SET a = ?2 WHERE id = ?1" } else { "UPDATE items SET b = ?2 WHERE id = ?1" }, params![i, v]),
        Stmt::Delete(i) => exec("DELETE FROM items WHERE id = ?1", params![i]),
        Stmt::MoveKey(f, t) => exec("UPDATE items SET id = ?2 WHERE id = ?1", params![f, t]),
        Stmt::PairPut(k1, k2, v) => exec("INSERT INTO pairs (k1, k2, v) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET v = excluded.v", params![k1, k2, v]),
        Stmt::PairDelete(k1, k2) => exec("DELETE FROM pairs WHERE k1 = ?1 AND k2 = ?2", params![k1, k2]),
    };
}

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c
}

/// Runs `ops` on fresh replicas.
fn history(ops: &[Op]) -> Vec<Connection> {
    let r: Vec<Connection> = (0..REPLICAS).map(|_| open()).collect();
    for op in ops {
        match op {
            Op::Write(i, stmts) => {
                let c = &r[i.index(REPLICAS)];
                c.execute_batch("BEGIN").unwrap();
                stmts.iter().for_each(|s| write(c, s));
                c.execute_batch("COMMIT").unwrap();
            }
            Op::Pull(f, t) => {
                let (f, t) = (f.index(REPLICAS), t.index(REPLICAS));
                if f != t {
                    let ch = crdt::changes_since(&r[f], 0, None).unwrap();
                    crdt::apply_changes(&r[t], &ch).unwrap();
                }
            }
        }
    }
    r
}

fn vtab_rows(c: &Connection, sql: &str, p: &[&dyn ToSql]) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map(p, |r| (0..9).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn as_rows(ch: &[Change]) -> Vec<Vec<Value>> {
    ch.iter()
        .map(|c| {
            vec![
                Value::Text(c.table.to_string()),
                Value::Blob(c.pk.clone()),
                Value::Text(c.cid.to_string()),
                c.val.clone(),
                Value::Integer(c.col_version),
                Value::Integer(c.db_version),
                Value::Blob(c.site_id.to_vec()),
                Value::Integer(c.cl),
                Value::Integer(c.seq),
            ]
        })
        .collect()
}

fn reads_equal(ops: &[Op], since: &[Index]) -> Result<(), TestCaseError> {
    let r = history(ops);
    let sites: Vec<Vec<u8>> = r
        .iter()
        .map(|c| crdt::site_id(c).unwrap().to_vec())
        .collect();
    for (i, c) in r.iter().enumerate() {
        let top = crdt::db_version(c).unwrap();
        let mut points: Vec<i64> = since
            .iter()
            .map(|x| x.index(top as usize + 2) as i64)
            .collect();
        points.push(0);
        for &s in &points {
            let want = as_rows(&crdt::changes_since(c, s, None).unwrap());
            prop_assert_eq!(
                &vtab_rows(c, "SELECT * FROM crsql_changes WHERE db_version > ?", &[&s]),
                &want
            );
            prop_assert_eq!(
                &vtab_rows(
                    c,
                    "SELECT * FROM crsql_changes WHERE db_version > ? ORDER BY db_version, seq",
                    &[&s]
                ),
                &want
            );
            for site in sites.iter().chain([&vec![0u8; 16]]) {
                let want = as_rows(&crdt::changes_since(c, s, Some(site)).unwrap());
                let got = vtab_rows(
                    c,
                    "SELECT * FROM crsql_changes WHERE db_version > ? AND site_id IS NOT ?",
                    &[&s, site],
                );
                prop_assert_eq!(&got, &want, "replica {} since {} without {:?}", i, s, site);
            }
        }
    }
    Ok(())
}

/// The state a merge leaves: table rows, and clocks without db_version and seq (which depend
/// on how changes were grouped into transactions).
fn state(c: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id, a, b FROM items ORDER BY id",
        "SELECT k1, k2, v FROM pairs ORDER BY k1, k2",
        "SELECT \"table\", pk, cid, val, col_version, site_id, cl, 0 FROM crsql_changes ORDER BY 1, 2, 3",
    ] {
        let mut stmt = c.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
            .unwrap();
        out.extend(rows.map(|r| format!("{:?}", r.unwrap())));
    }
    out
}

fn inserts_equal(ops: &[Op], target_ops: &[Op], cuts: &[Index]) -> Result<(), TestCaseError> {
    let sources = history(ops);
    let mut incoming: Vec<Change> = Vec::new();
    for s in &sources {
        incoming.extend(crdt::changes_since(s, 0, None).unwrap());
    }
    // Three copies (same site id) of a target with a history of its own.
    let target = history(target_ops).swap_remove(0);
    let copy = || {
        let mut c = Connection::open_in_memory().unwrap();
        synqlite_core::rusqlite::backup::Backup::new(&target, &mut c)
            .unwrap()
            .run_to_completion(1000, std::time::Duration::ZERO, None)
            .unwrap();
        crdt::init(&mut c).unwrap();
        c
    };
    let (a, b, d) = (&copy(), &copy(), &copy());
    crdt::apply_changes(a, &incoming).unwrap();
    let rows = as_rows(&incoming);
    let insert = |c: &Connection, rows: &[Vec<Value>]| {
        let mut stmt = c
            .prepare_cached("INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .unwrap();
        for r in rows {
            let p: Vec<&dyn ToSql> = r.iter().map(|v| v as &dyn ToSql).collect();
            stmt.execute(&p[..]).unwrap();
        }
    };
    // One transaction.
    b.execute_batch("BEGIN").unwrap();
    insert(b, &rows);
    b.execute_batch("COMMIT").unwrap();
    // Several transactions, cut at random places.
    let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(rows.len() + 1)).collect();
    ends.push(rows.len());
    ends.sort_unstable();
    let mut start = 0;
    for end in ends {
        d.execute_batch("BEGIN").unwrap();
        insert(d, &rows[start..end]);
        d.execute_batch("COMMIT").unwrap();
        start = end;
    }
    let want = state(a);
    prop_assert_eq!(&state(b), &want);
    prop_assert_eq!(&state(d), &want);
    // Every merged clock is visible to changes_since after the version the target had.
    prop_assert_eq!(
        crdt::changes_since(b, 0, None).unwrap().len(),
        crdt::changes_since(a, 0, None).unwrap().len()
    );
    Ok(())
}

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn select_equals_changes_since() {
    let strategy = (
        prop::collection::vec(op(), 1..30),
        prop::collection::vec(any::<Index>(), 0..4),
    );
    TestRunner::new(config())
        .run(&strategy, |(ops, since)| reads_equal(&ops, &since))
        .unwrap();
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn inserts_equal_apply_changes() {
    let strategy = (
        prop::collection::vec(op(), 1..30),
        prop::collection::vec(op(), 0..6),
        prop::collection::vec(any::<Index>(), 0..4),
    );
    TestRunner::new(config())
        .run(&strategy, |(ops, target, cuts)| {
            inserts_equal(&ops, &target, &cuts)
        })
        .unwrap();
}
