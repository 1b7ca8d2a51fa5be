//! One WebSocket connection: Hello, authentication, join, then moving frames between the client
//! and its room's thread ([`crate::rooms::actor`]) until either side closes, an error ends it,
//! the server shuts down or needs the room (`SERVER_BUSY`).
//!
//! - **Before the join** nothing is spent on the peer in proportion to what it claims: the
//!   socket is read only up to the pre-auth budget ([`crate::listener::Meter`]), the first
//!   frame must be a Hello (its kind is checked before anything is decoded, its size is capped),
//!   the room name, the token and the schema are checked before the room is opened (or
//!   created).
//! - **Writes before reads**: the connection reads the next frame only when it has nothing left
//!   to write and its previous upload was committed, so a client that does not read stops being
//!   read, and the frames queued for it stay bounded by the protocol's window.
//! - **Cheap spam**: frames are read at most `frames_per_sec` / `bytes_per_sec` (token
//!   buckets: a faster client is simply read more slowly); an empty `Changes` frame is answered
//!   here without touching the room, an `Ack` for nothing is ignored.
//! - **Uploads** are checked here (the client's own site id only, write access, the app's
//!   [`crate::auth::ChangeFilter`]), then committed by the room's thread with other clients'
//!   uploads of the same moment.
//! - Bad input (undecodable, truncated, oversized, text, unknown kind, other protocol version,
//!   a frame the protocol does not allow here, invalid change rows) gets an error frame with
//!   the stable code, then a close frame; nothing of a refused frame is written.
//! - Logs: a client's own faults (refused joins, bad frames) are `info`, the server's are
//!   `error`, so a flood of hostile connections does not flood a `warn` log.
//! - A write that does not finish within the send timeout ends the connection (a peer that
//!   stopped reading); so does a message that takes longer than the message timeout to arrive.

use crate::error::ServerError;
use crate::http::AppState;
use crate::limits::{clip, TokenBucket};
use crate::listener::Conn;
use crate::rooms::{valid_room, Outbound, Room};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synqlite_core::sync::{check_own_rows, schema_rejection, Changes, ErrorFrame, Frame, Hello};
use synqlite_core::Error as CoreError;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

/// Close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL: u16 = 1011;
const CLOSE_TRY_AGAIN: u16 = 1013;

/// How long the error and close frames of a failing connection may take to write.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes a joined connection may send at once before the byte rate applies.
const BYTE_BURST: f64 = 1024.0 * 1024.0;

/// How long a join waits for a previous connection of the same site id to end.
const SITE_IN_USE_RETRIES: u32 = 20;
const SITE_IN_USE_WAIT: Duration = Duration::from_millis(100);

/// Lower-case hex of a site id, for logs.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The RFC 6455 close code that goes with an error.
fn close_code(err: &ServerError) -> u16 {
    match err {
        ServerError::ShuttingDown => CLOSE_GOING_AWAY,
        ServerError::ServerBusy(_) | ServerError::SiteInUse => CLOSE_TRY_AGAIN,
        ServerError::FrameTooLarge(_) => CLOSE_TOO_BIG,
        ServerError::InvalidRoom(_) | ServerError::Unauthorized(_) | ServerError::Forbidden(_) => {
            CLOSE_POLICY
        }
        // An upload that breaks the room's constraints is the client's data, not a failure.
        ServerError::Core(e)
            if e.code() == "INTERNAL"
                || (e.code().starts_with("SQLITE_") && e.code() != "SQLITE_CONSTRAINT") =>
        {
            CLOSE_INTERNAL
        }
        ServerError::Io { .. } | ServerError::Migrations(_) | ServerError::Internal(_) => {
            CLOSE_INTERNAL
        }
        ServerError::Core(CoreError::Protocol(_) | CoreError::ProtocolVersion(_))
        | ServerError::HelloTimeout(_)
        | ServerError::MessageTimeout(_) => CLOSE_PROTOCOL,
        _ => CLOSE_POLICY,
    }
}

