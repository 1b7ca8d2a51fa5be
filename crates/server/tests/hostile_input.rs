//! Hostile and refused clients over real WebSockets: malformed, truncated, oversized, text and
//! wrong-version frames, frames out of place, invalid change rows, bad room names, missing,
//! forged and expired tokens, another schema, no Hello in time. Each gets an error frame with
//! its stable code and a closed connection; nothing is written; the server keeps serving.

mod common;

use common::*;
use futures_util::SinkExt;
use synqlite_core::crdt::{self, Cursor};
use synqlite_core::sync::{Frame, Hello, SchemaId, MAGIC, PROTOCOL_VERSION};
use synqlite_server::HmacTokens;
use tokio_tungstenite::tungstenite::Message;

fn hello(room: &str, schema: SchemaId) -> Hello {
    Hello {
        room: room.into(),
        site_id: [9; 16],
        schema,
        head: 0,
        cursors: vec![],
        token: None,
        chunk_size: 1024,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_an_error_frame_and_changes_nothing() {
    let server = Server::start(ITEMS, |c| {
        c.limits.max_frame_bytes = 64 * 1024;
        // Dozens of faults from one address would ban it (attacks_repeat.rs): off here.
        c.limits.ban_after_faults = 0;
    })
    .await;
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
            Message::Binary(Frame::Hello(hello("", schema.clone())).encode().into()),
            "INVALID_ROOM",
        ),
        (
            Message::Binary(Frame::Hello(hello("..", schema.clone())).encode().into()),
            "INVALID_ROOM",
        ),
        (
            Message::Binary(Frame::Ack(Cursor::START).encode().into()),
            "PROTOCOL_ERROR",
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
async fn a_client_must_say_hello_in_time() {
    let server = Server::start(ITEMS, |c| {
        c.limits.hello_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    // Silent: refused once the Hello timeout passes.
    let mut silent = connect(&server.url()).await;
    assert_eq!(expect_error(&mut silent).await, "PROTOCOL_ERROR");
    // Pings before the Hello are fine (answered by the WebSocket layer).
    let mut db_client = Client {
        db: client_db(&server.schema),
        session: synqlite_core::sync::ClientSession::new(synqlite_core::sync::ClientConfig::new(
            "pings",
        )),
        ws: connect(&server.url()).await,
    };
    db_client
        .ws
        .send(Message::Ping(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let hello = db_client.session.hello(&db_client.db).unwrap();
    send(&mut db_client.ws, vec![hello]).await;
    db_client.until(|c| c.session.up_to_date()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_frame_ends_its_connection_only() {
    let server = Server::start(ITEMS, |_| {}).await;
    let db = client_db(&server.schema);
    insert(&db, "e", 0, 5);
    let mut c = Client::join(&server.url(), db, "errs", None).await;
    c.until(|c| c.session.up_to_date()).await;
    let bye = Frame::Error(synqlite_core::sync::ErrorFrame {
        code: "STORAGE_UNAVAILABLE".into(),
        message: "the client gives up".into(),
        retryable: false,
        details: vec![],
    })
    .encode();
    send(&mut c.ws, vec![bye]).await;
    // The server closes without an error frame of its own.
    assert_eq!(next_frame(&mut c.ws).await, None);
    let mut other = Client::join(&server.url(), client_db(&server.schema), "errs", None).await;
    other.until(|c| count(&c.db, "items") == 5).await;
    server.stop().await;
}
