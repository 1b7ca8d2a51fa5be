//! One simulated client: a WebSocket, a random site id, no database. It joins, acknowledges
//! everything it receives, and (depending on its role) writes one column of its own row every
//! period, or sends one large transaction, timestamping what others wrote against when they
//! wrote it.

use crate::proto::{self, Incoming, Schema, Site};
use crate::sys::unix_nanos;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Rows of the burst transaction.
pub const BURST_ROWS: u32 = 10_000;
/// Rows per `Changes` frame of the burst.
pub const BURST_CHUNK: u32 = 1024;
/// Unacknowledged frames the burst sender allows.
pub const WINDOW: usize = 4;
/// A delivery later than this counts as late.
pub const LATE: Duration = Duration::from_secs(1);

/// What a client does once joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Writes one change every period (relay, hostile).
    Writer,
    /// Only receives and acknowledges (idle, joins, burst receivers).
    Listener,
    /// Sends the burst transaction when told (burst).
    BurstSender,
}

/// Shared by all clients of a run.
pub struct Ctx {
    /// `ws://host/sync`.
    pub url: String,
    /// The rooms' schema.
    pub schema: Schema,
    /// Room names.
    pub rooms: Vec<String>,
    /// Token per room (or none).
    pub tokens: Vec<Option<String>>,
    /// Time between two writes of one client.
    pub period: Duration,
    /// Writes sent (unix nanos) in `[measure_from, measure_to)` are measured.
    pub measure_from: u128,
    /// See `measure_from`.
    pub measure_to: u128,
    /// No write is started after this.
    pub writes_until: Instant,
    /// Ends every client (true).
    pub stop: watch::Receiver<bool>,
    /// Starts the burst (true).
    pub burst_go: watch::Receiver<bool>,
    /// Live counters.
    pub live: Live,
    /// Unique to this run (row ids of the burst).
    pub run_id: String,
    /// Burst timing: (first chunk sent, last chunk acknowledged).
    pub burst: Mutex<(Option<Instant>, Option<Instant>)>,
}