/// Whether `err` is the client's fault (a bad frame, a refused Hello, a timeout), which counts
/// against its address ([`crate::penalty`]); not the server's own trouble or refusals.
fn client_fault(err: &ServerError) -> bool {
    matches!(
        close_code(err),
        CLOSE_PROTOCOL | CLOSE_POLICY | CLOSE_TOO_BIG
    )
}

/// The error frame telling the client about `err`.
pub(crate) fn error_frame(err: &ServerError) -> Vec<u8> {
    Frame::Error(ErrorFrame {
        code: err.code().to_owned(),
        message: clip(&err.to_string()),
        retryable: err.retryable(),
        details: Vec::new(),
    })
    .encode()
}

/// Whether an error from the WebSocket layer means the message exceeded the size limits.
fn too_large(e: &axum::Error) -> bool {
    use std::error::Error as _;
    if let Some(t) = e
        .source()
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
    {
        return matches!(t, tungstenite::Error::Capacity(_));
    }
    // Another tungstenite version than ours behind axum: fall back to its message.
    let text = e.to_string();
    text.contains("too long") || text.contains("Space limit")
}

/// One connection's socket, peer and traffic counters.
struct Peer {
    socket: WebSocket,
    conn: Arc<Conn>,
    send_timeout: Duration,
    /// Pings sent since the peer last sent anything (pongs included).
    unanswered: u32,
    frames_in: u64,
    frames_out: u64,
    rows_in: u64,
}

/// Why sending stopped.
enum SendError {
    /// The peer is gone (or the socket failed).
    Gone,
    /// A frame could not be written within the send timeout.
    TooSlow,
}

/// What one read from the socket gave.
enum Incoming {
    Frame(Bytes),
    /// A ping or pong (the WebSocket layer answers pings).
    Control,
    Closed,
}

impl Peer {
    async fn recv(&mut self) -> Result<Incoming, ServerError> {
        let msg = self.socket.recv().await;
        self.unanswered = 0;
        match msg {
            None | Some(Ok(Message::Close(_))) => Ok(Incoming::Closed),
            Some(Ok(Message::Binary(b))) => {
                self.frames_in += 1;
                self.conn.touch();
                Ok(Incoming::Frame(b))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Incoming::Control),
            Some(Ok(Message::Text(_))) => Err(ServerError::Core(CoreError::Protocol(
                "text messages are not part of the sync protocol; send binary frames".into(),
            ))),
            Some(Err(e)) if too_large(&e) => Err(ServerError::FrameTooLarge(e.to_string())),
            Some(Err(e)) => {
                debug!(peer = %self.conn.addr, error = %e, "socket error");
                Ok(Incoming::Closed)
            }
        }
    }

    async fn send_one(&mut self, msg: Message) -> Result<(), SendError> {
        match tokio::time::timeout(self.send_timeout, self.socket.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SendError::Gone),
            Err(_) => Err(SendError::TooSlow),
        }
    }

    /// Sends one frame within the send timeout.
    async fn send(&mut self, frame: Bytes) -> Result<(), SendError> {
        self.send_one(Message::Binary(frame)).await?;
        self.frames_out += 1;
        self.conn.touch();
        Ok(())
    }

    /// Sends `frame` (an error frame) then a close frame with `code`, giving up quietly after
    /// a few seconds (the peer may be gone or not reading).
    async fn farewell(&mut self, frame: Option<Vec<u8>>, code: u16, reason: &str) {
        let socket = &mut self.socket;
        let bye = async {
            if let Some(frame) = frame {
                socket.send(Message::Binary(frame.into())).await?;
            }
            socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await
        };
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, bye).await;
    }

    /// Tells the client about `err` and closes.
    async fn fail(&mut self, err: &ServerError) {
        self.farewell(Some(error_frame(err)), close_code(err), err.code())
            .await;
    }
}

/// What a connection may do in its room, from its credentials.
struct Access {
    grant: crate::auth::Grant,
}

