//! The change feed (rows of committed transactions) and read sets (tables a query reads).

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::change_feed::{ChangeFeed, RowChange, RowOp};
use synqlite_core::read_set::tables_read;
use synqlite_core::rusqlite::Connection;
use synqlite_core::{batch, crdt, exec, Params};

fn open() -> (Connection, ChangeFeed) {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    let feed = ChangeFeed::install(&mut c).unwrap();
    exec(
        &c,
        "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT); CREATE TABLE other (x)",
        &Params::None,
    )
    .unwrap();
    (c, feed)
}

fn ch(op: RowOp, table: &str, rowid: i64) -> RowChange {
    RowChange {
        op,
        table: table.into(),
        rowid,
    }
}

fn run(c: &Connection, sql: &str) {
    exec(c, sql, &Params::None).unwrap();
}

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn one_batch_per_committed_transaction() {
        let (c, feed) = open();
        assert!(feed.take().is_empty(), "DDL changes no rows");
        run(&c, "INSERT INTO songs (id, title) VALUES (1, 'a')");
        run(&c, "UPDATE songs SET title = 'b' WHERE id = 1; DELETE FROM songs WHERE id = 1");
        assert_eq!(feed.take(), vec![
            vec![ch(RowOp::Insert, "songs", 1)],
            vec![ch(RowOp::Update, "songs", 1)],
            vec![ch(RowOp::Delete, "songs", 1)],
        ]);
        assert!(feed.take().is_empty(), "taken once");
    }

    fn rows_are_coalesced_within_a_transaction() {
        let (c, feed) = open();
        run(&c, "BEGIN; INSERT INTO songs VALUES (1, 'a'); UPDATE songs SET title = 'x' WHERE id = 1; INSERT INTO other VALUES (1); INSERT INTO songs VALUES (2, 'b'); DELETE FROM songs WHERE id = 2; COMMIT");
        assert_eq!(feed.take(), vec![vec![
            ch(RowOp::Insert, "songs", 1),
            ch(RowOp::Insert, "other", 1),
            ch(RowOp::Delete, "songs", 2),
        ]]);
    }

    fn rolled_back_transactions_report_nothing() {
        let (c, feed) = open();
        run(&c, "BEGIN; INSERT INTO songs VALUES (1, 'a'); ROLLBACK");
        assert!(feed.take().is_empty());
        // A failed batch outside a transaction reports nothing either.
        assert!(batch(&c, &[("INSERT INTO songs VALUES (5, 'a')".into(), Params::None), ("SELEC".into(), Params::None)]).is_err());
        assert!(feed.take().is_empty());
        run(&c, "INSERT INTO songs VALUES (3, 'c')");
        assert_eq!(feed.take(), vec![vec![ch(RowOp::Insert, "songs", 3)]]);
    }

    fn crdt_metadata_is_not_reported() {
        let (c, feed) = open();
        run(&c, "SELECT crsql_as_crr('songs')");
        feed.take();
        run(&c, "INSERT INTO songs VALUES (1, 'a')");
        assert_eq!(feed.take(), vec![vec![ch(RowOp::Insert, "songs", 1)]]);
        // Merged remote changes are reported like local ones (the caller tags their source).
        let (peer, peer_feed) = open();
        exec(&peer, "SELECT crsql_as_crr('songs')", &Params::None).unwrap();
        let changes = crdt::changes_since(&c, 0, None).unwrap();
        crdt::apply_changes(&peer, &changes).unwrap();
        let batches = peer_feed.take();
        assert_eq!(batches.len(), 1);
        assert!(batches[0].iter().all(|r| r.table == "songs"), "{batches:?}");
    }

    fn read_sets_come_from_sqlite() {
        let (mut c, _feed) = open();
        run(&c, "CREATE VIEW titles AS SELECT title FROM songs");
        assert_eq!(tables_read(&mut c, "SELECT * FROM songs WHERE id = ?").unwrap(), vec!["songs"]);
        assert_eq!(tables_read(&mut c, "SELECT count(*) FROM other").unwrap(), vec!["other"]);
        // The view itself is reported too (harmless: views have no rows of their own).
        assert_eq!(tables_read(&mut c, "SELECT * FROM titles").unwrap(), vec!["songs", "titles"]);
        assert_eq!(tables_read(&mut c, "WITH x AS (SELECT x FROM other) SELECT s.title FROM songs s JOIN x ON x.x = s.id").unwrap(), vec!["other", "songs"]);
        assert_eq!(tables_read(&mut c, "SELECT 1").unwrap(), Vec::<String>::new());
        assert_eq!(tables_read(&mut c, "SELECT * FROM nope").unwrap_err().code(), "SQLITE_ERROR");
        // The authorizer is gone afterwards: statements run normally.
        run(&c, "INSERT INTO songs VALUES (9, 'z')");
    }
}
