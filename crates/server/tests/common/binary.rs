//! The real `synqlite-server` binary on a loopback port, for the attack regression tests
//! (`tests/attacks_*.rs`, which include this file next to `common`):
//!
//! - [`Bin`]: the binary spawned with a temp data folder (and a one-table schema unless told
//!   otherwise), ready once `GET /healthz` answers 200; its memory (`VmRSS`, `VmHWM`) and open
//!   file descriptors read from `/proc/<pid>/`, its stdout and stderr captured (ANSI colors
//!   stripped; the server logs to stdout, `tracing_subscriber::fmt`'s default);
//!   stopped with SIGTERM by [`Bin::stop`] (then the room files can be opened) or killed when
//!   dropped.
//! - [`Raw`]: a hand-rolled WebSocket client over a plain TCP stream, to send what a
//!   well-behaved library will not: frames that are announced and never sent, trickled bytes,
//!   fragments, and arbitrary upgrade headers (`Origin`). Its frames are masked with a zero
//!   key, so payloads go out as they are.
//! - Frame helpers: a Hello made by a real `ClientSession` and then tampered with, `Changes`
//!   frames of hand-made rows, the 15 MiB pre-auth bomb.
#![allow(dead_code)]

use crate::common::{client_db, Http, ITEMS};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synqlite_core::crdt::{self, Change, Cursor};
use synqlite_core::rusqlite::Connection;
use synqlite_core::sync::{
    Changes, ClientConfig, ClientSession, Frame, Hello, Welcome, MAGIC, MAX_VERSION,
    PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// Resident set now.
    pub rss_kib: u64,
    /// Peak resident set since the process started.
    pub hwm_kib: u64,
}

impl Mem {
    pub fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
}

/// A running `synqlite-server` binary.
pub struct Bin {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub schema: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    dir: Option<tempfile::TempDir>,
}

/// A stopped server: its folders (removed when this is dropped) and what it wrote.
pub struct Stopped {
    pub data: PathBuf,
    pub schema: PathBuf,
    pub stdout: String,
    pub stderr: String,
    /// Whether it exited by itself (within 30 s of SIGTERM).
    pub exited: bool,
    _dir: tempfile::TempDir,
}

