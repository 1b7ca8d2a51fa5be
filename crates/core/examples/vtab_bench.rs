//! Native numbers for merging through `INSERT INTO crsql_changes` against
//! [`crdt::apply_changes`] (no assertions): run with
//! `cargo run --profile server -p synqlite-core --example vtab_bench`.
//!
//! Both merge the same 250k change rows (50k rows x 5 columns) into a fresh database in one
//! transaction (then again into a database that has them all, where every row loses and
//! nothing is written: the per-row cost outside the writes): `apply_changes` in one call, the
//! virtual table with one prepared
//! `INSERT INTO crsql_changes VALUES (?, ...)` executed per change row (as the browser bench's
//! `INSERT INTO crsql_changes` workload does). Medians of 5 of the time the thread ran on a CPU
//! (Linux `/proc/thread-self/schedstat`; wall time elsewhere), which a busy machine disturbs
//! less than wall time; the databases merged into are checked to hold the same rows and
//! clocks.

use std::time::{Duration, Instant};
use synqlite_core::crdt::{self, Change};
use synqlite_core::rusqlite::{params, Connection};

const SCHEMA: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a INTEGER, b REAL, c TEXT, d TEXT, e BLOB)";
const ROWS: i64 = 50_000;
const RUNS: usize = 5;

fn open() -> Connection {
    let mut c = Connection::open_in_memory().expect("open");
    crdt::init(&mut c).expect("init");
    c.execute_batch(SCHEMA).expect("schema");
    crdt::as_crr(&c, "t").expect("as_crr");
    c
}

fn source_changes() -> Vec<Change> {
    let c = open();
    c.execute_batch("BEGIN").expect("begin");
    {
        let mut stmt = c
            .prepare_cached("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .expect("prepare");
        for i in 0..ROWS {
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
    c.execute_batch("COMMIT").expect("commit");
    crdt::changes_since(&c, 0, None).expect("changes")
}

/// A clock for the thread's CPU time where there is one, else wall time.
struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed(),
        }
    }
}

fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn via_apply(c: &Connection, ch: &[Change]) -> Duration {
    let t0 = Clock::start();
    c.execute_batch("BEGIN").expect("begin");
    crdt::apply_changes(c, ch).expect("apply");
    c.execute_batch("COMMIT").expect("commit");
    t0.elapsed()
}

fn via_vtab(c: &Connection, ch: &[Change]) -> Duration {
    let t0 = Clock::start();
    c.execute_batch("BEGIN").expect("begin");
    {
        let mut stmt = c
            .prepare(
                "INSERT INTO crsql_changes (\"table\", pk, cid, val, col_version, db_version, \
                 site_id, cl, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .expect("prepare");
        for x in ch {
            stmt.execute(params![
                &*x.table,
                &x.pk,
                &*x.cid,
                &x.val,
                x.col_version,
                x.db_version,
                &x.site_id[..],
                x.cl,
                x.seq
            ])
            .expect("insert change");
        }
    }
    c.execute_batch("COMMIT").expect("commit");
    t0.elapsed()
}

/// A clock row: key, column, col_version, site ordinal.
type ClockRow = (Vec<u8>, String, i64, i64);

/// Rows and clocks of `t`, for comparing the two merges.
fn dump(c: &Connection) -> (Vec<String>, Vec<ClockRow>) {
    let mut s = c
        .prepare(
            "SELECT quote(id)||quote(a)||quote(b)||quote(c)||quote(d)||quote(e) FROM t ORDER BY id",
        )
        .expect("prepare rows");
    let rows = s
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut s = c
        .prepare(
            "SELECT key, col_name, col_version, site_id FROM t__crsql_clock \
             ORDER BY key, col_name",
        )
        .expect("prepare clocks");
    let clocks = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("clocks")
        .collect::<Result<_, _>>()
        .expect("clocks");
    (rows, clocks)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, n: usize, apply: Vec<Duration>, vtab: Vec<Duration>) {
    let (a, v) = (median(apply), median(vtab));
    println!(
        "{what} ({n} change rows, one tx, median of {RUNS}, {}): apply_changes {:.0} ms \
         ({:.0} k rows/s), INSERT INTO crsql_changes per row {:.0} ms ({:.0} k rows/s), \
         ratio {:.2}x",
        if cpu_time().is_some() {
            "CPU time"
        } else {
            "wall time"
        },
        ms(a),
        n as f64 / a.as_secs_f64() / 1000.0,
        ms(v),
        n as f64 / v.as_secs_f64() / 1000.0,
        v.as_secs_f64() / a.as_secs_f64()
    );
}

fn main() {
    let ch = source_changes();
    let (mut apply, mut vtab) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let (ca, cv) = (open(), open());
        apply.push(via_apply(&ca, &ch));
        vtab.push(via_vtab(&cv, &ch));
        if run == 0 {
            assert!(dump(&ca) == dump(&cv), "the two merges differ");
        }
    }
    report("merge into a fresh db", ch.len(), apply, vtab);
    let full = open();
    via_apply(&full, &ch);
    let before = dump(&full);
    let (mut apply, mut vtab) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        apply.push(via_apply(&full, &ch));
        vtab.push(via_vtab(&full, &ch));
    }
    assert!(
        dump(&full) == before,
        "a merge that loses changed something"
    );
    report("merge again (every row loses)", ch.len(), apply, vtab);
}
