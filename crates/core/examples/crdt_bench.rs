//! Native numbers for the CRDT layer (no assertions): run with
//! `cargo run --release -p synqlite-core --example crdt_bench`.
//!
//! 1. 10k-row insert in one transaction: replicated table vs plain table (median of 7); then,
//!    on those 10k rows, one transaction each: update one column of every row, update three
//!    columns of every row, delete every row (one statement per row, as an app writes).
//! 2. Merging 50k rows x 5 columns (250k change rows) into a fresh database: one call, and in
//!    1024-row chunks each in its own transaction.
//! 3. `changes_since` for the last 1% of versions of a 100k-row table (1000 transactions).
//! 4. `begin_alter`/`commit_alter` on a 100k-row table: add a column, then drop one.

use std::time::{Duration, Instant};
use synqlite_core::crdt::{self, Change};
use synqlite_core::rusqlite::{params, Connection};

const SCHEMA: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a INTEGER, b REAL, c TEXT, d TEXT, e BLOB)";

fn open() -> Connection {
    let mut c = Connection::open_in_memory().expect("open");
    crdt::init(&mut c).expect("init");
    c
}

fn insert_rows(c: &Connection, from: i64, n: i64) {
    let mut stmt = c
        .prepare_cached("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .expect("prepare");
    for i in from..from + n {
        stmt.execute(params![
            i,
            i * 7,
            i as f64 / 3.0,
            format!("title {i}"),
            "some artist",
            &[1u8, 2, 3, (i % 256) as u8][..]
        ])
        .expect("insert");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `f` in one transaction.
fn in_tx(c: &Connection, f: impl FnOnce(&Connection)) -> Duration {
    let t0 = Instant::now();
    c.execute_batch("BEGIN").expect("begin");
    f(c);
    c.execute_batch("COMMIT").expect("commit");
    t0.elapsed()
}

/// Runs `sql` once per row id `0..n` with the parameters `params(id)`.
fn per_row<P: synqlite_core::rusqlite::Params>(
    c: &Connection,
    sql: &str,
    n: i64,
    params: impl Fn(i64) -> P,
) {
    let mut stmt = c.prepare_cached(sql).expect("prepare");
    for i in 0..n {
        assert_eq!(stmt.execute(params(i)).expect("write"), 1);
    }
}

fn bench_insert() {
    const N: i64 = 10_000;
    let names = ["insert", "update 1 col", "update 3 cols", "delete"];
    // [workload][plain, crr]
    let mut t: Vec<[Vec<Duration>; 2]> =
        (0..names.len()).map(|_| [Vec::new(), Vec::new()]).collect();
    for _ in 0..7 {
        for (k, replicated) in [false, true].into_iter().enumerate() {
            let c = open();
            c.execute_batch(SCHEMA).expect("schema");
            if replicated {
                crdt::as_crr(&c, "t").expect("as_crr");
            }
            t[0][k].push(in_tx(&c, |c| insert_rows(c, 0, N)));
            t[1][k].push(in_tx(&c, |c| {
                per_row(c, "UPDATE t SET a = ?2 WHERE id = ?1", N, |i| (i, -i))
            }));
            t[2][k].push(in_tx(&c, |c| {
                per_row(
                    c,
                    "UPDATE t SET a = ?2, b = ?3, c = ?4 WHERE id = ?1",
                    N,
                    |i| (i, i + 1, 0.5, "changed"),
                )
            }));
            t[3][k].push(in_tx(&c, |c| {
                per_row(c, "DELETE FROM t WHERE id = ?1", N, |i| [i])
            }));
        }
    }
    for (name, [plain, crr]) in names.iter().zip(t) {
        let (p, r) = (median(plain), median(crr));
        println!(
            "{name} 10k rows, one tx, one statement per row: plain {:.1} ms, crr {:.1} ms, ratio {:.2}x",
            ms(p),
            ms(r),
            r.as_secs_f64() / p.as_secs_f64()
        );
    }
}

fn source_changes(rows: i64) -> Vec<Change> {
    let c = open();
    c.execute_batch(SCHEMA).expect("schema");
    crdt::as_crr(&c, "t").expect("as_crr");
    c.execute_batch("BEGIN").expect("begin");
    insert_rows(&c, 0, rows);
    c.execute_batch("COMMIT").expect("commit");
    let t0 = Instant::now();
    let ch = crdt::changes_since(&c, 0, None).expect("changes");
    println!(
        "changes_since(0) on {rows} rows: {} change rows in {:.1} ms",
        ch.len(),
        ms(t0.elapsed())
    );
    ch
}

fn bench_merge() {
    let ch = source_changes(50_000);
    let mut one = Vec::new();
    let mut chunked = Vec::new();
    for _ in 0..3 {
        let c = open();
        c.execute_batch(SCHEMA).expect("schema");
        crdt::as_crr(&c, "t").expect("as_crr");
        let t0 = Instant::now();
        crdt::apply_changes(&c, &ch).expect("apply");
        one.push(t0.elapsed());

        let c = open();
        c.execute_batch(SCHEMA).expect("schema");
        crdt::as_crr(&c, "t").expect("as_crr");
        let t0 = Instant::now();
        for chunk in ch.chunks(1024) {
            crdt::apply_changes(&c, chunk).expect("apply chunk");
        }
        chunked.push(t0.elapsed());
    }
    let (o, k) = (median(one), median(chunked));
    println!(
        "merge {} change rows into a fresh db: one tx {:.0} ms ({:.0} k rows/s), 1024-row chunks {:.0} ms",
        ch.len(),
        ms(o),
        ch.len() as f64 / o.as_secs_f64() / 1000.0,
        ms(k)
    );
    // Re-applying the same rows (all lose): the cost of idempotence.
    let c = open();
    c.execute_batch(SCHEMA).expect("schema");
    crdt::as_crr(&c, "t").expect("as_crr");
    crdt::apply_changes(&c, &ch).expect("apply");
    let t0 = Instant::now();
    let s = crdt::apply_changes(&c, &ch).expect("apply again");
    println!(
        "re-apply the same {} rows (applied {}): {:.0} ms",
        ch.len(),
        s.applied,
        ms(t0.elapsed())
    );
}

fn big_table() -> Connection {
    let c = open();
    c.execute_batch(SCHEMA).expect("schema");
    crdt::as_crr(&c, "t").expect("as_crr");
    for tx in 0..1000 {
        c.execute_batch("BEGIN").expect("begin");
        insert_rows(&c, tx * 100, 100);
        c.execute_batch("COMMIT").expect("commit");
    }
    c
}

fn bench_changes_since() {
    let c = big_table();
    let v = crdt::db_version(&c).expect("version");
    let since = v - v / 100;
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..11 {
        let t0 = Instant::now();
        n = crdt::changes_since(&c, since, None).expect("changes").len();
        times.push(t0.elapsed());
    }
    println!(
        "changes_since last 1% of {v} versions on 100k rows: {n} change rows, median {:.2} ms",
        ms(median(times))
    );
}

fn bench_alter() {
    let c = big_table();
    let t0 = Instant::now();
    crdt::begin_alter(&c, "t").expect("begin");
    c.execute_batch("ALTER TABLE t ADD COLUMN f INTEGER DEFAULT 0")
        .expect("alter");
    crdt::commit_alter(&c, "t").expect("commit");
    let add = t0.elapsed();
    let t0 = Instant::now();
    crdt::begin_alter(&c, "t").expect("begin");
    c.execute_batch("ALTER TABLE t DROP COLUMN d")
        .expect("alter");
    crdt::commit_alter(&c, "t").expect("commit");
    let drop = t0.elapsed();
    println!(
        "alter on 100k rows: add column {:.0} ms, drop column {:.0} ms",
        ms(add),
        ms(drop)
    );
}

fn main() {
    bench_insert();
    bench_merge();
    bench_changes_since();
    bench_alter();
}