/// Reads the Hello within the hello timeout and the pre-auth budget.
async fn read_hello(peer: &mut Peer, state: &AppState) -> Result<Option<Hello>, ServerError> {
    let meter = peer.conn.meter.clone();
    let deadline = tokio::time::Instant::now() + state.limits.hello_timeout;
    loop {
        let got = tokio::select! {
            r = tokio::time::timeout_at(deadline, peer.recv()) => r,
            _ = meter.over.notified() => {
                return Err(ServerError::FrameTooLarge(format!(
                    "the first frame must be a Hello of at most {} bytes",
                    synqlite_core::sync::MAX_HELLO_BYTES
                )))
            }
        };
        match got {
            Err(_) => {
                return Err(ServerError::HelloTimeout(
                    state.limits.hello_timeout.as_secs(),
                ))
            }
            Ok(Ok(Incoming::Control)) => continue,
            Ok(Ok(Incoming::Closed)) => return Ok(None),
            Ok(Ok(Incoming::Frame(bytes))) => {
                return Frame::decode_hello(&bytes)
                    .map(Some)
                    .map_err(ServerError::Core)
            }
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Checks the Hello's room, token and schema; opens the room only if they pass.
async fn admit(
    state: &AppState,
    hello: &Hello,
) -> Result<(Arc<Room>, Access), (ServerError, Vec<u8>)> {
    let plain = |e: ServerError| {
        let f = error_frame(&e);
        (e, f)
    };
    if !valid_room(&hello.room) {
        return Err(plain(ServerError::InvalidRoom(clip(&hello.room))));
    }
    let grant = state
        .auth
        .authenticate(hello.token.as_deref(), &hello.room)
        .await
        .map_err(|e| plain(e.into()))?;
    if let Some(site) = grant.site {
        if site != hello.site_id {
            return Err(plain(ServerError::Unauthorized(
                "the token binds another site id than the one this client presents".into(),
            )));
        }
    }
    if hello.schema != state.schema {
        let r = schema_rejection(&state.schema, &hello.schema);
        return Err((ServerError::Core(r.error), r.frame));
    }
    let room = state.rooms.get(&hello.room).await.map_err(plain)?;
    Ok((room, Access { grant }))
}

/// Serves one upgraded connection until it ends.
pub async fn run(socket: WebSocket, state: Arc<AppState>, conn: Arc<Conn>) {
    let addr = conn.addr;
    let mut peer = Peer {
        socket,
        conn,
        send_timeout: state.send_timeout,
        unanswered: 0,
        frames_in: 0,
        frames_out: 0,
        rows_in: 0,
    };
    let mut stop = state.stop.clone();
    if *stop.borrow_and_update() {
        peer.fail(&ServerError::ShuttingDown).await;
        return;
    }
    let hello = tokio::select! {
        h = read_hello(&mut peer, &state) => h,
        _ = stop.changed() => Err(ServerError::ShuttingDown),
    };
    let hello = match hello {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => {
            info!(peer = %addr, code = e.code(), error = %clip(&e.to_string()), "no valid hello");
            if client_fault(&e) {
                peer.conn.fault();
            }
            peer.fail(&e).await;
            return;
        }
    };
    let site_id = hello.site_id;
    let site = hex(&site_id);
    let room_name = clip(&hello.room);
    let joined = async {
        let (room, access) = admit(&state, &hello).await?;
        // A client that reconnects at once may find its previous connection not yet ended:
        // wait a little for it before refusing.
        let mut tries = 0;
        loop {
            let (out, rx) = mpsc::unbounded_channel();
            match room.join(hello.clone(), out).await {
                Ok(ticket) => return Ok::<_, (ServerError, Vec<u8>)>((room, access, rx, ticket)),
                Err((ServerError::SiteInUse, _)) if tries < SITE_IN_USE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(SITE_IN_USE_WAIT).await;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let joined = tokio::select! {
        j = joined => j,
        _ = stop.changed() => Err((ServerError::ShuttingDown, error_frame(&ServerError::ShuttingDown))),
    };
    let (room, access, out, ticket) = match joined {
        Ok(x) => x,
        Err((e, frame)) => {
            if close_code(&e) == CLOSE_INTERNAL {
                error!(peer = %addr, room = room_name, site, code = e.code(), error = %e, "join failed");
            } else {
                info!(peer = %addr, room = room_name, site, code = e.code(), error = %e, "join refused");
                if client_fault(&e) {
                    peer.conn.fault();
                }
            }
            peer.farewell(Some(frame), close_code(&e), e.code()).await;
            return;
        }
    };
    // Joined: frames up to the operator's limit from now on.
    peer.conn.meter.allow(u64::MAX);
    let _joined = room.joined();
    info!(peer = %addr, room = room_name, site, backlog = ticket.backlog, connections = room.connections(), "client joined");
    let started = Instant::now();
    let mut link = Link {
        room: &room,
        id: ticket.id,
        site: site_id,
        access,
        out,
        pending_self: VecDeque::new(),
        unacked: 0,
    };
    let end = relay(&mut peer, &mut link, &state, &mut stop).await;
    room.leave(ticket.id);
    let (frames_in, frames_out, rows_in) = (peer.frames_in, peer.frames_out, peer.rows_in);
    let secs = started.elapsed().as_secs_f64();
    match end {
        Ok(()) => {
            peer.farewell(None, CLOSE_NORMAL, "").await;
            info!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, secs, "client left");
        }
        Err(Ending::ClientError(code, message)) => {
            peer.farewell(None, CLOSE_NORMAL, "").await;
            info!(peer = %addr, room = room_name, site, code = clip(&code), message = clip(&message), frames_in, frames_out, rows_in, secs, "client reported an error and left");
        }
        Err(Ending::Silent) => {
            warn!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, secs, "client silent (no pong): connection dropped");
            peer.farewell(None, CLOSE_GOING_AWAY, "no pong").await;
        }
        Err(Ending::TooSlow) => {
            warn!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, secs, timeout_secs = state.send_timeout.as_secs(), "client not reading: connection dropped");
        }
        Err(Ending::Error(e)) => {
            if matches!(e, ServerError::ShuttingDown) {
                info!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, secs, "closing for shutdown");
            } else if close_code(&e) == CLOSE_INTERNAL {
                error!(peer = %addr, room = room_name, site, code = e.code(), error = %e, frames_in, frames_out, rows_in, secs, "connection failed");
            } else {
                info!(peer = %addr, room = room_name, site, code = e.code(), error = %clip(&e.to_string()), frames_in, frames_out, rows_in, secs, "connection ended by an error");
                if client_fault(&e) {
                    peer.conn.fault();
                }
            }
            peer.fail(&e).await;
        }
    }
}

/// A joined connection's side of its room.
struct Link<'r> {
    room: &'r Room,
    id: u64,
    site: [u8; 16],
    access: Access,
    out: mpsc::UnboundedReceiver<Outbound>,
    /// Frames this connection answers itself, sent when the room's queue is empty.
    pending_self: VecDeque<Bytes>,
    /// `Changes` frames written and not acknowledged yet.
    unacked: usize,
}

/// Why a joined connection ended abnormally.
enum Ending {
    /// Our side refuses to go on (bad frame, database failure, shutdown, busy).
    Error(ServerError),
    /// The client sent an error frame (then it closes).
    ClientError(String, String),
    /// A write did not complete within the send timeout.
    TooSlow,
    /// Nothing (not even a pong) heard since the last two pings.
    Silent,
}

impl From<SendError> for Result<(), Ending> {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Gone => Ok(()),
            SendError::TooSlow => Err(Ending::TooSlow),
        }
    }
}

