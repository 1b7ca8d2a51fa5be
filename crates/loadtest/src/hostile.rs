//! Hostile connections (`--scenario hostile`): connection `i` repeats misbehaviour
//! `MODES[i % MODES.len()]`, reconnecting whenever the server (or the misbehaviour's time
//! limit) ends a connection, until the run stops; so every misbehaviour keeps a constant share
//! of the hostile connections (a slowloris holds its connection for 40 s, a garbage frame is
//! closed at once and sent again). They run on a thread and runtime of their own so they cannot starve the honest
//! clients' runtime (they still compete with everything for the CPU). Against a loopback server
//! each connects from an address of its own (`127.1.x.y`), as attackers on other hosts would,
//! so the server's per-address defences see them apart from the honest clients.

use crate::client::{connect_from, tcp_from};
use crate::proto::{self, Incoming, Schema};
use crate::sys::Rng;
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// The misbehaviours; connection `i` does the `i % 12`-th.
pub const MODES: [&str; 12] = [
    "garbage-first-frame",
    "truncated-hello",
    "wrong-schema-hello",
    "invalid-room-hello",
    "text-first",
    "oversized-frame",
    "garbage-after-join",
    "text-after-join",
    "empty-changes-spam",
    "ack-spam",
    "slowloris",
    "silent-no-hello",
];

/// How long a spam or slowloris connection goes on before it gives up by itself.
const SPAM_SECS: u64 = 5;
const SLOWLORIS_SECS: u64 = 40;
/// How long we wait for the server to close after a bad frame.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// What happened to the connections of one misbehaviour.
#[derive(Debug, Default, Clone)]
pub struct ModeStats {
    /// Connections attempted.
    pub connections: u64,
    /// Connections the server closed (after an error frame or not).
    pub closed_by_server: u64,
    /// Connections we ended ourselves (time limit or end of run) while still open.
    pub ended_by_us: u64,
    /// Connections that could not be opened.
    pub connect_failed: u64,
    /// Error codes of the error frames received.
    pub codes: BTreeMap<String, u64>,
    /// Frames sent (spam modes).
    pub frames_sent: u64,
}

/// All hostile connections' outcomes, by mode.
pub type HostileStats = Arc<Mutex<BTreeMap<&'static str, ModeStats>>>;

/// Where the hostile connections go.
pub struct Target {
    /// `ws://host/sync`.
    pub url: String,
    /// Host and port (slowloris).
    pub addr: SocketAddr,
    /// The rooms' schema (hostiles that join first).
    pub schema: Schema,
    /// The rooms (hostiles join the honest clients' rooms).
    pub rooms: Vec<String>,
    /// Token per room.
    pub tokens: Vec<Option<String>>,
    /// Size of the oversized frame.
    pub frame_bytes: usize,
}

impl Target {
    /// The local address hostile connection `i` connects from: its own `127.1.x.y` when the
    /// server is on IPv4 loopback, else the default.
    fn source(&self, i: usize) -> IpAddr {
        match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => {
                IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, 1 + (i % 250) as u8))
            }
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    async fn connect(&self, i: usize) -> Result<crate::client::Ws, String> {
        connect_from(&self.url, self.addr, self.source(i)).await
    }
}

enum End {
    /// The server closed it; the error code it sent, if any.
    Server(Option<String>),
    /// We stopped (time limit, end of run).
    Us,
    /// Could not connect.
    NoConnect,
}

