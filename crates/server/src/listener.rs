//! The accept loop: TCP connections in, HTTP/1.1 (with WebSocket upgrades) served on each,
//! every connection counted, metered and capped before it costs anything.
//!
//! - **Caps**: at most `max_connections` in all and `max_connections_per_ip` per address. At
//!   the total cap, the connection idle the longest is told `SERVER_BUSY` and closed to make
//!   room; when every connection is busy, or at the per-address cap, the newcomer gets a `503`
//!   and is closed.
//! - **Timeouts**: the request headers must arrive within `header_timeout` (slowloris).
//! - **Penalties** ([`crate::penalty`]): a connection that ends in a fault (a malformed
//!   request, a header timeout, or what the WebSocket handler reports with [`Conn::fault`])
//!   counts against its address; a banned address's connections get a `429` written straight
//!   to the socket and are closed, before any parsing or task.
//! - **Metering** ([`Meter`]): every byte read from the socket is counted, and once a client
//!   joined it is read at its byte rate (a large message arrives at that pace). Reading stops (the
//!   socket is simply not read any more) once a connection has used its *budget*: before its
//!   Hello is accepted a connection may send [`PRE_AUTH_READ_BYTES`], so a peer that was not
//!   authenticated can never make the server hold more than that for it, whatever frame size it
//!   announces; the WebSocket handler lifts the budget after the join. The same counter tells
//!   the connection when a message is arriving too slowly.

use crate::limits::{Limits, PRE_AUTH_READ_BYTES};
use crate::penalty::Penalties;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// The smallest read of a connection whose byte rate is limited (unless its burst is smaller).
const PACED_READ_BYTES: f64 = 16.0 * 1024.0;

/// Bytes read from one connection, against a budget.
#[derive(Debug)]
pub struct Meter {
    read: AtomicU64,
    /// Bytes read up to the end of the last complete message.
    consumed: AtomicU64,
    /// Notified when bytes arrive after a complete message (a new message has begun).
    pub partial: Notify,
    budget: AtomicU64,
    /// Bytes a second the socket is read at (`f64` bits; 0: no limit) and the burst.
    rate: AtomicU64,
    burst: AtomicU64,
    exhausted: AtomicBool,
    /// Woken when the budget is used up.
    pub over: Notify,
    waker: Mutex<Option<Waker>>,
}

impl Meter {
    fn new() -> Meter {
        Meter {
            read: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            partial: Notify::new(),
            budget: AtomicU64::new(PRE_AUTH_READ_BYTES),
            rate: AtomicU64::new(0),
            burst: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            over: Notify::new(),
            waker: Mutex::new(None),
        }
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    /// Marks everything read so far as part of complete messages.
    pub fn consumed(&self) {
        self.consumed.store(self.read(), Ordering::Release);
    }

    /// Whether bytes of an incomplete message have been read.
    pub fn partial_pending(&self) -> bool {
        self.read() > self.consumed.load(Ordering::Acquire)
    }

    /// Whether reading stopped because the budget was used up.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Acquire)
    }

    /// Reads the socket at most `bytes_per_sec` on average, `burst` at once (0: no limit).
    pub fn limit_rate(&self, bytes_per_sec: f64, burst: f64) {
        self.burst
            .store(burst.max(1.0).to_bits(), Ordering::Release);
        self.rate
            .store(bytes_per_sec.max(0.0).to_bits(), Ordering::Release);
    }