impl Stopped {
    /// Opens a room's database file (the server is gone: nothing else holds it).
    pub fn room_db(&self, room: &str) -> Connection {
        crate::common::open_room_file(&self.data, room)
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Collects the lines of `pipe` (ANSI colors stripped) on a thread.
fn capture(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&strip_ansi(&line));
            s.push('\n');
        }
    });
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` without panicking (the server may not be up yet).
async fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_owned();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

impl Bin {
    /// The binary with a schema of one table (`items`, see `common::ITEMS`) and `args`.
    pub async fn start(args: &[&str]) -> Bin {
        Bin::start_with(None, args).await
    }

    /// The binary with the repository's `schema/` folder (`None`: one `items` table) and
    /// `args` (`--data`, `--schema`, `--listen` are added).
    pub async fn start_with(schema: Option<&Path>, args: &[&str]) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let schema = match schema {
            Some(s) => s.to_owned(),
            None => {
                let s = dir.path().join("schema");
                std::fs::create_dir_all(&s).unwrap();
                std::fs::write(s.join("1700000000_init.sql"), ITEMS).unwrap();
                s
            }
        };
        Bin::launch(dir, data, schema, args).await
    }

    /// The binary again over the folders of a stopped one.
    pub async fn restart(stopped: Stopped, args: &[&str]) -> Bin {
        Bin::launch(stopped._dir, stopped.data, stopped.schema, args).await
    }

    /// SIGKILL (a crash): the room files stay as the process left them.
    pub async fn kill(mut self) -> Stopped {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        self.stopped(false).await
    }

    /// What is left of the exited process (after its output pipes drained).
    async fn stopped(mut self, exited: bool) -> Stopped {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Stopped {
            data: self.data.clone(),
            schema: self.schema.clone(),
            stdout: self.stdout(),
            stderr: self.stderr(),
            exited,
            _dir: self.dir.take().unwrap(),
        }
    }

    async fn launch(dir: tempfile::TempDir, data: PathBuf, schema: PathBuf, args: &[&str]) -> Bin {
        let mut last_err = String::new();
        // A port picked here may be taken by someone else before the server binds it: retry.
        for _ in 0..5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
                .arg("--data")
                .arg(&data)
                .arg("--schema")
                .arg(&schema)
                .arg("--listen")
                .arg(addr.to_string())
                .args(args)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .env_remove("SYNQLITE_TOKEN_SECRET")
                .env_remove("SYNQLITE_JWT_SECRET")
                .env_remove("SYNQLITE_JWT_JWKS")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the synqlite-server binary starts");
            let stdout = capture(child.stdout.take().unwrap());
            let stderr = capture(child.stderr.take().unwrap());
            let pid = child.id();
            let mut bin = Bin {
                child: Some(child),
                pid,
                addr,
                data: data.clone(),
                schema: schema.clone(),
                stdout,
                stderr,
                dir: None,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some((200, _)) = try_get(addr, "/healthz").await {
                    bin.dir = Some(dir);
                    // The readiness probe's connection is released by the server at once, but
                    // give it a moment so per-address caps start from zero.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return bin;
                }
                let exited = bin.child.as_mut().unwrap().try_wait().unwrap().is_some();
                if exited || Instant::now() > deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    last_err = bin.log();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(bin);
            if !last_err.contains("cannot listen") {
                break;
            }
        }
        panic!("synqlite-server did not start:\n{last_err}");
    }

    pub fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    pub fn http(&self) -> Http {
        Http(self.addr)
    }

    /// Everything the server wrote to stderr so far (without ANSI colors).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the server wrote to stdout so far (without ANSI colors).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Its log: stdout then stderr.
    pub fn log(&self) -> String {
        self.stdout() + &self.stderr()
    }

    /// Waits up to `wait` for the log (stdout or stderr) to contain `needle`.
    pub async fn log_contains(&self, needle: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `VmRSS` and `VmHWM` from `/proc/<pid>/status`.
    pub fn mem(&self) -> Mem {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{}/status", self.pid))
        };
        Mem {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }

    /// Open file descriptors (entries of `/proc/<pid>/fd`).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .count()
    }

    /// Open sockets among the file descriptors.
    pub fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits up to `wait` until `cond(self)` holds; returns whether it did.
    pub async fn wait_for(&self, wait: Duration, mut cond: impl FnMut(&Bin) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/healthz` as JSON.
    pub async fn health(&self) -> serde_json::Value {
        let (status, body) = try_get(self.addr, "/healthz")
            .await
            .expect("/healthz answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGTERM, then waits (30 s at most, then SIGKILL) for the process to exit; the room
    /// files stay readable until the returned [`Stopped`] is dropped.
    pub async fn stop(mut self) -> Stopped {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = false;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
        self.stopped(exited).await
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// --- Frames.

/// The Hello a real client session sends for `db` in `room` with `token`, tampered with by
/// `tweak` (site id, schema, room...).
pub fn hello_bytes(
    db: &Connection,
    room: &str,
    token: Option<String>,
    tweak: impl FnOnce(&mut Hello),
) -> Vec<u8> {
    // Room and token are set after decoding: hostile ones are beyond what the decoder accepts.
    let bytes = ClientSession::new(ClientConfig::new("r"))
        .hello(db)
        .unwrap();
    let Frame::Hello(mut h) = Frame::decode(&bytes).unwrap() else {
        unreachable!("a hello");
    };
    h.room = room.to_owned();
    h.token = token;
    tweak(&mut h);
    Frame::Hello(h).encode()
}

/// A `Changes` frame of `rows` ending at `last`.
pub fn changes_frame(rows: Vec<Change>, last: Cursor) -> Vec<u8> {
    Frame::Changes(Changes { rows, last }).encode()
}

/// An empty `Changes` frame claiming `last`.
pub fn empty_changes(last: Cursor) -> Vec<u8> {
    changes_frame(Vec::new(), last)
}

/// The cursor `(2^53-1, 2^40)`: as far as the protocol lets a peer claim.
pub const FAR: Cursor = Cursor {
    db_version: MAX_VERSION,
    seq: 1 << 40,
};

/// Every change row of `db`.
pub fn all_rows(db: &Connection) -> Vec<Change> {
    crdt::changes_page(db, Cursor::START, 100_000, crdt::SiteFilter::All)
        .unwrap()
        .changes
}

/// A fresh client database (the server's schema) with `items` rows `id = v`.
pub fn db_with(schema: &Path, rows: &[(&str, &str)]) -> Connection {
    let db = client_db(schema);
    for (id, v) in rows {
        db.execute(
            "INSERT INTO items (id, v) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET v = ?2",
            [id, v],
        )
        .unwrap();
    }
    db
}

/// The `Welcome` in `bytes` (panics on anything else, with the error frame's text).
pub fn welcome(bytes: &[u8]) -> Welcome {
    match Frame::decode(bytes).unwrap() {
        Frame::Welcome(w) => w,
        f => panic!("expected a welcome, got {f:?}"),
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Issue 11's pre-auth bomb: a `Changes` frame of about `bytes` bytes whose dictionary holds one
/// 1 KiB table name and whose rows are 9 bytes each, all naming that table (a decoder that
/// copies the name per row allocates ~115 times the frame).
pub fn changes_bomb(bytes: usize) -> Vec<u8> {
    let mut f = vec![MAGIC, PROTOCOL_VERSION, 3];
    varint(&mut f, 0); // last.db_version
    varint(&mut f, 0); // last.seq
    varint(&mut f, 1); // tables
    varint(&mut f, 1024);
    f.extend(std::iter::repeat_n(b't', 1024));
    varint(&mut f, 1); // columns
    varint(&mut f, 1);
    f.push(b'v');
    varint(&mut f, 1); // site ids
    varint(&mut f, 16);
    f.extend([7u8; 16]);
    let rows = (bytes - f.len() - 4) / 9;
    varint(&mut f, rows as u64);
    // table 0, empty pk, column 0, NULL, col_version 0, db_version 0, site 0, cl 0, seq 0
    let row = [0u8; 9];
    f.reserve(rows * 9);
    for _ in 0..rows {
        f.extend_from_slice(&row);
    }
    f
}

/// The longest run of `c` in `s`.
pub fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        if x == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

// --- A raw WebSocket client.

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// The header of a masked client frame of `len` payload bytes (mask key 0: the payload goes
/// out unchanged).
pub fn ws_header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut h = vec![(if fin { 0x80 } else { 0 }) | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend((len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend(len.to_be_bytes());
    }
    h.extend([0, 0, 0, 0]);
    h
}

/// The upgrade request of `/sync` with extra `headers` (`name: value`).
pub fn upgrade_request(addr: SocketAddr, headers: &[&str]) -> String {
    let mut req = format!(
        "GET /sync HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// What the next read gave.
#[derive(Debug)]
pub enum Got {
    /// A whole frame: opcode and payload.
    Frame(u8, Vec<u8>),
    /// The connection closed (EOF or an error).
    Closed,
    /// Nothing within the wait.
    Timeout,
}

/// The reading half of a raw WebSocket: frames from the server (never masked, never
/// fragmented by this server).
pub struct FrameReader {
    r: OwnedReadHalf,
    buf: Vec<u8>,
    eof: bool,
}

impl FrameReader {
    fn parse(&mut self) -> Option<(u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10),
            126 | 127 => return None,
            n => (u64::from(n), 2),
        };
        if masked {
            at += 4;
        }
        let end = at + len as usize;
        if b.len() < end {
            return None;
        }
        let payload = b[at..end].to_vec();
        self.buf.drain(..end);
        Some((opcode, payload))
    }

    /// The next frame within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Got {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((op, p)) = self.parse() {
                return Got::Frame(op, p);
            }
            if self.eof {
                return Got::Closed;
            }
            let mut tmp = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.r.read(&mut tmp)).await {
                Err(_) => return Got::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// The next binary message within `wait` (pings and pongs skipped); `None` when the
    /// connection closed (close frame or EOF); panics after `wait`.
    pub async fn binary(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Got::Frame(OP_BINARY, p) => return Some(p),
                Got::Frame(OP_CLOSE, _) | Got::Closed => return None,
                Got::Frame(..) => continue,
                Got::Timeout => panic!("no frame from the server within {wait:?}"),
            }
        }
    }

    /// Reads until the server ends the connection (within `wait`, else panics); returns the
    /// code of the error frame it sent first, if any.
    pub async fn until_closed(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut code = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Got::Frame(OP_BINARY, p) => {
                    if let Ok(Frame::Error(e)) = Frame::decode(&p) {
                        code.get_or_insert(e.code);
                    }
                }
                Got::Frame(OP_CLOSE, _) | Got::Closed => return code,
                Got::Frame(..) => {}
                Got::Timeout => panic!(
                    "the server did not close the connection within {wait:?} (error: {code:?})"
                ),
            }
        }
    }
}

/// A raw WebSocket connection to `/sync`.
pub struct Raw {
    pub rd: FrameReader,
    pub wr: OwnedWriteHalf,
}

/// The status line's code and the whole head of an HTTP response read from `s` (up to the
/// blank line; what follows stays in `rest`).
async fn read_head(s: &mut OwnedReadHalf, rest: &mut Vec<u8>) -> Option<(u16, String)> {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(at) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..at]).into_owned();
            rest.drain(..at + 4);
            let status = head.split(' ').nth(1)?.parse().ok()?;
            return Some((status, head));
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        rest.extend_from_slice(&tmp[..n]);
    }
}