type UploadFuture<'r> = Pin<Box<dyn Future<Output = Result<usize, ServerError>> + Send + 'r>>;

/// What to do with one frame from a joined client.
enum Step<'r> {
    Nothing,
    Upload(UploadFuture<'r>, usize),
}

/// Checks one frame from a joined client and turns it into a step.
fn on_frame<'r>(link: &mut Link<'r>, state: &AppState, bytes: &[u8]) -> Result<Step<'r>, Ending> {
    let err = |e: CoreError| Ending::Error(ServerError::Core(e));
    match Frame::decode(bytes).map_err(err)? {
        Frame::Changes(c) => {
            if c.rows.is_empty() {
                // Nothing to write: answered here, the room never hears of it.
                link.out_self(Frame::Ack(c.last).encode());
                return Ok(Step::Nothing);
            }
            if link.access.grant.scope == crate::auth::Scope::Read {
                return Err(Ending::Error(ServerError::Forbidden(
                    "this client's token is read-only: it may not upload changes".into(),
                )));
            }
            check_upload(link, state, &c)?;
            let n = c.rows.len();
            let room = link.room;
            let id = link.id;
            Ok(Step::Upload(Box::pin(room.upload(id, c)), n))
        }
        Frame::Ack(_) => {
            if link.unacked > 0 {
                link.unacked -= 1;
                link.room.ack(link.id);
            }
            Ok(Step::Nothing)
        }
        Frame::Error(e) => Err(Ending::ClientError(e.code, e.message)),
        f => Err(Ending::Error(ServerError::Core(CoreError::Protocol(
            format!("unexpected {} frame from a joined client", f.kind()),
        )))),
    }
}

