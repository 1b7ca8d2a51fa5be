//! Issue 11's attack 4, a room that goes back in time, against the real binary: a room file
//! restored from a backup, and a server killed (a crash, or a power loss under
//! `synchronous=normal`). Clients whose cursors belong to the room's previous life sync again
//! from the start instead of silently missing the rows written after the rewind.

#[path = "common/binary.rs"]
mod binary;
mod common;

use binary::*;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Joins `room` with `db`, syncs until up to date (and `done`), and gives the database back
/// after closing the socket.
async fn sync_once(
    url: &str,
    db: synqlite_core::rusqlite::Connection,
    room: &str,
    done: impl Fn(&Client) -> bool,
) -> synqlite_core::rusqlite::Connection {
    let mut c = Client::join(url, db, room, None).await;
    c.until(|c| c.session.up_to_date() && done(c)).await;
    let Client { db, ws, .. } = c;
    drop(ws);
    db
}

/// A room restored from a cold backup: its `db_version` goes back, so new rows reuse versions
/// a client already passed. The client is told (a new incarnation in `Welcome`) and syncs from
/// the start, receiving them.
///
/// Before the fix the client resumed after its cursor and never received the rows written
/// after the restore under versions it had already passed (the room and the client diverged
/// for good, both saying up to date).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_room_makes_its_clients_sync_again() {
    let bin = Bin::start(&[]).await;
    let schema = bin.schema.clone();
    let url = bin.url();
    // One transaction per row: the room's db_version moves by one per row.
    let writer = db_with(&schema, &[("a0", "x"), ("a1", "x"), ("a2", "x")]);
    let writer = sync_once(&url, writer, "r", |_| true).await;
    let reader = sync_once(&url, client_db(&schema), "r", |c| {
        count(&c.db, "items") == 3
    })
    .await;
    let stopped = bin.stop().await;
    let backup = stopped.data.join("backup.db");
    std::fs::copy(stopped.data.join("r.db"), &backup).unwrap();

    // More rows after the backup, which the reader receives (its cursor moves past them).
    let bin = Bin::restart(stopped, &[]).await;
    let url = bin.url();
    for id in ["b0", "b1", "b2"] {
        writer
            .execute("INSERT INTO items (id, v) VALUES (?1, 'y')", [id])
            .unwrap();
    }
    let _writer = sync_once(&url, writer, "r", |_| true).await;
    let reader = sync_once(&url, reader, "r", |c| count(&c.db, "items") == 6).await;
    let stopped = bin.stop().await;

    // Restore the backup (cold, as an operator would with the server stopped).
    std::fs::copy(&backup, stopped.data.join("r.db")).unwrap();
    let bin = Bin::restart(stopped, &[]).await;
    let url = bin.url();
    // A newcomer writes, one row per sync: the restored room gives them versions the reader
    // already passed, up to the reader's cursor (so the room is not visibly behind it).
    let mut newcomer = client_db(&schema);
    for id in ["n0", "n1", "n2"] {
        newcomer
            .execute("INSERT INTO items (id, v) VALUES (?1, 'z')", [id])
            .unwrap();
        newcomer = sync_once(&url, newcomer, "r", |_| true).await;
    }
    let reader = sync_once(&url, reader, "r", |c| count(&c.db, "items") == 9).await;
    let ids: Vec<String> = items(&reader).into_iter().map(|(id, _)| id).collect();
    for n in ["n0", "n1", "n2"] {
        assert!(ids.contains(&n.to_owned()), "{ids:?}");
    }
    assert!(
        bin.log_contains("new incarnation", WAIT).await,
        "{}",
        bin.log()
    );
    drop(bin);
}

/// The incarnation a client is told: the same after a clean restart, a new one after a crash
/// (the room was not closed cleanly: under `synchronous=normal` its last commits may be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_gives_the_room_a_new_incarnation() {
    let bin = Bin::start(&[]).await;
    let db = db_with(&bin.schema, &[("k", "v")]);
    let incarnation = |bin: &Bin, db: &synqlite_core::rusqlite::Connection| {
        let addr = bin.addr;
        let hello = hello_bytes(db, "c", None, |_| {});
        async move {
            let mut raw = Raw::connect(addr, &[]).await.unwrap();
            let w = raw.join(&hello).await;
            drop(raw);
            w.incarnation
        }
    };
    let first = incarnation(&bin, &db).await;
    let stopped = bin.stop().await;
    let bin = Bin::restart(stopped, &[]).await;
    let again = incarnation(&bin, &db).await;
    assert_eq!(first, again, "a clean restart keeps the incarnation");
    // A write, then a crash.
    let _db = sync_once(&bin.url(), db, "c", |_| true).await;
    let db = db_with(&bin.schema, &[]);
    let crashed = bin.kill().await;
    let bin = Bin::restart(crashed, &[]).await;
    let after = incarnation(&bin, &db).await;
    assert_ne!(again, after, "a crash draws a new incarnation");
    drop(bin);
}