/// Runs `k` hostile loops until `stop`; returns their statistics.
pub async fn run(target: Arc<Target>, k: usize, stop: watch::Receiver<bool>) -> HostileStats {
    let stats: HostileStats = Arc::default();
    let big = Bytes::from(Rng::new().bytes(target.frame_bytes));
    let mut tasks = Vec::new();
    for i in 0..k {
        let (target, stats, big, mut stop) =
            (target.clone(), stats.clone(), big.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new();
            let mode = i % MODES.len();
            let room = i % target.rooms.len();
            while !*stop.borrow() {
                let name = MODES[mode];
                let mut sent = 0u64;
                let end = tokio::select! {
                    e = one(&target, i, name, room, &big, &mut rng, &mut sent) => e,
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => End::Us,
                };
                {
                    let mut st = stats.lock().unwrap();
                    let m = st.entry(name).or_default();
                    m.connections += 1;
                    m.frames_sent += sent;
                    match end {
                        End::Server(ref code) => {
                            m.closed_by_server += 1;
                            if let Some(c) = code.clone() {
                                *m.codes.entry(c).or_default() += 1;
                            }
                        }
                        End::Us => m.ended_by_us += 1,
                        End::NoConnect => m.connect_failed += 1,
                    }
                }
                // Reconnect at once, but never spin.
                let pause = if matches!(end, End::NoConnect) {
                    200
                } else {
                    10
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
}

/// Reads until the server closes (`End::Server` with the last error code seen) or `wait`
/// passes (`End::Us`).
async fn until_closed(ws: &mut crate::client::Ws, wait: Duration) -> End {
    let mut code = None;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return End::Us,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return End::Server(code),
            Ok(Some(Ok(Message::Binary(b)))) => {
                if let Ok(Incoming::Error { code: c, .. }) = proto::decode(&b) {
                    code = Some(c);
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Joins `room` properly (Hello, then waits for Welcome).
async fn join(
    target: &Target,
    i: usize,
    room: usize,
    rng: &mut Rng,
) -> Result<crate::client::Ws, End> {
    let mut ws = target.connect(i).await.map_err(|_| End::NoConnect)?;
    let hello = proto::hello(
        &target.rooms[room],
        rng.site(),
        &target.schema,
        target.tokens[room].as_deref(),
    );
    if ws.send(Message::Binary(hello.into())).await.is_err() {
        return Err(End::Server(None));
    }
    loop {
        match tokio::time::timeout(CLOSE_WAIT, ws.next()).await {
            Err(_) => return Err(End::Us),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Err(End::Server(None)),
            Ok(Some(Ok(Message::Binary(b)))) => match proto::decode(&b) {
                Ok(Incoming::Welcome { .. }) => return Ok(ws),
                Ok(Incoming::Error { code, .. }) => return Err(End::Server(Some(code))),
                _ => {}
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn send_then_wait(ws: &mut crate::client::Ws, msg: Message) -> End {
    if ws.send(msg).await.is_err() {
        return End::Server(None);
    }
    until_closed(ws, CLOSE_WAIT).await
}

/// One hostile connection.
async fn one(
    target: &Target,
    i: usize,
    mode: &str,
    room: usize,
    big: &Bytes,
    rng: &mut Rng,
    sent: &mut u64,
) -> End {
    match mode {
        "slowloris" => return slowloris(target.addr, target.source(i)).await,
        "garbage-first-frame"
        | "truncated-hello"
        | "wrong-schema-hello"
        | "invalid-room-hello"
        | "text-first"
        | "silent-no-hello" => {
            let Ok(mut ws) = target.connect(i).await else {
                return End::NoConnect;
            };
            let msg = match mode {
                "garbage-first-frame" => {
                    let n = 1 + (rng.next_u64() % 4096) as usize;
                    Message::Binary(rng.bytes(n).into())
                }
                "truncated-hello" => Message::Binary(proto::truncated_hello().into()),
                "wrong-schema-hello" => Message::Binary(
                    proto::wrong_schema_hello(&target.rooms[room], rng.site()).into(),
                ),
                "invalid-room-hello" => Message::Binary(
                    proto::hello("../etc/passwd", rng.site(), &target.schema, None).into(),
                ),
                "text-first" => Message::Text("hello?".into()),
                _ => return until_closed(&mut ws, CLOSE_WAIT).await,
            };
            *sent += 1;
            return send_then_wait(&mut ws, msg).await;
        }
        _ => {}
    }
    let mut ws = match join(target, i, room, rng).await {
        Ok(ws) => ws,
        Err(e) => return e,
    };
    match mode {
        "oversized-frame" => {
            *sent += 1;
            send_then_wait(&mut ws, Message::Binary(big.clone())).await
        }
        "garbage-after-join" => {
            *sent += 1;
            let n = 1 + (rng.next_u64() % 4096) as usize;
            send_then_wait(&mut ws, Message::Binary(rng.bytes(n).into())).await
        }
        "text-after-join" => {
            *sent += 1;
            send_then_wait(&mut ws, Message::Text("{\"op\":\"write\"}".into())).await
        }
        _ => {
            // Spam: batches of 32 valid but pointless frames, reading what comes back in
            // between (acks of the empty chunks, room traffic, never acknowledged).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(SPAM_SECS);
            let mut v = 0i64;
            while tokio::time::Instant::now() < deadline {
                for _ in 0..32 {
                    v += 1;
                    let f = if mode == "ack-spam" {
                        proto::stray_ack(v)
                    } else {
                        proto::empty_changes(v)
                    };
                    if ws.feed(Message::Binary(f.into())).await.is_err() {
                        return End::Server(None);
                    }
                    *sent += 1;
                }
                if ws.flush().await.is_err() {
                    return End::Server(None);
                }
                // Drain replies for a moment.
                loop {
                    match tokio::time::timeout(Duration::from_millis(2), ws.next()).await {
                        Err(_) => break,
                        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                            return End::Server(None)
                        }
                        Ok(Some(Ok(Message::Binary(b)))) => {
                            if let Ok(Incoming::Error { code, .. }) = proto::decode(&b) {
                                return End::Server(Some(code));
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            End::Us
        }
    }
}

/// Opens a TCP connection and sends an HTTP upgrade request one byte per second, never
/// finishing the header; `End::Server` if the server closes it.
async fn slowloris(addr: SocketAddr, from: IpAddr) -> End {
    let Ok(mut s) = tcp_from(addr, from).await else {
        return End::NoConnect;
    };
    let req = format!(
        "GET /sync HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Slow: "
    );
    let mut bytes = req.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(SLOWLORIS_SECS);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return End::Us,
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return End::Server(None),
                Ok(_) => {} // a response (e.g. 408 or 400): keep reading until closed
            },
            _ = tick.tick() => {
                let b = bytes.next().unwrap_or(b'a');
                if s.write_all(&[b]).await.is_err() {
                    return End::Server(None);
                }
            }
        }
    }
}