    /// Allows `more` bytes beyond what was read so far (`u64::MAX`: no limit).
    pub fn allow(&self, more: u64) {
        self.budget
            .store(self.read().saturating_add(more), Ordering::Release);
        self.exhausted.store(false, Ordering::Release);
        let w = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// A TCP stream whose reads are counted (and paced) by a [`Meter`].
pub struct Metered {
    inner: TcpStream,
    meter: Arc<Meter>,
    /// Token bucket of the byte rate: tokens, and when they were counted.
    tokens: f64,
    at: tokio::time::Instant,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Metered {
    /// Bytes the rate allows now (`None`: no limit); Pending (with a timer set) until the
    /// bucket holds [`PACED_READ_BYTES`] (or its whole burst, if smaller): a paced connection is
    /// read in chunks of that size rather than in as many tiny reads as the clock allows.
    fn allowance(&mut self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let rate = f64::from_bits(self.meter.rate.load(Ordering::Acquire));
        if rate <= 0.0 {
            return Poll::Ready(None);
        }
        let burst = f64::from_bits(self.meter.burst.load(Ordering::Acquire));
        let need = PACED_READ_BYTES.min(burst).max(1.0);
        loop {
            let now = tokio::time::Instant::now();
            let dt = now.saturating_duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(burst);
            self.at = now;
            if self.tokens >= need {
                self.pause = None;
                return Poll::Ready(Some(self.tokens as usize));
            }
            let until = now + std::time::Duration::from_secs_f64((need - self.tokens) / rate);
            let pause = self
                .pause
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
            if pause.deadline() != until {
                pause.as_mut().reset(until);
            }
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let meter = self.meter.clone();
        let left = meter
            .budget
            .load(Ordering::Acquire)
            .saturating_sub(meter.read());
        if left == 0 || buf.remaining() == 0 {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            *meter.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            // Re-check: the budget may have been raised before the waker was stored.
            if meter.budget.load(Ordering::Acquire) > meter.read() {
                cx.waker().wake_by_ref();
            } else if !meter.exhausted.swap(true, Ordering::AcqRel) {
                meter.over.notify_one();
            }
            return Poll::Pending;
        }
        let allowed = match self.allowance(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(a) => a.unwrap_or(usize::MAX),
        };
        let want = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.remaining())
            .min(allowed.max(1));
        let mut limited = buf.take(want);
        let r = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if n > 0 {
            // SAFETY: `limited` wrote (and initialized) `n` bytes into `buf`'s unfilled part.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            self.tokens -= n as f64;
            let before = meter.read.fetch_add(n as u64, Ordering::AcqRel);
            if before == meter.consumed.load(Ordering::Acquire) {
                meter.partial.notify_one();
            }
        }
        r
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// When a connection was last active, and how to ask it to make room.
#[derive(Debug)]
pub struct Activity {
    /// Milliseconds since the server started when it last sent or received a frame.
    last_active: AtomicU64,
    /// Notified when the connection must make room (`SERVER_BUSY`).
    pub evict: Notify,
}

/// One accepted connection, as the WebSocket handler sees it (a request extension). Its place
/// under the caps is released when the last handle to it is dropped.
#[derive(Debug)]
pub struct Conn {
    /// The peer's address.
    pub addr: SocketAddr,
    /// Its byte meter.
    pub meter: Arc<Meter>,
    /// Its activity.
    pub activity: Arc<Activity>,
    epoch: Instant,
    id: u64,
    table: Connections,
}

impl Conn {
    /// Counts a fault (a bad frame, a refused Hello, a timeout) against the peer's address;
    /// enough of them ban it ([`crate::penalty`]).
    pub fn fault(&self) {
        let ban = lock(&self.table)
            .penalties
            .fault(self.addr.ip(), Instant::now());
        if let Some(ban) = ban {
            tracing::warn!(peer = %self.addr.ip(), secs = ban.as_secs(), "address banned after repeated faults");
        }
    }

    /// Records activity (a frame in or out).
    pub fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.last_active.store(ms, Ordering::Relaxed);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut t = lock(&self.table);
        if t.conns.remove(&self.id).is_some() {
            let ip = self.addr.ip();
            if let Some(n) = t.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    t.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// The live connections' activity, by id, their count per address, and the addresses'
/// penalties.
#[derive(Debug)]
pub struct Table {
    conns: HashMap<u64, Arc<Activity>>,
    per_ip: HashMap<IpAddr, usize>,
    penalties: Penalties,
    next: u64,
}

impl Table {
    /// No connections yet; penalties as `limits` says.
    pub fn new(limits: &Limits) -> Table {
        Table {
            conns: HashMap::new(),
            per_ip: HashMap::new(),
            penalties: Penalties::new(limits.ban_after_faults, limits.ban),
            next: 0,
        }
    }
}

/// Live connections, shared by the accept loop, the connections and `/healthz`.
pub type Connections = Arc<Mutex<Table>>;

fn lock(t: &Connections) -> std::sync::MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Number of live connections.
pub fn count(t: &Connections) -> usize {
    lock(t).conns.len()
}

/// Number of addresses banned now.
pub fn banned(t: &Connections) -> usize {
    lock(t).penalties.banned_count(Instant::now())
}

/// Why a connection is not let in.
enum Refusal {
    /// Answered `503 SERVER_BUSY`.
    Busy(&'static str),
    /// The address is banned for this long: answered `429`.
    Banned(std::time::Duration),
}

/// Takes a place for a connection from `addr`, or says why not (`Err(reason)`).
fn admit(
    table: &Connections,
    addr: SocketAddr,
    limits: &Limits,
    epoch: Instant,
) -> Result<Arc<Conn>, Refusal> {
    let mut t = lock(table);
    let ip = addr.ip();
    if let Some(left) = t.penalties.banned(ip, Instant::now()) {
        return Err(Refusal::Banned(left));
    }
    if limits.max_connections_per_ip > 0
        && t.per_ip.get(&ip).copied().unwrap_or(0) >= limits.max_connections_per_ip
    {
        return Err(Refusal::Busy("too many connections from this address"));
    }
    if t.conns.len() >= limits.max_connections.max(1) {
        // Make room: the connection idle the longest goes, unless everyone was active in the
        // last few seconds.
        let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let oldest = t
            .conns
            .values()
            .min_by_key(|c| c.last_active.load(Ordering::Relaxed))
            .filter(|c| now.saturating_sub(c.last_active.load(Ordering::Relaxed)) >= 5_000);
        match oldest {
            Some(c) => {
                c.evict.notify_one();
                // Not chosen again before it is gone.
                c.last_active.store(u64::MAX, Ordering::Relaxed);
            }
            None => return Err(Refusal::Busy("the server is at its connection cap")),
        }
    }
    let activity = Arc::new(Activity {
        last_active: AtomicU64::new(0),
        evict: Notify::new(),
    });
    t.next += 1;
    let id = t.next;
    t.conns.insert(id, activity.clone());
    *t.per_ip.entry(ip).or_default() += 1;
    drop(t);
    let conn = Arc::new(Conn {
        addr,
        meter: Arc::new(Meter::new()),
        activity,
        epoch,
        id,
        table: table.clone(),
    });
    conn.touch();
    Ok(conn)
}

/// Answers a banned address without a task: one non-blocking write of a `429` into the fresh
/// socket's empty send buffer, then the socket is closed (what the peer already sent is not
/// read).
fn refuse_banned(stream: TcpStream, left: std::time::Duration) {
    let body = r#"{"code":"RATE_LIMITED","message":"too many faulty connections from this address; retry later"}"#;
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        left.as_secs().max(1),
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

async fn refuse(mut stream: TcpStream, why: &str) {
    let body = format!(r#"{{"code":"SERVER_BUSY","message":"{why}; retry later"}}"#);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Serves `app` on `listener` until `stop` turns true; each connection then finishes its
/// current request and closes (WebSockets are told by their own handler). Returns when the
/// listener stopped accepting (connections may still be finishing).
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    table: Connections,
    stop: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = match admit(&table, addr, &limits, epoch) {
            Ok(x) => x,
            Err(Refusal::Banned(left)) => {
                refuse_banned(stream, left);
                continue;
            }
            Err(Refusal::Busy(why)) => {
                tracing::debug!(peer = %addr, why, "connection refused");
                tokio::spawn(refuse(stream, why));
                continue;
            }
        };
        let io = TokioIo::new(Metered {
            inner: stream,
            meter: conn.meter.clone(),
            tokens: 0.0,
            at: tokio::time::Instant::now(),
            pause: None,
        });
        let app = app.clone();
        let mut conn_stop = stop.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let ctx = conn;
            let faults = ctx.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                // Each plain request may bring its own headers' worth of bytes; the WebSocket
                // handler keeps the budget until the Hello is accepted.
                ctx.meter.allow(PRE_AUTH_READ_BYTES);
                req.extensions_mut().insert(ConnectInfo(ctx.addr));
                req.extensions_mut().insert(ctx.clone());
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let served = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(served);
            tokio::select! {
                r = &mut served => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %addr, error = %e, "connection ended");
                        // A malformed request or headers too slow: the peer's fault.
                        if e.is_parse() || e.is_parse_too_large() || e.is_timeout() {
                            faults.fault();
                        }
                    }
                }
                _ = async { let _ = conn_stop.wait_for(|s| *s).await; } => {
                    served.as_mut().graceful_shutdown();
                    let _ = served.await;
                }
            }
        });
        if *stop.borrow() {
            return;
        }
    }
}