impl Raw {
    /// Upgrades a new connection to `/sync` with extra request `headers`; `Err((status, head
    /// and body))` when the server answers anything but `101` (status 0: no answer).
    pub async fn connect(addr: SocketAddr, headers: &[&str]) -> Result<Raw, (u16, String)> {
        let s = TcpStream::connect(addr).await.unwrap();
        Raw::upgrade(s, addr, headers).await
    }

    /// Upgrades `s` (connected to `addr`).
    pub async fn upgrade(
        s: TcpStream,
        addr: SocketAddr,
        headers: &[&str],
    ) -> Result<Raw, (u16, String)> {
        let (mut r, mut w) = s.into_split();
        w.write_all(upgrade_request(addr, headers).as_bytes())
            .await
            .map_err(|e| (0, e.to_string()))?;
        let mut rest = Vec::new();
        let got = tokio::time::timeout(Duration::from_secs(20), read_head(&mut r, &mut rest))
            .await
            .map_err(|_| (0, "no answer to the upgrade".to_owned()))?;
        let Some((status, head)) = got else {
            return Err((0, "closed before answering the upgrade".into()));
        };
        if status != 101 {
            let mut body = rest;
            let _ = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut body)).await;
            return Err((
                status,
                format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body)),
            ));
        }
        Ok(Raw {
            rd: FrameReader {
                r,
                buf: rest,
                eof: false,
            },
            wr: w,
        })
    }

    /// Sends one whole binary message.
    pub async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        send_ws(&mut self.wr, OP_BINARY, true, payload).await
    }

    /// Sends `hello` and returns the `Welcome` (panics on anything else).
    pub async fn join(&mut self, hello: &[u8]) -> Welcome {
        self.send(hello).await.unwrap();
        let first = self
            .rd
            .binary(Duration::from_secs(30))
            .await
            .expect("a welcome, not a close");
        welcome(&first)
    }
}

/// Writes one masked frame (zero mask key).
pub async fn send_ws(
    w: &mut OwnedWriteHalf,
    opcode: u8,
    fin: bool,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut f = ws_header(opcode, fin, payload.len() as u64);
    f.extend_from_slice(payload);
    w.write_all(&f).await
}
