//! The `crsql_changes` virtual table, natively and in wasm (dedicated worker): its
//! declaration, `SELECT` with `WHERE` on every column checked against SQLite itself (the same
//! rows in an ordinary table declared like the virtual one), orders, query plans, rowids,
//! `INSERT` merging (errors, local site ids, one db_version per transaction, atomicity), and
//! `UPDATE`/`DELETE` refused.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt::{self, pack, Change};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::{params, Connection, ToSql};

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c
}

// Values avoid what NUMERIC affinity would change (numeric text, integral reals), so the
// oracle table (declared like crsql_changes, `val ANY`) stores them unchanged.
const SCHEMA: &str = "
    CREATE TABLE items (id INTEGER PRIMARY KEY NOT NULL, a, b DEFAULT 'x');
    SELECT crsql_as_crr('items');
    CREATE TABLE pairs (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
    SELECT crsql_as_crr('pairs');
    CREATE TABLE \"odd name\" (id TEXT PRIMARY KEY NOT NULL, \"we\"\"ird\");
    SELECT crsql_as_crr('odd name');
    CREATE TABLE tags (name TEXT PRIMARY KEY NOT NULL);
    SELECT crsql_as_crr('tags');";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rows(c: &Connection, sql: &str, p: &[&dyn ToSql]) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map(p, |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{sql}: {e}")))
        .collect()
}

fn change_row(c: &Change) -> Vec<Value> {
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
}

/// A database with local writes over several transactions (inserts, updates, a delete, a
/// re-insert) on four tables, and rows merged from a peer; returns it with the peer's site id.
fn history() -> (Connection, Vec<u8>) {
    let peer = open();
    peer.execute_batch(SCHEMA).unwrap();
    peer.execute_batch(
        "INSERT INTO items VALUES (7, 'peer', 2.5);
         INSERT INTO pairs VALUES ('p', 1, x'01');
         UPDATE items SET a = 'peer2' WHERE id = 7;",
    )
    .unwrap();
    let c = open();
    c.execute_batch(SCHEMA).unwrap();
    for sql in [
        "INSERT INTO items VALUES (1, 'hello', 1.5), (2, x'0102', NULL)",
        "INSERT INTO pairs VALUES ('x', 1, 'v1'), ('x', 2, -3); INSERT INTO tags VALUES ('t1'), ('t2')",
        "UPDATE items SET a = 'world' WHERE id = 1; INSERT INTO \"odd name\" VALUES ('k', 'w')",
        "DELETE FROM items WHERE id = 2; DELETE FROM tags WHERE name = 't2'",
        "INSERT INTO items VALUES (2, 'again', 9); UPDATE pairs SET v = 0.25 WHERE k1 = 'x' AND k2 = 1",
    ] {
        c.execute_batch(sql).unwrap();
    }
    crdt::apply_changes(&c, &crdt::changes_since(&peer, 0, None).unwrap()).unwrap();
    c.execute_batch("UPDATE items SET b = 'local' WHERE id = 7")
        .unwrap();
    (c, crdt::site_id(&peer).unwrap().to_vec())
}

/// The change rows in an ordinary table declared like crsql_changes, for SQLite to filter.
fn oracle(c: &Connection) {
    c.execute_batch(
        "CREATE TEMP TABLE oracle (\"table\" TEXT NOT NULL, pk BLOB NOT NULL, cid TEXT NOT NULL,
           val ANY, col_version INTEGER NOT NULL, db_version INTEGER NOT NULL,
           site_id BLOB NOT NULL, cl INTEGER NOT NULL, seq INTEGER NOT NULL)",
    )
    .unwrap();
    for ch in crdt::changes_since(c, 0, None).unwrap() {
        let r = change_row(&ch);
        let p: Vec<&dyn ToSql> = r.iter().map(|v| v as &dyn ToSql).collect();
        c.execute(
            "INSERT INTO temp.oracle VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &p[..],
        )
        .unwrap();
    }
}

fn sorted(mut v: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    v.sort_by_key(|r| format!("{r:?}"));
    v
}

const COLS: &str = "\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq";
const KEY: &str = "db_version, seq, \"table\", pk, cid";

