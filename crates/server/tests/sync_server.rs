//! The sync server over real WebSockets on loopback: convergence (two clients with offline
//! edits; 100 clients x 200 changes), hostile input, authentication, schema checks, dev
//! endpoints, and graceful shutdown of the built binary.

mod common;

use common::*;
use std::time::Duration;
use synqlite_core::crdt::{self, Cursor};
use synqlite_core::rusqlite::params;
use synqlite_core::sync::{Frame, Hello, SchemaId, MAGIC, PROTOCOL_VERSION};
use synqlite_server::HmacTokens;
use tokio_tungstenite::tungstenite::Message;

fn insert(db: &synqlite_core::rusqlite::Connection, prefix: &str, from: usize, n: usize) {
    db.execute_batch("BEGIN").unwrap();
    for i in from..from + n {
        db.execute(
            "INSERT INTO items (id, v) VALUES (?1, ?2)",
            params![format!("{prefix}-{i:04}"), format!("value {i}")],
        )
        .unwrap();
    }
    db.execute_batch("COMMIT").unwrap();
}

fn items(db: &synqlite_core::rusqlite::Connection) -> Vec<(String, Option<String>)> {
    let mut s = db.prepare("SELECT id, v FROM items ORDER BY id").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

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
    let Client { db: b_db, .. } = b;
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

fn hello(room: &str, schema: SchemaId) -> Hello {
    Hello {
        room: room.into(),
        site_id: [9; 16],
        schema,
        cursors: vec![],
        token: None,
        chunk_size: 1024,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_an_error_frame_and_changes_nothing() {
    let server = Server::start(ITEMS, |c| c.max_frame_bytes = 64 * 1024).await;
    let url = server.url();
    // Seed the room through a well-behaved client.
    let db = client_db(&server.schema);
    insert(&db, "ok", 0, 10);
    let mut good = Client::join(&url, db, "fuzz", None).await;
    good.until(|c| c.session.up_to_date()).await;
    let schema = synqlite_core::sync::schema_id(&good.db).unwrap();
    let before = items(&server.room_db("fuzz"));
    assert_eq!(before.len(), 10);

    // A xorshift stream for reproducible garbage.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid_hello = Frame::Hello(hello("fuzz", schema.clone())).encode();
    let mut cases: Vec<(Message, &str)> = vec![
        (Message::Binary(vec![1, 2, 3].into()), "PROTOCOL_ERROR"),
        (
            Message::Binary(vec![MAGIC, PROTOCOL_VERSION + 1, 1].into()),
            "PROTOCOL_VERSION",
        ),
        (
            Message::Binary(vec![MAGIC, PROTOCOL_VERSION, 77].into()),
            "PROTOCOL_ERROR",
        ),
        (
            Message::Binary(Frame::CaughtUp.encode().into()),
            "PROTOCOL_ERROR",
        ),
        (Message::Text("hello".into()), "PROTOCOL_ERROR"),
        (
            Message::Binary(vec![0u8; 100 * 1024].into()),
            "FRAME_TOO_LARGE",
        ),
        (
            Message::Binary(valid_hello[..valid_hello.len() - 3].to_vec().into()),
            "PROTOCOL_ERROR",
        ),
        (
            Message::Binary(
                Frame::Hello(hello("../etc", schema.clone()))
                    .encode()
                    .into(),
            ),
            "INVALID_ROOM",
        ),
        (
            Message::Binary(Frame::Hello(hello("a/b", schema.clone())).encode().into()),
            "INVALID_ROOM",
        ),
        (
            Message::Binary(
                Frame::Hello(hello(
                    "fuzz",
                    SchemaId {
                        name: "other".into(),
                        version: 1,
                    },
                ))
                .encode()
                .into(),
            ),
            "SCHEMA_MISMATCH",
        ),
    ];
    for _ in 0..40 {
        let len = (rand() % 200) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
        if rand() % 2 == 0 && b.len() > 2 {
            b[0] = MAGIC;
            b[1] = PROTOCOL_VERSION;
        }
        cases.push((Message::Binary(b.into()), ""));
    }
    for (msg, want) in cases {
        let mut ws = connect(&url).await;
        use futures_util::SinkExt;
        ws.send(msg).await.unwrap();
        let code = expect_error(&mut ws).await;
        if want.is_empty() {
            assert!(
                [
                    "PROTOCOL_ERROR",
                    "PROTOCOL_VERSION",
                    "INVALID_ROOM",
                    "SCHEMA_MISMATCH"
                ]
                .contains(&code.as_str()),
                "{code}"
            );
        } else {
            assert_eq!(code, want);
        }
    }
    // After joining: garbage, and changes for an unknown table, are refused and write nothing.
    for bad in [vec![MAGIC, PROTOCOL_VERSION, 3, 0, 0, 1, 1], {
        let mut page =
            crdt::changes_page(&good.db, Cursor::START, 100, crdt::SiteFilter::All).unwrap();
        page.changes[3].table = "nope".into();
        Frame::Changes(synqlite_core::sync::Changes {
            rows: page.changes,
            last: page.next,
        })
        .encode()
    }] {
        let mut c = Client::join(&url, client_db(&server.schema), "fuzz", None).await;
        c.until(|c| c.session.up_to_date()).await;
        send(&mut c.ws, vec![bad]).await;
        let code = expect_error(&mut c.ws).await;
        assert!(
            ["PROTOCOL_ERROR", "INVALID_CHANGE"].contains(&code.as_str()),
            "{code}"
        );
    }
    assert_eq!(items(&server.room_db("fuzz")), before);
    // The server still serves this room and others.
    insert(&good.db, "ok", 10, 1);
    good.push().await;
    let mut fresh = Client::join(&url, client_db(&server.schema), "fuzz", None).await;
    fresh.until(|c| count(&c.db, "items") == 11).await;
    let mut other = Client::join(&url, client_db(&server.schema), "other-room", None).await;
    other.until(|c| c.session.up_to_date()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_per_room() {
    let tokens = HmacTokens::new("secret");
    let server = Server::start(ITEMS, |c| {
        c.auth = std::sync::Arc::new(HmacTokens::new("secret"));
    })
    .await;
    let url = server.url();
    for token in [
        None,
        Some("garbage".to_owned()),
        Some(tokens.token_for("other", 60)),
        Some(tokens.token("private", 1)),
        Some(HmacTokens::new("wrong").token_for("private", 60)),
    ] {
        let mut c = Client::join(&url, client_db(&server.schema), "private", token).await;
        assert_eq!(expect_error(&mut c.ws).await, "UNAUTHORIZED");
    }
    let mut ok = Client::join(
        &url,
        client_db(&server.schema),
        "private",
        Some(tokens.token_for("private", 60)),
    )
    .await;
    ok.until(|c| c.session.up_to_date()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_schema_is_told_both_versions() {
    let server = Server::start(ITEMS, |_| {}).await;
    let mut db = synqlite_core::rusqlite::Connection::open_in_memory().unwrap();
    crdt::init(&mut db).unwrap();
    synqlite_core::schema::apply_migrations(
        &db,
        &[synqlite_core::schema::Migration::new(
            "1800000000_other.sql",
            ITEMS,
        )],
    )
    .unwrap();
    let mut c = Client::join(&server.url(), db, "r", None).await;
    let bytes = next_frame(&mut c.ws).await.unwrap();
    match Frame::decode(&bytes).unwrap() {
        Frame::Error(e) => {
            assert_eq!(e.code, "SCHEMA_MISMATCH");
            assert_eq!(
                e.details,
                vec![
                    (
                        "server_schema".to_owned(),
                        "migrations@1700000000".to_owned()
                    ),
                    (
                        "client_schema".to_owned(),
                        "migrations@1800000000".to_owned()
                    ),
                ]
            );
        }
        f => panic!("{f:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_endpoints_seed_and_dump_rooms() {
    let server = Server::start(ITEMS, |c| c.dev = true).await;
    let base = format!("http://{}", server.addr);
    let http = move |method: &str, path: &str| {
        let out = std::process::Command::new("node")
            .args([
                "-e",
                &format!(
                    "fetch('{base}{path}', {{ method: '{method}' }}).then(async (r) => \
                     console.log(JSON.stringify({{ s: r.status, b: await r.text() }})))"
                ),
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["s"].as_u64().unwrap(),
            v["b"].as_str().unwrap().to_owned(),
        )
    };
    let h = http.clone();
    let (s, body) =
        tokio::task::spawn_blocking(move || h("POST", "/rooms/dev/seed?rows=3000&table=items"))
            .await
            .unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, r#"{"changes":3000,"rows":3000}"#);
    let mut c = Client::join(&server.url(), client_db(&server.schema), "dev", None).await;
    c.until(|c| c.session.up_to_date()).await;
    assert_eq!(c.session.progress(), (3000, 3000));
    let (s, body) = tokio::task::spawn_blocking(move || http("GET", "/rooms/dev/rows/items"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let rows: Vec<(String, Option<String>)> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows, items(&c.db));
    server.stop().await;
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
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
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
        .stdout
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
    assert_eq!(count(&room, "items"), 100);
}