/// Counters the orchestration reads while clients run.
#[derive(Default)]
pub struct Live {
    /// Clients that got their `Welcome`.
    pub joined: AtomicU64,
    /// Clients that got `CaughtUp`.
    pub caught_up: AtomicU64,
    /// Clients whose connection ended before the stop (error, close, failure to connect).
    pub failed: AtomicU64,
    /// Measured writes times the other clients of their room.
    pub expected: AtomicU64,
    /// Measured writes received.
    pub received: AtomicU64,
    /// Receivers that have the whole burst.
    pub burst_complete: AtomicU64,
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientReport {
    /// The room index.
    pub room: usize,
    /// When it started connecting.
    pub connect_at: Option<Instant>,
    /// The WebSocket handshake succeeded.
    pub connected: bool,
    /// Seconds from connecting to `Welcome`.
    pub welcome_secs: Option<f64>,
    /// Seconds from connecting to `CaughtUp`.
    pub caught_up_secs: Option<f64>,
    /// `Welcome.total`.
    pub backlog: u64,
    /// Change rows received.
    pub rows: u64,
    /// `Changes` frames received (each acknowledged).
    pub frames: u64,
    /// Writes sent.
    pub writes: u64,
    /// Writes sent in the measured window.
    pub writes_measured: u64,
    /// Writes not sent because 4 were unacknowledged.
    pub writes_skipped: u64,
    /// Relay latency of every measured write received, microseconds.
    pub latencies_us: Vec<u32>,
    /// Measured writes received more than [`LATE`] after they were sent.
    pub late: u64,
    /// Writes of others never seen because a newer value of the same row overtook them (the
    /// room keeps one value per column: a write not yet relayed is superseded by the next).
    pub superseded: u64,
    /// When it had every burst row.
    pub burst_done: Option<Instant>,
    /// Why it ended early: an error frame's code, a socket error, an unexpected close.
    pub error: Option<String>,
}

/// The value of a write: `c<client>:<n>:<unix nanos>`.
fn parse_value(v: &str) -> Option<(u32, u64, u128)> {
    let mut it = v.strip_prefix('c')?.splitn(3, ':');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// A WebSocket to the server (TCP_NODELAY, default limits).
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url`.
pub async fn connect(url: &str) -> Result<Ws, String> {
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(WebSocketConfig::default()), true)
            .await
            .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// A TCP connection to `addr` from the local address `from` (another host, as the server sees
/// it; unspecified: the default).
pub async fn tcp_from(
    addr: std::net::SocketAddr,
    from: std::net::IpAddr,
) -> Result<tokio::net::TcpStream, String> {
    let socket = match from {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    socket
        .bind(std::net::SocketAddr::new(from, 0))
        .map_err(|e| format!("bind {from}: {e}"))?;
    let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Connects to `url` at `addr` from the local address `from` ([`tcp_from`]).
pub async fn connect_from(
    url: &str,
    addr: std::net::SocketAddr,
    from: std::net::IpAddr,
) -> Result<Ws, String> {
    let tcp = tcp_from(addr, from).await?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        url,
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        Some(WebSocketConfig::default()),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Who one client is and when it starts.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Client number (in its row id and the values it writes).
    pub idx: u32,
    /// Room index.
    pub room: usize,
    /// Clients configured in that room (each write should reach `room_size - 1` others).
    pub room_size: u64,
    /// Its site id.
    pub site: Site,
    /// What it does.
    pub role: Role,
    /// When it connects.
    pub start_at: tokio::time::Instant,
    /// Where in the period its writes fall, in [0, 1) (spreads the writes of all clients).
    pub phase: f64,
}

/// Runs one client until `ctx.stop`, or until its connection ends.
pub async fn run(ctx: Arc<Ctx>, m: Member) -> ClientReport {
    let mut rep = ClientReport {
        room: m.room,
        ..ClientReport::default()
    };
    let mut stop = ctx.stop.clone();
    tokio::select! {
        _ = tokio::time::sleep_until(m.start_at) => {}
        _ = async { let _ = stop.wait_for(|s| *s).await; } => return rep,
    }
    let result = session(&ctx, &mut rep, m, &mut stop).await;
    if let Err(e) = result {
        if !*stop.borrow() {
            ctx.live.failed.fetch_add(1, Ordering::Relaxed);
            rep.error = Some(e);
        }
    }
    rep
}

async fn session(
    ctx: &Ctx,
    rep: &mut ClientReport,
    m: Member,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Member {
        idx,
        room_size,
        site,
        role,
        phase,
        ..
    } = m;
    let started = Instant::now();
    rep.connect_at = Some(started);
    let mut ws = connect(&ctx.url).await?;
    rep.connected = true;
    let room = &ctx.rooms[rep.room];
    let hello = proto::hello(room, site, &ctx.schema, ctx.tokens[rep.room].as_deref());
    ws.send(Message::Binary(hello.into()))
        .await
        .map_err(|e| e.to_string())?;

    let row_id = format!(
        "lt{idx}-{}",
        site[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut version: i64 = 0;
    let mut in_flight = 0usize;
    let mut last_seen: HashMap<u32, u64> = HashMap::new();
    let mut burst_rows = 0u32;
    let mut burst_go = ctx.burst_go.clone();
    let mut burst_next: u32 = 0; // next burst row to send
    let mut burst_acked = 0u32; // burst frames acknowledged
    let burst_frames = BURST_ROWS.div_ceil(BURST_CHUNK);
    let mut burst_started = false;
    // The write timer starts at Welcome.
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let mut next_write = far;

    loop {
        let want_burst = role == Role::BurstSender && !burst_started;
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return Ok(());
            }
            ok = async { burst_go.wait_for(|g| *g).await.is_ok() }, if want_burst => {
                burst_started = true;
                if !ok {
                    continue;
                }
                ctx.burst.lock().unwrap().0 = Some(Instant::now());
                // Fill the window.
                while burst_next < BURST_ROWS && in_flight < WINDOW {
                    send_burst_chunk(&mut ws, site, &ctx.run_id, &mut burst_next).await?;
                    in_flight += 1;
                }
            }
            _ = tokio::time::sleep_until(next_write), if role == Role::Writer && next_write != far => {
                let now = Instant::now();
                if now >= ctx.writes_until {
                    next_write = far;
                    continue;
                }
                next_write += ctx.period;
                if in_flight >= WINDOW {
                    rep.writes_skipped += 1;
                    continue;
                }
                version += 1;
                let nanos = unix_nanos();
                let value = format!("c{idx}:{version}:{nanos}");
                ws.send(Message::Binary(proto::write(site, &row_id, value, version).into()))
                    .await
                    .map_err(|e| e.to_string())?;
                in_flight += 1;
                rep.writes += 1;
                if nanos >= ctx.measure_from && nanos < ctx.measure_to {
                    rep.writes_measured += 1;
                    ctx.live.expected.fetch_add(room_size.saturating_sub(1), Ordering::Relaxed);
                }
            }
            msg = ws.next() => {
                let bytes = match msg {
                    None => return Err("closed by the server".into()),
                    Some(Err(e)) => return Err(format!("socket: {e}")),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(c))) => {
                        return Err(format!("closed by the server ({})", c.map_or_else(String::new, |c| format!("{} {}", c.code, c.reason))))
                    }
                    Some(Ok(_)) => continue, // pings are answered by tungstenite
                };
                match proto::decode(&bytes)? {
                    Incoming::Welcome { backlog } => {
                        rep.welcome_secs = Some(started.elapsed().as_secs_f64());
                        rep.backlog = backlog;
                        ctx.live.joined.fetch_add(1, Ordering::Relaxed);
                        if role == Role::Writer {
                            next_write = tokio::time::Instant::now() + ctx.period.mul_f64(phase);
                        }
                    }
                    Incoming::CaughtUp => {
                        if rep.caught_up_secs.is_none() {
                            rep.caught_up_secs = Some(started.elapsed().as_secs_f64());
                            ctx.live.caught_up.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Incoming::Ack => {
                        in_flight = in_flight.saturating_sub(1);
                        if role == Role::BurstSender && burst_started {
                            burst_acked += 1;
                            if burst_acked == burst_frames {
                                ctx.burst.lock().unwrap().1 = Some(Instant::now());
                            }
                            while burst_next < BURST_ROWS && in_flight < WINDOW {
                                send_burst_chunk(&mut ws, site, &ctx.run_id, &mut burst_next).await?;
                                in_flight += 1;
                            }
                        }
                    }
                    Incoming::Changes(c) => {
                        let now = unix_nanos();
                        rep.rows += c.rows as u64;
                        rep.frames += 1;
                        ws.send(Message::Binary(c.ack.into())).await.map_err(|e| e.to_string())?;
                        for v in &c.values {
                            if v.starts_with("b:") {
                                burst_rows += 1;
                                if burst_rows == BURST_ROWS {
                                    rep.burst_done = Some(Instant::now());
                                    ctx.live.burst_complete.fetch_add(1, Ordering::Relaxed);
                                }
                                continue;
                            }
                            let Some((from, n, sent)) = parse_value(v) else { continue };
                            if from == idx {
                                continue;
                            }
                            let last = last_seen.entry(from).or_insert(0);
                            let measured = sent >= ctx.measure_from && sent < ctx.measure_to;
                            if n > *last + 1 && measured && *last > 0 {
                                rep.superseded += n - *last - 1;
                            }
                            *last = (*last).max(n);
                            if measured {
                                let us = (now.saturating_sub(sent) / 1000).min(u128::from(u32::MAX)) as u32;
                                rep.latencies_us.push(us);
                                if u128::from(us) > LATE.as_micros() {
                                    rep.late += 1;
                                }
                                ctx.live.received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Incoming::Error { code, message } => return Err(format!("{code}: {message}")),
                    Incoming::Unexpected(kind) => return Err(format!("unexpected {kind} frame")),
                }
            }
        }
    }
}

async fn send_burst_chunk(
    ws: &mut Ws,
    site: Site,
    run_id: &str,
    next: &mut u32,
) -> Result<(), String> {
    let end = (*next + BURST_CHUNK).min(BURST_ROWS);
    // The transaction is the sender's db_version 1; new rows on every run.
    let prefix = format!("burst-{run_id}-");
    let frame = proto::transaction_chunk(site, 1, &prefix, *next..end, |i| format!("b:{i}"));
    *next = end;
    ws.send(Message::Binary(frame.into()))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(parse_value("c12:3:99"), Some((12, 3, 99)));
        assert_eq!(parse_value("b:1"), None);
        assert_eq!(parse_value("Untitled"), None);
    }
}