fn plan(c: &Connection, sql: &str) -> String {
    rows(c, &format!("EXPLAIN QUERY PLAN {sql}"), &[])
        .into_iter()
        .map(|r| format!("{:?}", r[3]))
        .collect::<Vec<_>>()
        .join("\n")
}

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn declared_like_cr_sqlite_and_reads_what_changes_since_returns() {
        let (c, _) = history();
        let cols = rows(&c, "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo('crsql_changes')", &[]);
        let expect = [("table", "TEXT", 1), ("pk", "BLOB", 1), ("cid", "TEXT", 1), ("val", "ANY", 0),
            ("col_version", "INTEGER", 1), ("db_version", "INTEGER", 1), ("site_id", "BLOB", 1),
            ("cl", "INTEGER", 1), ("seq", "INTEGER", 1)];
        assert_eq!(cols.len(), expect.len());
        for (got, (name, ty, notnull)) in cols.iter().zip(expect) {
            assert_eq!(got, &vec![Value::Text(name.into()), Value::Text(ty.into()),
                                  Value::Integer(notnull), Value::Integer(0), Value::Integer(0)]);
        }
        let want: Vec<Vec<Value>> = crdt::changes_since(&c, 0, None).unwrap().iter().map(change_row).collect();
        assert!(want.len() > 12, "{}", want.len());
        // Without ORDER BY: changes_since's order, (db_version, seq, table, pk, cid).
        assert_eq!(rows(&c, "SELECT * FROM crsql_changes", &[]), want);
        for since in 0..8 {
            let want: Vec<Vec<Value>> = crdt::changes_since(&c, since, None).unwrap().iter().map(change_row).collect();
            assert_eq!(rows(&c, "SELECT * FROM crsql_changes WHERE db_version > ?", &[&since]), want);
        }
        // The peer's rows keep its site id; local rows carry this database's.
        let local = crdt::site_id(&c).unwrap().to_vec();
        let sites = rows(&c, "SELECT DISTINCT site_id FROM crsql_changes ORDER BY 1", &[]);
        assert_eq!(sites.len(), 2);
        assert!(sites.contains(&vec![Value::Blob(local)]));
        // A connection without replicated tables has an empty crsql_changes.
        assert!(rows(&open(), "SELECT * FROM crsql_changes", &[]).is_empty());
    }

    fn where_on_every_column_matches_sqlite() {
        let (c, peer) = history();
        let local = hex(&crdt::site_id(&c).unwrap());
        let peer = hex(&peer);
        oracle(&c);
        let clauses = [
            "1".to_owned(),
            "db_version = 2".into(), "db_version > 2".into(), "db_version >= 2".into(),
            "db_version < 3".into(), "db_version <= 3".into(), "db_version != 2".into(),
            "db_version IS 2".into(), "db_version IS NOT 2".into(), "db_version IS NULL".into(),
            "db_version IS NOT NULL".into(), "db_version IN (1, 3, 99)".into(),
            "db_version BETWEEN 2 AND 4".into(), "db_version = '2'".into(), "db_version > 2.5".into(),
            "db_version = NULL".into(), "db_version > 2 AND db_version < 5".into(),
            "db_version > 'a'".into(), "db_version < x'00'".into(),
            "seq = 0".into(), "seq > 1".into(), "db_version = 2 AND seq = 1".into(), "seq IN (0, 2)".into(),
            "seq <= 1 AND db_version >= 3".into(),
            "col_version = 1".into(), "col_version > 1".into(), "col_version != 2".into(),
            "col_version IS NOT 1".into(),
            "pk = x'010901'".into(), "pk > x'0109'".into(), "pk <= x'010902'".into(),
            "pk IN (x'010901', x'010907', x'00')".into(), "pk = 'abc'".into(), "pk IS NULL".into(),
            "pk IS NOT x'010901'".into(), "pk != x'010901'".into(), "pk < x'02'".into(),
            format!("site_id = x'{local}'"), format!("site_id IS x'{peer}'"),
            format!("site_id IS NOT x'{peer}'"), format!("site_id != x'{local}'"),
            "site_id IS NULL".into(), "site_id IS NOT NULL".into(), "site_id = 'text'".into(),
            "site_id > x'00'".into(), format!("site_id IN (x'{peer}', x'00')"), "site_id = NULL".into(),
            "\"table\" = 'items'".into(), "\"table\" IS 'pairs'".into(),
            "\"table\" IN ('items', 'odd name', 'nope')".into(), "\"table\" = 'ITEMS'".into(),
            "\"table\" = 'ITEMS' COLLATE NOCASE".into(), "\"table\" LIKE 'it%'".into(),
            "\"table\" = 1".into(), "\"table\" = NULL".into(), "\"table\" IS NULL".into(),
            "\"table\" != 'items'".into(), "\"table\" > 'items'".into(), "\"table\" = x'7461677300'".into(),
            "\"table\" = 'items' AND \"table\" = 'pairs'".into(), "\"table\" = 'tags' AND \"table\" IS 'tags'".into(),
            "\"table\" = 'odd name'".into(),
            "cid = 'a'".into(), "cid = '-1'".into(), "cid IN ('a', 'v')".into(), "cid LIKE 'w%'".into(),
            "cid = -1".into(), "cid > 'a'".into(),
            "val = 'hello'".into(), "val > 2".into(), "val IS NULL".into(), "val = x'01'".into(),
            "typeof(val) = 'real'".into(), "val = '9'".into(), "val < 0".into(),
            "cl = 1".into(), "cl > 1".into(), "cl = '3'".into(), "cl % 2 = 0".into(), "cl IN (2, 3)".into(),
            format!("db_version > 1 AND site_id IS NOT x'{peer}'"),
            "db_version = 2 OR pk = x'010901'".into(), "\"table\" = 'items' OR cid = 'v'".into(),
            "db_version > 1 AND \"table\" = 'pairs' AND seq >= 0".into(), "NOT (db_version > 2)".into(),
            "pk = x'010901' AND \"table\" = 'items' AND cid = 'a'".into(),
            "db_version = 3 OR db_version = 5 OR \"table\" = 'tags'".into(),
            "db_version IN (SELECT max(db_version) FROM {T})".into(),
            "pk IN (SELECT pk FROM {T} WHERE cid = 'a')".into(),
            "db_version = (SELECT min(db_version) FROM {T} WHERE \"table\" = 'pairs')".into(),
        ];
        let total = rows(&c, "SELECT * FROM temp.oracle", &[]).len();
        let mut selective = 0;
        for w in &clauses {
            let got = rows(&c, &format!("SELECT {COLS} FROM crsql_changes WHERE {}", w.replace("{T}", "crsql_changes")), &[]);
            let want = rows(&c, &format!("SELECT {COLS} FROM temp.oracle WHERE {}", w.replace("{T}", "temp.oracle")), &[]);
            selective += usize::from(!want.is_empty() && want.len() < total);
            assert_eq!(sorted(got), sorted(want.clone()), "WHERE {w}");
            for order in [format!("ORDER BY {KEY}"), format!("ORDER BY {}", KEY.replace(',', " DESC,") + " DESC"),
                          "ORDER BY db_version DESC".into(), format!("ORDER BY cl, {KEY}"),
                          format!("ORDER BY seq, {KEY}"), format!("ORDER BY pk, cid, {KEY}")] {
                let sql = |t: &str| format!("SELECT {COLS} FROM {t} WHERE {} {order}", w.replace("{T}", t));
                let got = rows(&c, &sql("crsql_changes"), &[]);
                let want = rows(&c, &sql("temp.oracle"), &[]);
                if order == "ORDER BY db_version DESC" {
                    // Ties keep any order: compare the sort key and the rows.
                    let dv = |r: &Vec<Vec<Value>>| r.iter().map(|x| x[5].clone()).collect::<Vec<_>>();
                    assert_eq!(dv(&got), dv(&want), "WHERE {w} {order}");
                    assert_eq!(sorted(got), sorted(want), "WHERE {w} {order}");
                } else {
                    assert_eq!(got, want, "WHERE {w} {order}");
                }
            }
        }
        // Most clauses keep some rows and drop others (the comparison can fail).
        assert!(selective > clauses.len() * 2 / 3, "{selective} of {}", clauses.len());
        // Joins: the constraint's value changes per outer row (xFilter again each time).
        let join = |t: &str| rows(&c, &format!(
            "SELECT x.\"table\", x.pk, x.cid, y.cid FROM {t} AS x JOIN {t} AS y ON y.db_version = x.db_version \
             AND y.pk = x.pk AND y.\"table\" = x.\"table\" ORDER BY 1, 2, 3, 4"), &[]);
        assert_eq!(join("crsql_changes"), join("temp.oracle"));
        let n: i64 = c.query_row("SELECT count(*) FROM crsql_changes", [], |r| r.get(0)).unwrap();
        let m: i64 = c.query_row("SELECT count(*) FROM temp.oracle", [], |r| r.get(0)).unwrap();
        assert_eq!(n, m);
    }

    fn plans_push_down_and_consume_the_change_order() {
        let (c, _) = history();
        let p = plan(&c, "SELECT * FROM crsql_changes WHERE db_version > 2 AND site_id IS NOT x'00' ORDER BY db_version, seq");
        assert!(p.contains("INDEX 0:a5>6n") && !p.contains("TEMP B-TREE"), "{p}");
        let p = plan(&c, "SELECT * FROM crsql_changes ORDER BY db_version DESC, seq DESC");
        assert!(p.contains("INDEX 0:d") && !p.contains("TEMP B-TREE"), "{p}");
        let p = plan(&c, "SELECT * FROM crsql_changes WHERE \"table\" = 'items' AND pk = x'010901'");
        assert!(p.contains("0=") && p.contains("1="), "{p}");
        let p = plan(&c, "SELECT * FROM crsql_changes WHERE cl = 1 ORDER BY cl");
        assert!(p.contains("INDEX 0:u") && p.contains("TEMP B-TREE"), "{p}");
        // A LIMIT stops the ordered scan early and still gets the first rows.
        let first = rows(&c, "SELECT * FROM crsql_changes ORDER BY db_version, seq LIMIT 3", &[]);
        assert_eq!(first, rows(&c, "SELECT * FROM crsql_changes", &[])[..3].to_vec());
    }

    fn rowids_are_stable_within_a_statement() {
        let (c, _) = history();
        let ids = rows(&c, "SELECT rowid FROM crsql_changes", &[]);
        let mut distinct = ids.clone();
        distinct.sort_by_key(|r| format!("{r:?}"));
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len());
        // Each OR term scans again; a row matching both terms is reported once.
        let n: i64 = c.query_row(
            "SELECT count(*) FROM crsql_changes WHERE db_version >= 1 OR pk = x'010901'", [], |r| r.get(0)).unwrap();
        let all: i64 = c.query_row("SELECT count(*) FROM crsql_changes", [], |r| r.get(0)).unwrap();
        assert_eq!(n, all);
        assert!(plan(&c, "SELECT * FROM crsql_changes WHERE db_version >= 1 OR pk = x'010901'").contains("MULTI-INDEX OR"));
    }

    fn new_tables_appear_and_the_connection_closes() {
        let c = open();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch("INSERT INTO tags VALUES ('a')").unwrap();
        assert_eq!(rows(&c, "SELECT \"table\" FROM crsql_changes", &[]).len(), 1);
        c.execute_batch("CREATE TABLE more (id INTEGER PRIMARY KEY NOT NULL, z); SELECT crsql_as_crr('more');
                         INSERT INTO more VALUES (1, 2)").unwrap();
        assert_eq!(rows(&c, "SELECT \"table\" FROM crsql_changes WHERE \"table\" = 'more'", &[]).len(), 1);
        // Inserts see schema changes too (the table's list of tables is per schema version).
        let insert_more = "INSERT INTO crsql_changes VALUES ('more', x'010902', 'z', 5, 1, 1, x'0101', 1, 0)";
        c.execute_batch(insert_more).unwrap();
        c.execute_batch("ALTER TABLE more ADD COLUMN w").unwrap();
        c.execute_batch("INSERT INTO crsql_changes VALUES ('more', x'010902', 'w', 6, 1, 1, x'0101', 1, 0)").unwrap();
        assert_eq!(rows(&c, "SELECT z, w FROM more WHERE id = 2", &[]), vec![vec![Value::Integer(5), Value::Integer(6)]]);
        c.execute_batch("SELECT crsql_as_table('more'); DROP TABLE more").unwrap();
        assert_eq!(rows(&c, "SELECT \"table\" FROM crsql_changes", &[]).len(), 1);
        let e = c.execute_batch(insert_more).unwrap_err().to_string();
        assert!(e.contains("not a replicated table"), "{e}");
        // The table's cached statements do not keep the connection open.
        c.close().unwrap();
    }
}

