//! Test helpers: an in-process server on a loopback port and WebSocket clients driven by the
//! core's `ClientSession` over in-memory databases.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use synqlite_core::crdt;
use synqlite_core::rusqlite::{params, Connection};
use synqlite_core::schema::apply_migrations;
use synqlite_core::sync::{ClientConfig, ClientSession, Frame};
use synqlite_server::{migrate, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ITEMS: &str =
    "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY NOT NULL, v TEXT);\n\
                         SELECT crsql_as_crr('items');\n";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running in-process server.
pub struct Server {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub schema: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server whose rooms get `migration` (one file); `tweak` adjusts the config.
    pub async fn start(migration: &str, tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema");
        std::fs::create_dir_all(&schema).unwrap();
        std::fs::write(schema.join("1700000000_init.sql"), migration).unwrap();
        Server::start_with(dir, schema, tweak).await
    }

    /// Starts a server on the repository's `schema/` folder (the demo's songs, playlists...).
    pub async fn start_repo_schema(tweak: impl FnOnce(&mut Config)) -> Server {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
        Server::start_with(tempfile::tempdir().unwrap(), schema, tweak).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        schema: PathBuf,
        tweak: impl FnOnce(&mut Config),
    ) -> Server {
        let data = dir.path().join("data");
        // Server logs in the test output when RUST_LOG is set.
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let mut config = Config::new(&data, &schema);
        // The tests read room files while the server runs.
        config.exclusive_locking = false;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            synqlite_server::serve(config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            data,
            schema,
            stop: Some(tx),
            task,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// Shuts the server down gracefully and waits until `serve` returned.
    pub async fn stop(mut self) {
        self.begin_stop();
        (&mut self.task).await.unwrap();
    }

    /// Resolves the server's shutdown future (see [`Server::stop`]).
    pub fn begin_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Waits until `serve` returned (after [`Server::begin_stop`]); the returned folder keeps
    /// the data and schema until dropped.
    pub async fn stopped(mut self) -> tempfile::TempDir {
        (&mut self.task).await.unwrap();
        self._dir
    }

    pub fn http(&self) -> Http {
        Http(self.addr)
    }

    /// Opens the room's database file directly (read-only use in tests).
    pub fn room_db(&self, room: &str) -> Connection {
        open_room_file(&self.data, room)
    }
}

pub fn open_room_file(data: &Path, room: &str) -> Connection {
    let mut c = Connection::open(data.join(format!("{room}.db"))).unwrap();
    crdt::init(&mut c).unwrap();
    c
}

/// An in-memory client database with the server's migrations.
pub fn client_db(schema: &Path) -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    apply_migrations(&c, &migrate::load_dir(schema).unwrap()).unwrap();
    c
}

pub fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Next binary frame, or `None` when the connection closed.
pub async fn next_frame(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads until the server sends an error frame; returns its code (and checks the close).
pub async fn expect_error(ws: &mut Ws) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(20), next_frame(ws)).await {
            Ok(Some(b)) => {
                if let Ok(Frame::Error(e)) = Frame::decode(&b) {
                    // The connection closes after the error frame.
                    let closed =
                        tokio::time::timeout(Duration::from_secs(10), next_frame(ws)).await;
                    assert!(
                        matches!(closed, Ok(None)),
                        "connection still open after {}",
                        e.code
                    );
                    return e.code;
                }
            }
            Ok(None) => panic!("closed without an error frame"),
            Err(_) => break,
        }
    }
    panic!("no error frame");
}

pub async fn send(ws: &mut Ws, frames: Vec<Vec<u8>>) {
    for f in frames {
        ws.send(Message::Binary(f.into())).await.unwrap();
    }
}

/// A syncing client: its database, session and socket.
pub struct Client {
    pub db: Connection,
    pub session: ClientSession,
    pub ws: Ws,
}

impl Client {
    pub async fn join(url: &str, db: Connection, room: &str, token: Option<String>) -> Client {
        let mut cfg = ClientConfig::new(room);
        cfg.token = token;
        let mut session = ClientSession::new(cfg);
        let mut ws = connect(url).await;
        let hello = session.hello(&db).unwrap();
        send(&mut ws, vec![hello]).await;
        Client { db, session, ws }
    }

    /// Handles the next frame (error if the server sent an error frame or closed); waits at
    /// most `wait` for it.
    pub async fn step(&mut self, wait: Duration) -> Result<(), String> {
        // Only the read is cancelled by the timeout (it is cancel-safe); replies are always sent.
        let Ok(next) = tokio::time::timeout(wait, next_frame(&mut self.ws)).await else {
            return Ok(());
        };
        let Some(bytes) = next else {
            return Err("closed".into());
        };
        let out = self
            .session
            .handle(&self.db, &bytes)
            .map_err(|e| format!("{}: {e}", e.code()))?;
        send(&mut self.ws, out.send).await;
        Ok(())
    }

    /// Pumps local changes to the server.
    pub async fn push(&mut self) {
        let frames = self.session.pump(&self.db).unwrap();
        send(&mut self.ws, frames).await;
    }

    /// Steps until `done(self)` holds (deadline 120 s).
    pub async fn until(&mut self, mut done: impl FnMut(&Client) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "client did not reach the expected state in time"
            );
            if let Err(e) = self.step(left.min(Duration::from_millis(200))).await {
                panic!("client failed: {e}");
            }
        }
    }
}

/// A minimal HTTP/1.1 client for the server's plain endpoints (one request per connection).
#[derive(Clone, Copy)]
pub struct Http(pub SocketAddr);

impl Http {
    /// `(status, body)` of `method path`; extra request headers as `name: value` lines.
    pub async fn request(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let (status, _, body) = self.request_full(method, path, headers).await;
        (status, body)
    }

    /// `(status, response headers lower-cased, body)`.
    pub async fn request_full(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.0).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.0
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let head = head.to_ascii_lowercase();
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, head, body)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[]).await
    }

    pub async fn post(&self, path: &str) -> (u16, String) {
        self.request("POST", path, &[]).await
    }

    /// The JSON body of a successful request.
    pub async fn json(&self, method: &str, path: &str) -> serde_json::Value {
        let (status, body) = self.request(method, path, &[]).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// Inserts rows `<prefix>-<from..from+n>` into `items` in one transaction.
pub fn insert(db: &synqlite_core::rusqlite::Connection, prefix: &str, from: usize, n: usize) {
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

pub fn items(db: &synqlite_core::rusqlite::Connection) -> Vec<(String, Option<String>)> {
    let mut s = db.prepare("SELECT id, v FROM items ORDER BY id").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
