//! The sync server over real WebSockets on loopback: convergence (two clients with offline
//! edits; 100 clients x 200 changes), graceful shutdown in process (clients in every state)
//! and of the built binary on SIGTERM.

mod common;

use common::*;
use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_with_offline_edits() {
    let server = Server::start(ITEMS, |_| {}).await;
    let a_db = client_db(&server.schema);
    let b_db = client_db(&server.schema);
    // Offline edits before either ever connected.
    insert(&a_db, "a", 0, 30);
    insert(&b_db, "b", 0, 20);
    let mut a = Client::join(&server.url(), a_db, "room1", None).await;
    a.until(|c| c.session.up_to_date()).await;
    let mut b = Client::join(&server.url(), b_db, "room1", None).await;
    b.until(|c| c.session.up_to_date() && count(&c.db, "items") == 50)
        .await;
    a.until(|c| count(&c.db, "items") == 50).await;
    // Live edits both ways.
    a.db.execute("UPDATE items SET v = 'from a' WHERE id = 'b-0001'", [])
        .unwrap();
    a.push().await;
    b.db.execute("DELETE FROM items WHERE id = 'a-0002'", [])
        .unwrap();
    b.push().await;
    b.until(|c| {
        c.db.query_row("SELECT v FROM items WHERE id = 'b-0001'", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
            == "from a"
    })
    .await;
    a.until(|c| count(&c.db, "items") == 49).await;
    // b goes offline, edits, comes back: the edits arrive at a.
    let Client { db: b_db, ws, .. } = b;
    // Gone for real (a live connection would keep its site id in use).
    drop(ws);
    insert(&b_db, "b", 100, 5);
    let mut b = Client::join(&server.url(), b_db, "room1", None).await;
    b.until(|c| c.session.up_to_date()).await;
    a.until(|c| count(&c.db, "items") == 54).await;
    assert_eq!(items(&a.db), items(&b.db));
    let room = server.room_db("room1");
    assert_eq!(items(&room), items(&a.db));
    // Another room is independent.
    let c = Client::join(&server.url(), client_db(&server.schema), "room2", None).await;
    let mut c = c;
    c.until(|c| c.session.up_to_date()).await;
    assert_eq!(count(&c.db, "items"), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_two_hundred_changes_each() {
    const CLIENTS: usize = 100;
    const EACH: usize = 200;
    let server = Server::start(ITEMS, |_| {}).await;
    let url = server.url();
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let url = url.clone();
        let schema = server.schema.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::join(&url, client_db(&schema), "crowd", None).await;
            c.until(|c| c.session.joined()).await;
            // 200 changes in 10 local transactions, sent as they commit.
            for batch in 0..10 {
                insert(&c.db, &format!("c{n:03}"), batch * 20, 20);
                c.push().await;
                c.step(Duration::from_millis(1)).await.unwrap();
            }
            c.until(|c| count(&c.db, "items") == (CLIENTS * EACH) as i64 && c.session.up_to_date())
                .await;
            items(&c.db)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let room = items(&server.room_db("crowd"));
    assert_eq!(room.len(), CLIENTS * EACH);
    for r in &results {
        assert_eq!(r, &room);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_every_connection_and_checkpoints_the_rooms() {
    let mut server = Server::start(ITEMS, |c| c.dev = true).await;
    let url = server.url();
    let db = client_db(&server.schema);
    insert(&db, "s", 0, 500);
    let mut joined = Client::join(&url, db, "closing", None).await;
    joined.until(|c| c.session.up_to_date()).await;
    // A second client mid-sync: a large backlog, read one frame at a time.
    server
        .http()
        .json("POST", "/rooms/closing/seed?rows=20000&table=items")
        .await;
    let mut syncing = Client::join(&url, client_db(&server.schema), "closing", None).await;
    syncing.step(Duration::from_secs(30)).await.unwrap();
    // One connected but silent (no Hello yet), one that sent a ping only.
    let mut silent = connect(&url).await;
    let mut pinged = connect(&url).await;
    pinged.send(Message::Ping(vec![1].into())).await.unwrap();
    let data = server.data.clone();
    server.begin_stop();
    for ws in [&mut joined.ws, &mut syncing.ws, &mut silent, &mut pinged] {
        assert_eq!(expect_error(ws).await, "SHUTTING_DOWN");
    }
    let _dir = server.stopped().await;
    // Checkpointed: no WAL content left, and the file is sound with every committed row.
    let wal = data.join("closing.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    let room = open_room_file(&data, "closing");
    let ok: String = room
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    assert_eq!(count(&room, "items"), 20500);
}

#[test]
fn the_binary_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    std::fs::write(schema.join("1700000000_init.sql"), ITEMS).unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(std::process::Stdio::null())
        // Logs go to stderr.
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let code = rt.block_on(async {
        let url = format!("ws://127.0.0.1:{port}/sync");
        let mut tries = 0;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tries += 1;
            assert!(tries < 200, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let db = client_db(&schema);
        insert(&db, "x", 0, 100);
        let mut c = Client::join(&url, db, "down", None).await;
        c.until(|c| c.session.up_to_date()).await;
        // A change in flight when the signal arrives is committed or not at all.
        insert(&c.db, "x", 100, 50);
        c.push().await;
        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        expect_error(&mut c.ws).await
    });
    assert_eq!(code, "SHUTTING_DOWN");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut out = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.lines().all(|l| l.starts_with('{')), "json logs: {out}");
    assert!(
        out.contains("client joined") && out.contains("stopped"),
        "{out}"
    );
    let room = open_room_file(&data, "down");
    let ok: String = room
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let n = count(&room, "items");
    assert!(n == 100 || n == 150, "{n}");
}