/// `INSERT INTO crsql_changes` of `rows`, one statement per row.
fn insert(c: &Connection, rows: &[Vec<Value>]) -> Result<(), String> {
    let mut stmt = c
        .prepare("INSERT INTO crsql_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .unwrap();
    for r in rows {
        let p: Vec<&dyn ToSql> = r.iter().map(|v| v as &dyn ToSql).collect();
        stmt.execute(&p[..]).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn contents(c: &Connection) -> Vec<Vec<Value>> {
    let mut out = rows(c, "SELECT id, a, b FROM items ORDER BY id", &[]);
    out.extend(rows(c, "SELECT k1, k2, v FROM pairs ORDER BY 1, 2", &[]));
    out.extend(rows(
        c,
        "SELECT id, \"we\"\"ird\" FROM \"odd name\" ORDER BY 1",
        &[],
    ));
    out.extend(rows(c, "SELECT name FROM tags ORDER BY 1", &[]));
    out
}

/// Change rows without db_version and seq (which depend on how they were merged).
fn clocks(c: &Connection) -> Vec<Vec<Value>> {
    sorted(rows(
        c,
        "SELECT \"table\", pk, cid, val, col_version, site_id, cl FROM crsql_changes",
        &[],
    ))
}

both! {
    fn inserts_merge_like_apply_changes() {
        let (src, _) = history();
        let all = rows(&src, "SELECT * FROM crsql_changes", &[]);
        let a = open();
        a.execute_batch(SCHEMA).unwrap();
        crdt::apply_changes(&a, &crdt::changes_since(&src, 0, None).unwrap()).unwrap();
        let b = open();
        b.execute_batch(SCHEMA).unwrap();
        b.execute_batch("BEGIN").unwrap();
        insert(&b, &all).unwrap();
        b.execute_batch("COMMIT").unwrap();
        assert_eq!(contents(&b), contents(&src));
        assert_eq!(contents(&b), contents(&a));
        assert_eq!(clocks(&b), clocks(&a));
        assert_eq!(clocks(&b), clocks(&src));
        // Merged rows are not re-recorded as local writes: site ids are the writers'.
        let local = crdt::site_id(&b).unwrap().to_vec();
        let n: i64 = b.query_row("SELECT count(*) FROM crsql_changes WHERE site_id = ?", [&local], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        // Again: nothing changes, nothing is counted.
        let before = rows(&b, "SELECT * FROM crsql_changes", &[]);
        b.execute_batch("BEGIN").unwrap();
        insert(&b, &all).unwrap();
        let impacted: i64 = b.query_row("SELECT crsql_rows_impacted()", [], |r| r.get(0)).unwrap();
        assert_eq!(impacted, 0);
        b.execute_batch("COMMIT").unwrap();
        assert_eq!(rows(&b, "SELECT * FROM crsql_changes", &[]), before);
        // INSERT ... SELECT from another database's changes.
        let d = open();
        d.execute_batch(SCHEMA).unwrap();
        let path_rows = rows(&src, "SELECT * FROM crsql_changes WHERE \"table\" = 'pairs'", &[]);
        d.execute_batch("CREATE TEMP TABLE incoming AS SELECT * FROM crsql_changes WHERE 0").unwrap();
        for r in &path_rows {
            let p: Vec<&dyn ToSql> = r.iter().map(|v| v as &dyn ToSql).collect();
            d.execute("INSERT INTO temp.incoming VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", &p[..]).unwrap();
        }
        d.execute_batch("INSERT INTO crsql_changes SELECT * FROM temp.incoming").unwrap();
        assert_eq!(rows(&d, "SELECT k1, k2, v FROM pairs ORDER BY 1, 2", &[]),
                   rows(&src, "SELECT k1, k2, v FROM pairs ORDER BY 1, 2", &[]));
    }

    fn one_transaction_one_db_version() {
        let c = open();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch("INSERT INTO tags VALUES ('mine')").unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 1);
        let site = vec![9u8; 16];
        let key = |i: i64| pack::pack(&[Value::Integer(i)]).unwrap();
        let row = |i: i64, dbv: i64| vec![Value::Text("items".into()), Value::Blob(key(i)), Value::Text("a".into()),
            Value::Text(format!("v{i}")), Value::Integer(1), Value::Integer(dbv), Value::Blob(site.clone()),
            Value::Integer(1), Value::Integer(0)];
        c.execute_batch("BEGIN").unwrap();
        insert(&c, &[row(1, 1), row(2, 2)]).unwrap();
        c.execute_batch("UPDATE tags SET name = 'mine2'").unwrap();
        insert(&c, &[row(3, 1)]).unwrap();
        c.execute_batch("COMMIT").unwrap();
        let got = rows(&c, "SELECT db_version, seq FROM crsql_changes WHERE db_version > 1", &[]);
        // One version for the transaction's merged and local writes, distinct seqs.
        assert!(got.iter().all(|r| r[0] == Value::Integer(2)), "{got:?}");
        let mut seqs: Vec<String> = got.iter().map(|r| format!("{:?}", r[1])).collect();
        seqs.sort();
        seqs.dedup();
        assert_eq!(seqs.len(), got.len());
        assert_eq!(crdt::db_version(&c).unwrap(), 2);
        // Autocommit: each statement is its transaction; a higher incoming version raises it.
        insert(&c, &[row(4, 10)]).unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 10);
        insert(&c, &[row(5, 3)]).unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 11);
        let v: Vec<Vec<Value>> = rows(&c, "SELECT db_version FROM crsql_changes WHERE pk = ?", &[&key(5)]);
        assert_eq!(v, vec![vec![Value::Integer(11)]]);
    }

    fn local_site_ids_errors_and_refusals() {
        let c = open();
        c.execute_batch(SCHEMA).unwrap();
        let local = crdt::site_id(&c).unwrap().to_vec();
        let key = pack::pack(&[Value::Integer(1)]).unwrap();
        c.execute_batch("INSERT INTO tags VALUES ('x'); INSERT INTO items VALUES (50, 1.5, 2.5)").unwrap();
        let rowid = c.last_insert_rowid();
        // NULL and empty site ids stand for this database; a NULL version counts as 0.
        for site in [Value::Null, Value::Blob(vec![])] {
            c.execute("INSERT INTO crsql_changes VALUES ('items', ?, 'a', 'mine', 3, 1, ?, 1, NULL)",
                      params![key, site]).unwrap();
        }
        assert_eq!(c.last_insert_rowid(), rowid);
        let got = rows(&c, "SELECT val, site_id FROM crsql_changes WHERE pk = ? AND cid = 'a'", &[&key]);
        assert_eq!(got, vec![vec![Value::Text("mine".into()), Value::Blob(local)]]);
        // A REAL that holds an integer is taken as one (JS numbers past 2^31).
        c.execute("INSERT INTO crsql_changes VALUES ('items', ?, 'a', 'big', 4.0, 3000000000.0, x'0909', 1.0, 0)",
                  params![key]).unwrap();
        assert_eq!(crdt::db_version(&c).unwrap(), 3_000_000_000);
        // Text versions are read as integers, as cr-sqlite reads them.
        c.execute("INSERT INTO crsql_changes VALUES ('items', ?, 'a', 'text', '5', '3000000001', x'0909', '1', '0')",
                  params![key]).unwrap();
        assert_eq!(rows(&c, "SELECT val, col_version FROM crsql_changes WHERE pk = ? AND cid = 'a'", &[&key]),
                   vec![vec![Value::Text("text".into()), Value::Integer(5)]]);
        let before = rows(&c, "SELECT * FROM crsql_changes", &[]);
        let content = contents(&c);
        let k = hex(&key);
        for (sql, msg) in [
            (format!("INSERT INTO crsql_changes VALUES ('nope', x'{k}', 'a', 1, 1, 1, NULL, 1, 0)"), "not a replicated table"),
            (format!("INSERT INTO crsql_changes VALUES (NULL, x'{k}', 'a', 1, 1, 1, NULL, 1, 0)"), "table must be text"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'zz', 1, 1, 1, NULL, 1, 0)"), "no column zz"),
            ("INSERT INTO crsql_changes VALUES ('items', x'01', 'a', 1, 1, 1, NULL, 1, 0)".into(), "crsql_changes"),
            ("INSERT INTO crsql_changes VALUES ('items', 5, 'a', 1, 1, 1, NULL, 1, 0)".into(), "pk must be a BLOB"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, 1, 1, x'{}', 1, 0)", "00".repeat(17)), "at most 16"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, -1, 1, NULL, 1, 0)"), "col_version -1 is out of range"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, 1.5, 1, NULL, 1, 0)"), "col_version must be an integer"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, 1, '1x', NULL, 1, 0)"), "db_version must be an integer"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, 1, x'01', NULL, 1, 0)"), "db_version must be an integer"),
            (format!("INSERT INTO crsql_changes VALUES ('items', x'{k}', 'a', 1, 1, 1, 7, 1, 0)"), "site_id must be a BLOB"),
            ("UPDATE crsql_changes SET val = 1".into(), "Only INSERT and SELECT statements are allowed"),
            ("DELETE FROM crsql_changes".into(), "Only INSERT and SELECT statements are allowed"),
        ] {
            let e = c.execute_batch(&sql).unwrap_err().to_string();
            assert!(e.contains(msg), "{sql}: {e}");
            assert_eq!(rows(&c, "SELECT * FROM crsql_changes", &[]), before, "{sql}");
            assert_eq!(contents(&c), content, "{sql}");
        }
        // Through the core's error type: a SQLite error with the message.
        let e = synqlite_core::exec(&c, "DELETE FROM crsql_changes", &synqlite_core::Params::None).unwrap_err();
        assert_eq!(e.code(), "SQLITE_MISUSE");
        let e = synqlite_core::exec(&c, "INSERT INTO crsql_changes VALUES ('nope', x'01', 'a', 1, 1, 1, NULL, 1, 0)",
                                    &synqlite_core::Params::None).unwrap_err();
        assert_eq!(e.code(), "SQLITE_ERROR");
        assert!(e.to_string().contains("crsql_changes"), "{e}");
    }

    fn failed_inserts_leave_nothing_behind() {
        let (src, _) = history();
        let mut all = rows(&src, "SELECT * FROM crsql_changes", &[]);
        let c = open();
        c.execute_batch(SCHEMA).unwrap();
        let empty = (rows(&c, "SELECT * FROM crsql_changes", &[]), contents(&c), crdt::db_version(&c).unwrap());
        let state = |c: &Connection| (rows(c, "SELECT * FROM crsql_changes", &[]), contents(c), crdt::db_version(c).unwrap());
        // A bad row in the middle of a transaction: the rows before it stay until ROLLBACK,
        // which leaves nothing.
        let mut bad = all[3].clone();
        bad[0] = Value::Text("nope".into());
        c.execute_batch("BEGIN").unwrap();
        insert(&c, &all[..3]).unwrap();
        assert!(insert(&c, &[bad.clone()]).unwrap_err().contains("not a replicated table"));
        assert!(!rows(&c, "SELECT * FROM crsql_changes", &[]).is_empty());
        c.execute_batch("ROLLBACK").unwrap();
        assert_eq!(state(&c), empty);
        // One INSERT ... SELECT with a bad row: the whole statement is undone, in a transaction
        // and in autocommit mode.
        all.insert(5, bad);
        c.execute_batch("CREATE TEMP TABLE incoming AS SELECT * FROM crsql_changes WHERE 0").unwrap();
        for r in &all {
            let p: Vec<&dyn ToSql> = r.iter().map(|v| v as &dyn ToSql).collect();
            c.execute("INSERT INTO temp.incoming VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", &p[..]).unwrap();
        }
        c.execute_batch("BEGIN; INSERT INTO tags VALUES ('kept')").unwrap();
        let kept = state(&c);
        assert!(c.execute_batch("INSERT INTO crsql_changes SELECT * FROM temp.incoming").is_err());
        assert_eq!(state(&c), kept);
        c.execute_batch("COMMIT").unwrap();
        let committed = state(&c);
        assert!(c.execute_batch("INSERT INTO crsql_changes SELECT * FROM temp.incoming").is_err());
        assert_eq!(state(&c), committed);
        assert!(c.is_autocommit());
    }
}
