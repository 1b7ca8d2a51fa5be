//! Backpressure: a client that stops reading never stalls its room (the others keep syncing
//! while it is stuck), and one that does not read for longer than the send timeout is
//! dropped instead of holding server memory.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;
use synqlite_core::schema::apply_migrations;
use synqlite_core::sync::{ClientConfig, ClientSession};
use synqlite_server::migrate;

/// Fills `<data>/<room>.db` before the server opens it: `rows` items of `size` bytes each
/// (about `rows * size` bytes of change rows to sync).
fn prefill(data: &Path, schema: &Path, room: &str, rows: usize, size: usize) {
    std::fs::create_dir_all(data).unwrap();
    let db = open_room_file(data, room);
    apply_migrations(&db, &migrate::load_dir(schema).unwrap()).unwrap();
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO items (id, v) SELECT printf('big-%05d', i), printf('%d:%.*c', i, ?2, 'x') FROM n",
        [rows as i64, size as i64],
    )
    .unwrap();
}

/// Joins `room` with a raw socket and never reads from it.
async fn join_and_stop_reading(url: &str, schema: &Path, room: &str) -> Ws {
    let db = client_db(schema);
    let mut session = ClientSession::new(ClientConfig::new(room));
    let mut ws = connect(url).await;
    send(&mut ws, vec![session.hello(&db).unwrap()]).await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_stall_the_room() {
    // 40 MB of backlog: far more than the socket buffers hold, so the server's writes to the
    // stuck client block (and stay blocked: the send timeout is long).
    let server = Server::start(ITEMS, |c| {
        c.session.window = 8;
        c.send_timeout_secs = 600;
        c.dev = true;
    })
    .await;
    prefill(&server.data, &server.schema, "busy", 200, 200_000);
    let mut stuck = join_and_stop_reading(&server.url(), &server.schema, "busy").await;

    // Others join, receive everything, and exchange live changes meanwhile.
    let mut a = Client::join(&server.url(), client_db(&server.schema), "busy", None).await;
    a.until(|c| c.session.up_to_date()).await;
    assert_eq!(count(&a.db, "items"), 200);
    let mut b = Client::join(&server.url(), client_db(&server.schema), "busy", None).await;
    b.until(|c| c.session.up_to_date()).await;
    let stats = server.http().json("GET", "/rooms/busy/stats").await;
    assert_eq!(stats["connections"], 3);
    for round in 0..5 {
        insert(&a.db, "live", round * 10, 10);
        a.push().await;
        a.until(|c| c.session.up_to_date()).await;
        b.until(|c| count(&c.db, "items") == 200 + (round as i64 + 1) * 10)
            .await;
    }
    // The stuck client was never dropped: it can still read what was sent to it.
    let first = tokio::time::timeout(Duration::from_secs(30), next_frame(&mut stuck))
        .await
        .unwrap();
    assert!(first.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_in_time_is_dropped() {
    let server = Server::start(ITEMS, |c| {
        c.session.window = 8;
        c.send_timeout_secs = 1;
        c.dev = true;
    })
    .await;
    prefill(&server.data, &server.schema, "slow", 200, 200_000);
    let mut stuck = join_and_stop_reading(&server.url(), &server.schema, "slow").await;
    // Wait (reading nothing) until the server joined the client, then until its write timed
    // out and it left the room; only then read what the socket buffers hold.
    let connections = |joined: bool| {
        let http = server.http();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                let stats = http.json("GET", "/rooms/slow/stats").await;
                if (stats["connections"] == 1) == joined {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{stats}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    connections(true).await;
    connections(false).await;
    let mut frames = 0;
    while let Some(f) = tokio::time::timeout(Duration::from_secs(60), next_frame(&mut stuck))
        .await
        .unwrap()
    {
        frames += 1;
        assert!(frames < 100, "still connected after {frames} frames");
        let _ = f;
    }
    // Welcome, at most the window's chunks, never CaughtUp: cut off mid-backlog.
    assert!(frames <= 9, "{frames}");
    // The room still serves others.
    let mut c = Client::join(&server.url(), client_db(&server.schema), "slow", None).await;
    c.until(|c| c.session.up_to_date()).await;
    assert_eq!(count(&c.db, "items"), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_and_a_listening_one_kept() {
    let server = Server::start(ITEMS, |c| {
        c.ping_interval_secs = 1;
        c.dev = true;
    })
    .await;
    let http = server.http();
    let _silent = join_and_stop_reading(&server.url(), &server.schema, "quiet").await;
    let mut listening = Client::join(&server.url(), client_db(&server.schema), "quiet", None).await;
    listening.until(|c| c.session.up_to_date()).await;
    // The listening client reads (and so answers pings) until the silent one is gone.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        while done_rx.try_recv().is_err() {
            listening.step(Duration::from_millis(100)).await.unwrap();
        }
        listening
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut seen_both = false;
    loop {
        let stats = http.json("GET", "/rooms/quiet/stats").await;
        seen_both |= stats["connections"] == 2;
        if seen_both && stats["connections"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done_tx.send(()).unwrap();
    let mut listening = reader.await.unwrap();
    // The one left is the listening client: it still syncs.
    insert(&listening.db, "still", 0, 3);
    listening.push().await;
    listening.until(|c| c.session.up_to_date()).await;
    let stats = http.json("GET", "/rooms/quiet/stats").await;
    assert_eq!(stats["tables"]["items"], 3);
    assert_eq!(stats["connections"], 1);
    server.stop().await;
}
