//! The `--dev` HTTP endpoints (seed, rows, stats), `/healthz`, and the `seed` subcommand,
//! checked against what a syncing client ends up with.

mod common;

use common::*;
use serde_json::{json, Value};
use synqlite_core::rusqlite::types::ValueRef;
use synqlite_core::rusqlite::Connection;

/// A table's rows as the rows endpoint shapes them (arrays by primary key, BLOBs as hex).
fn rows_as_json(db: &Connection, table: &str, order: &str) -> Value {
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
        .unwrap();
    let n = stmt.column_count();
    let mut out = Vec::new();
    let mut rows = stmt.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        out.push(Value::Array(
            (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => json!(v),
                    ValueRef::Real(v) => json!(v),
                    ValueRef::Text(t) => json!(std::str::from_utf8(t).unwrap()),
                    ValueRef::Blob(b) => {
                        json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                    }
                })
                .collect(),
        ));
    }
    Value::Array(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_songs_sync_to_a_client_and_match_the_rows_endpoint() {
    let server = Server::start_repo_schema(|c| c.dev = true).await;
    let http = server.http();
    let (status, body) = http.get("/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    // No tokens required: said loudly.
    assert_eq!(health["auth"], "off");
    assert!(health["warning"].as_str().unwrap().contains("anyone"));
    // 12,345 songs: three transactions of 5,000 rows and a partial one.
    let seeded = http.json("POST", "/rooms/lib/seed?rows=12345").await;
    assert_eq!(seeded["rows"], 12345);
    let changes = seeded["changes"].as_u64().unwrap();
    assert!(changes >= 12345 * 5, "{seeded}");
    let stats = http.json("GET", "/rooms/lib/stats").await;
    assert_eq!(stats["changes"], changes);
    assert_eq!(stats["tables"]["songs"], 12345);
    assert_eq!(stats["tables"]["playlists"], 0);
    assert_eq!(stats["site_id"].as_str().unwrap().len(), 32);

    let mut c = Client::join(&server.url(), client_db(&server.schema), "lib", None).await;
    c.until(|c| c.session.up_to_date()).await;
    assert_eq!(c.session.progress(), (changes, changes));
    assert_eq!(count(&c.db, "songs"), 12345);
    // Every seeded song has its five columns set, and ids are unique.
    let (distinct, with_metadata): (i64, i64) =
        c.db.query_row(
            "SELECT count(DISTINCT id), count(*) FILTER (WHERE title LIKE 'Song %' AND \
             artist LIKE 'Artist %' AND album LIKE 'Album %' AND seconds >= 60 AND \
             json_extract(metadata, '$.genre') IS NOT NULL) FROM songs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((distinct, with_metadata), (12345, 12345));
    let rows = http.json("GET", "/rooms/lib/rows/songs").await;
    assert_eq!(rows, rows_as_json(&c.db, "songs", "id"));

    // A second seeding while the client is connected reaches it live, with new ids.
    let again = http.json("POST", "/rooms/lib/seed?rows=10").await;
    assert_eq!(again["rows"], 10);
    c.until(|c| count(&c.db, "songs") == 12355).await;

    // BLOBs come back as hex; composite primary keys order the rows.
    c.db.execute_batch(
        "INSERT INTO media_blobs (sha256, mime, size, data) VALUES \
         (printf('%064d', 1), 'image/png', 3, x'00ff10'); \
         INSERT INTO playlist_items (playlist_id, song_id, position) VALUES \
         ('p2', 's1', 1.5), ('p1', 's2', 2.0), ('p1', 's1', 3.25);",
    )
    .unwrap();
    c.push().await;
    c.until(|c| c.session.up_to_date()).await;
    // Acks come after the room's commit: the room holds the upload now.
    let stats = http.json("GET", "/rooms/lib/stats").await;
    assert_eq!(stats["tables"]["playlist_items"], 3);
    assert_eq!(stats["tables"]["media_blobs"], 1);
    let blobs = http.json("GET", "/rooms/lib/rows/media_blobs").await;
    assert_eq!(blobs[0][3], "00ff10");
    assert_eq!(blobs, rows_as_json(&c.db, "media_blobs", "sha256"));
    let items = http.json("GET", "/rooms/lib/rows/playlist_items").await;
    assert_eq!(
        items,
        rows_as_json(&c.db, "playlist_items", "playlist_id, song_id")
    );
    assert_eq!(items[0][0], "p1");
    assert_eq!(items[0][1], "s1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_endpoints_refuse_bad_input_and_exist_only_with_dev() {
    let server = Server::start(ITEMS, |c| c.dev = true).await;
    let http = server.http();
    let code = |body: &str| {
        serde_json::from_str::<Value>(body).unwrap()["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (s, body) = http.post("/rooms/a..b/seed?rows=1").await;
    assert_eq!((s, code(&body).as_str()), (400, "INVALID_ROOM"));
    let (s, body) = http.post("/rooms/r/seed?rows=-1").await;
    assert_eq!((s, code(&body).as_str()), (400, "INVALID_ARGUMENT"));
    let (s, body) = http.post("/rooms/r/seed?rows=99999999").await;
    assert_eq!((s, code(&body).as_str()), (400, "INVALID_ARGUMENT"));
    let (s, body) = http.post("/rooms/r/seed?rows=1&table=nope").await;
    assert_eq!((s, code(&body).as_str()), (400, "INVALID_ARGUMENT"));
    let (s, body) = http.get("/rooms/r/rows/items__crsql_clock").await;
    assert_eq!((s, code(&body).as_str()), (400, "INVALID_ARGUMENT"));
    // Any table: a value per column type.
    let seeded = http
        .json("POST", "/rooms/r/seed?rows=3000&table=items")
        .await;
    assert_eq!(seeded, json!({ "rows": 3000, "changes": 3000 }));
    let rows = http.json("GET", "/rooms/r/rows/items").await;
    assert_eq!(rows.as_array().unwrap().len(), 3000);
    // CORS for the browser demo.
    let (s, head, _) = http
        .request_full("GET", "/rooms/r/stats", &["Origin: http://localhost:5173"])
        .await;
    assert_eq!(s, 200);
    assert!(head.contains("access-control-allow-origin"), "{head}");
    server.stop().await;

    let plain = Server::start(ITEMS, |_| {}).await;
    let http = plain.http();
    assert_eq!(http.get("/healthz").await.0, 200);
    assert_eq!(http.post("/rooms/r/seed?rows=1").await.0, 404);
    assert_eq!(http.get("/rooms/r/stats").await.0, 404);
    let (_, head, _) = http
        .request_full("GET", "/healthz", &["Origin: http://localhost:5173"])
        .await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_subcommand_fills_a_room_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args(["seed", "--data", data.to_str().unwrap()])
        .args(["--schema", schema.to_str().unwrap(), "--room", "offline"])
        .args(["--rows", "7000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("seeded 7000 rows into room offline"),
        "{printed}"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args(["seed", "--data", data.to_str().unwrap()])
        .args(["--schema", schema.to_str().unwrap(), "--room", "../x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid room name"));
    // A server on that data folder serves the rows.
    let mut config = synqlite_server::Config::new(&data, &schema);
    config.dev = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(synqlite_server::serve(config, listener, async {
        let _ = rx.await;
    }));
    let mut c = Client::join(
        &format!("ws://{addr}/sync"),
        client_db(&schema),
        "offline",
        None,
    )
    .await;
    c.until(|c| c.session.up_to_date()).await;
    assert_eq!(count(&c.db, "songs"), 7000);
    let stats = Http(addr).json("GET", "/rooms/offline/stats").await;
    assert_eq!(stats["tables"]["songs"], 7000);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