/// The rows of an upload must be the client's own, and pass the app's filter.
fn check_upload(link: &Link<'_>, state: &AppState, c: &Changes) -> Result<(), Ending> {
    check_own_rows(&link.site, c).map_err(|e| Ending::Error(ServerError::Core(e)))?;
    for (i, row) in c.rows.iter().enumerate() {
        if let Err(why) = state.filter.check(&link.room.name, &link.access.grant, row) {
            return Err(Ending::Error(ServerError::Forbidden(clip(&format!(
                "change {i} ({}.{}): {why}",
                row.table, row.cid
            )))));
        }
    }
    Ok(())
}

impl Link<'_> {
    /// Queues a frame this connection answers itself (sent after the room's queued frames).
    fn out_self(&mut self, frame: Vec<u8>) {
        self.pending_self.push_back(Bytes::from(frame));
    }
}

/// Moves frames between a joined client and its room. `Ok(())`: the client left.
async fn relay(
    peer: &mut Peer,
    link: &mut Link<'_>,
    state: &AppState,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Ending> {
    let limits = &state.limits;
    let mut frames = TokenBucket::new(limits.frames_per_sec, limits.frame_burst);
    // Bytes are paced where they are read (a large message arrives at the byte rate).
    peer.conn.meter.limit_rate(limits.bytes_per_sec, BYTE_BURST);
    let mut upload: Option<(UploadFuture<'_>, usize)> = None;
    let mut ping = state.ping_interval.map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    // Set when a message begins to arrive; it must be complete by then.
    let mut message_deadline: Option<tokio::time::Instant> = None;
    let meter = peer.conn.meter.clone();
    let activity = peer.conn.activity.clone();
    // The session ends when its credentials do (a client reconnects with a fresh token).
    let expiry = link.access.grant.expires_at.map(|at| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let left = at
            .saturating_add(crate::auth::EXPIRY_LEEWAY_SECS)
            .saturating_sub(now);
        tokio::time::Instant::now() + Duration::from_secs(left)
    });
    meter.consumed();
    loop {
        // At shutdown no new frame is started.
        if stop.has_changed().unwrap_or(true) {
            return Err(Ending::Error(ServerError::ShuttingDown));
        }
        // Frames this connection answered itself go out in order after the room's.
        while link.out.is_empty() {
            let Some(f) = link.pending_self.pop_front() else {
                break;
            };
            if let Err(e) = peer.send(f).await {
                return e.into();
            }
        }
        let ready_at = frames.ready_at();
        let can_read = upload.is_none()
            && link.out.is_empty()
            && link.pending_self.is_empty()
            && ready_at <= tokio::time::Instant::now();
        tokio::select! {
            biased;
            _ = stop.changed() => return Err(Ending::Error(ServerError::ShuttingDown)),
            _ = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                return Err(Ending::Error(ServerError::Unauthorized(
                    "the token has expired; reconnect with a fresh one".into(),
                )))
            }
            _ = activity.evict.notified() => {
                return Err(Ending::Error(ServerError::ServerBusy(
                    "the server needed this idle connection's place; reconnect later".into(),
                )))
            }
            out = link.out.recv() => {
                let Some(o) = out else {
                    return Err(Ending::Error(ServerError::Internal("the room closed".into())));
                };
                if o.changes {
                    link.unacked += 1;
                }
                if let Err(e) = peer.send(o.bytes).await {
                    return e.into();
                }
            }
            r = async {
                match upload.as_mut() {
                    Some((f, _)) => f.await,
                    None => std::future::pending().await,
                }
            }, if upload.is_some() => {
                let rows = upload.take().map_or(0, |(_, n)| n);
                match r {
                    Ok(_) => peer.rows_in += rows as u64,
                    Err(e) => return Err(Ending::Error(e)),
                }
            }
            msg = peer.recv(), if can_read => {
                let bytes = match msg {
                    Ok(Incoming::Frame(b)) => b,
                    Ok(Incoming::Control) => {
                        meter.consumed();
                        message_deadline = None;
                        continue;
                    }
                    Ok(Incoming::Closed) => return Ok(()),
                    Err(e) => return Err(Ending::Error(e)),
                };
                meter.consumed();
                message_deadline = None;
                frames.take(1.0);
                debug!(peer = %peer.conn.addr, room = link.room.name, bytes = bytes.len(), "frame in");
                match on_frame(link, state, &bytes)? {
                    Step::Nothing => {}
                    Step::Upload(f, n) => upload = Some((f, n)),
                }
            }
            _ = tokio::time::sleep_until(ready_at), if upload.is_none() && !can_read && ready_at > tokio::time::Instant::now() => {}
            _ = async {
                match ping.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                if peer.unanswered >= 2 {
                    return Err(Ending::Silent);
                }
                peer.unanswered += 1;
                if let Err(e) = peer.send_one(Message::Ping(Default::default())).await {
                    return e.into();
                }
            }
            _ = meter.partial.notified(), if message_deadline.is_none() => {
                message_deadline = Some(tokio::time::Instant::now() + limits.message_timeout);
            }
            _ = async {
                match message_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if !can_read {
                    // Not being read (throttled, or its upload is committing): its fault only
                    // once it is read again.
                    message_deadline = Some(tokio::time::Instant::now() + limits.message_timeout);
                } else if meter.partial_pending() {
                    return Err(Ending::Error(ServerError::MessageTimeout(
                        limits.message_timeout.as_secs(),
                    )));
                } else {
                    message_deadline = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn close_codes_follow_rfc_6455() {
        let protocol = ServerError::Core(CoreError::Protocol("x".into()));
        assert_eq!(close_code(&protocol), CLOSE_PROTOCOL);
        let change = ServerError::Core(CoreError::InvalidChange("x".into()));
        assert_eq!(close_code(&change), CLOSE_POLICY);
        // SQLITE_CONSTRAINT_NOTNULL: an upload that breaks the room's constraints.
        let constraint = ServerError::Core(CoreError::Sqlite {
            extended_code: 1299,
            message: "NOT NULL constraint failed: items.n".into(),
        });
        assert_eq!(close_code(&constraint), CLOSE_POLICY);
        let io = ServerError::Core(CoreError::Sqlite {
            extended_code: 10,
            message: "disk I/O error".into(),
        });
        assert_eq!(close_code(&io), CLOSE_INTERNAL);
        assert_eq!(
            close_code(&ServerError::InvalidRoom("..".into())),
            CLOSE_POLICY
        );
        assert_eq!(close_code(&ServerError::ShuttingDown), CLOSE_GOING_AWAY);
        assert_eq!(close_code(&ServerError::SiteInUse), CLOSE_TRY_AGAIN);
        assert_eq!(
            close_code(&ServerError::FrameTooLarge("x".into())),
            CLOSE_TOO_BIG
        );
        assert_eq!(
            close_code(&ServerError::Internal("x".into())),
            CLOSE_INTERNAL
        );
    }
}
