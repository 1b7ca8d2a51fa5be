//! One WebSocket connection: Hello, authentication, join, then relaying frames between the
//! client and its room until either side closes, an error ends it, or the server shuts down.
//!
//! - One task per connection. Its socket writes block only itself: the room's other
//!   connections never wait for it, and it never queues anything for them.
//! - Every frame is handled on the room's connection ([`crate::rooms::Room::with`]) and its
//!   replies are written before the next frame is read, so a client cannot make the server
//!   buffer for it: a client that does not read stops being read.
//! - Flow control comes from the protocol's window: a session has at most a few unacknowledged
//!   chunks in flight (each at most [`synqlite_core::sync::MAX_FRAME_PAYLOAD`] of values), so
//!   memory per connection is bounded by the window, never by the room's backlog. Room change
//!   notifications coalesce ([`crate::rooms`]); a blocked session ignores them and catches up
//!   when the client's acks arrive.
//! - Bad input (undecodable, truncated, oversized, text, unknown kind, other protocol version,
//!   a frame the protocol does not allow here, invalid change rows) gets an error frame with
//!   the stable code, then a close frame; nothing of a refused frame is written.
//! - A write that does not finish within the send timeout ends the connection (a peer that
//!   stopped reading); so does a server shutdown, after the frame being handled.

use crate::error::ServerError;
use crate::http::AppState;
use crate::rooms::{valid_room, Room};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synqlite_core::sync::{ErrorFrame, Frame, ServerSession};
use synqlite_core::Error as CoreError;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// Close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL: u16 = 1011;

/// How long the error and close frames of a failing connection may take to write.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Lower-case hex of a site id, for logs.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The RFC 6455 close code that goes with an error.
fn close_code(err: &ServerError) -> u16 {
    match err {
        ServerError::ShuttingDown => CLOSE_GOING_AWAY,
        ServerError::FrameTooLarge(_) => CLOSE_TOO_BIG,
        ServerError::InvalidRoom(_) | ServerError::Unauthorized(_) => CLOSE_POLICY,
        ServerError::Core(e) if e.code() == "INTERNAL" || e.code().starts_with("SQLITE_") => {
            CLOSE_INTERNAL
        }
        ServerError::Io { .. } | ServerError::Migrations(_) | ServerError::Internal(_) => {
            CLOSE_INTERNAL
        }
        ServerError::Core(CoreError::Protocol(_) | CoreError::ProtocolVersion(_))
        | ServerError::HelloTimeout(_) => CLOSE_PROTOCOL,
        _ => CLOSE_POLICY,
    }
}

/// The error frame telling the client about `err`.
fn error_frame(err: &ServerError) -> Vec<u8> {
    Frame::Error(ErrorFrame {
        code: err.code().to_owned(),
        message: err.to_string(),
        retryable: false,
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
    addr: SocketAddr,
    send_timeout: Duration,
    /// Pings sent since the peer last sent anything (pongs included).
    unanswered: u32,
    frames_in: u64,
    frames_out: u64,
    rows_in: u64,
    rows_out: u64,
}

/// Why sending stopped.
enum SendError {
    /// The peer is gone (or the socket failed).
    Gone,
    /// A frame could not be written within the send timeout.
    TooSlow,
}

impl Peer {
    /// The next binary message; `Ok(None)` when the peer closed. Pings and pongs are handled by
    /// the WebSocket layer and skipped here.
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, ServerError> {
        loop {
            let msg = self.socket.recv().await;
            self.unanswered = 0;
            return match msg {
                None | Some(Ok(Message::Close(_))) => Ok(None),
                Some(Ok(Message::Binary(b))) => {
                    self.frames_in += 1;
                    Ok(Some(b.to_vec()))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(_))) => Err(ServerError::Core(CoreError::Protocol(
                    "text messages are not part of the sync protocol; send binary frames".into(),
                ))),
                Some(Err(e)) if too_large(&e) => Err(ServerError::FrameTooLarge(e.to_string())),
                Some(Err(e)) => {
                    debug!(peer = %self.addr, error = %e, "socket error");
                    Ok(None)
                }
            };
        }
    }

    /// Sends `frames` in order, each within the send timeout.
    async fn send(&mut self, frames: Vec<Vec<u8>>) -> Result<(), SendError> {
        for f in frames {
            let sent = tokio::time::timeout(
                self.send_timeout,
                self.socket.send(Message::Binary(f.into())),
            )
            .await;
            match sent {
                Ok(Ok(())) => {
                    self.frames_out += 1;
                }
                Ok(Err(_)) => return Err(SendError::Gone),
                Err(_) => return Err(SendError::TooSlow),
            }
        }
        Ok(())
    }

    /// Sends a ping (the WebSocket layer of every client answers it with a pong).
    async fn ping(&mut self) -> Result<(), SendError> {
        match tokio::time::timeout(
            self.send_timeout,
            self.socket.send(Message::Ping(Default::default())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SendError::Gone),
            Err(_) => Err(SendError::TooSlow),
        }
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

/// Serves one upgraded connection until it ends.
pub async fn run(socket: WebSocket, state: Arc<AppState>, addr: SocketAddr) {
    let mut peer = Peer {
        socket,
        addr,
        send_timeout: state.send_timeout,
        unanswered: 0,
        frames_in: 0,
        frames_out: 0,
        rows_in: 0,
        rows_out: 0,
    };
    let mut stop = state.stop.clone();
    if *stop.borrow_and_update() {
        peer.fail(&ServerError::ShuttingDown).await;
        return;
    }
    // The Hello, within the hello timeout.
    let first = tokio::select! {
        m = tokio::time::timeout(state.hello_timeout, peer.recv()) => m,
        _ = stop.changed() => {
            peer.fail(&ServerError::ShuttingDown).await;
            return;
        }
    };
    let bytes = match first {
        Err(_) => {
            let e = ServerError::HelloTimeout(state.hello_timeout.as_secs());
            info!(peer = %addr, code = e.code(), "no hello in time");
            peer.fail(&e).await;
            return;
        }
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            warn!(peer = %addr, code = e.code(), error = %e, "bad first frame");
            peer.fail(&e).await;
            return;
        }
    };
    let hello = match Frame::decode(&bytes) {
        Ok(Frame::Hello(h)) => h,
        other => {
            let e = ServerError::Core(match other {
                Ok(f) => CoreError::Protocol(format!(
                    "the first frame must be a hello, got {}",
                    f.kind()
                )),
                Err(e) => e,
            });
            warn!(peer = %addr, code = e.code(), error = %e, "bad hello");
            peer.fail(&e).await;
            return;
        }
    };
    drop(bytes);
    let site = hex(&hello.site_id);
    let room_name = hello.room.clone();
    // Join: room name, token, room database, schema.
    let joined = async {
        if !valid_room(&hello.room) {
            return Err(ServerError::InvalidRoom(hello.room.clone()));
        }
        state
            .auth
            .authenticate(hello.token.as_deref(), &hello.room)?;
        let room = state.rooms.get(&hello.room).await?;
        // Subscribed before `accept` reads the room: a commit after that read always wakes us.
        let changed = room.subscribe();
        let opts = state.session;
        let accepted = room
            .with(move |conn| ServerSession::accept(conn, &hello, opts))
            .await?;
        Ok::<_, ServerError>((room, changed, accepted))
    };
    let joined = tokio::select! {
        j = joined => j,
        _ = stop.changed() => Err(ServerError::ShuttingDown),
    };
    let (room, mut changed, session, frames) = match joined {
        Ok((room, changed, Ok((session, frames)))) => {
            peer.rows_out = session.rows_sent();
            (room, changed, session, frames)
        }
        Ok((_, _, Err(rejection))) => {
            let e = ServerError::Core(rejection.error);
            warn!(peer = %addr, room = room_name, site, code = e.code(), error = %e, "join refused");
            peer.farewell(Some(rejection.frame), close_code(&e), e.code())
                .await;
            return;
        }
        Err(e) => {
            if close_code(&e) == CLOSE_INTERNAL {
                error!(peer = %addr, room = room_name, site, code = e.code(), error = %e, "join failed");
            } else {
                warn!(peer = %addr, room = room_name, site, code = e.code(), error = %e, "join refused");
            }
            peer.fail(&e).await;
            return;
        }
    };
    let backlog = match frames.first().map(|f| Frame::decode(f)) {
        Some(Ok(Frame::Welcome(w))) => w.total,
        _ => 0,
    };
    let _joined = room.join();
    info!(peer = %addr, room = room_name, site, backlog, connections = room.connections(), "client joined");
    let started = Instant::now();
    let end = match peer.send(frames).await {
        Err(SendError::Gone) => Ok(()),
        Err(SendError::TooSlow) => Err(Ending::TooSlow),
        Ok(()) => {
            let ping = state.ping_interval;
            relay(&mut peer, &room, session, &mut changed, &mut stop, ping).await
        }
    };
    let (frames_in, frames_out, rows_in, rows_out) =
        (peer.frames_in, peer.frames_out, peer.rows_in, peer.rows_out);
    let secs = started.elapsed().as_secs_f64();
    match end {
        Ok(()) => {
            peer.farewell(None, CLOSE_NORMAL, "").await;
            info!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, rows_out, secs, "client left");
        }
        Err(Ending::ClientError(code, message)) => {
            peer.farewell(None, CLOSE_NORMAL, "").await;
            info!(peer = %addr, room = room_name, site, code, message, frames_in, frames_out, rows_in, rows_out, secs, "client reported an error and left");
        }
        Err(Ending::Silent) => {
            warn!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, rows_out, secs, "client silent (no pong): connection dropped");
            peer.farewell(None, CLOSE_GOING_AWAY, "no pong").await;
        }
        Err(Ending::TooSlow) => {
            warn!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, rows_out, secs, timeout_secs = state.send_timeout.as_secs(), "client not reading: connection dropped");
        }
        Err(Ending::Error(e)) => {
            if matches!(e, ServerError::ShuttingDown) {
                info!(peer = %addr, room = room_name, site, frames_in, frames_out, rows_in, rows_out, secs, "closing for shutdown");
            } else if close_code(&e) == CLOSE_INTERNAL {
                error!(peer = %addr, room = room_name, site, code = e.code(), error = %e, frames_in, frames_out, rows_in, rows_out, secs, "connection failed");
            } else {
                warn!(peer = %addr, room = room_name, site, code = e.code(), error = %e, frames_in, frames_out, rows_in, rows_out, secs, "connection refused a frame");
            }
            peer.fail(&e).await;
        }
    }
}

/// Why a joined connection ended abnormally.
enum Ending {
    /// Our side refuses to go on (bad frame, database failure, shutdown).
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

/// Relays frames between a joined client and its room. `Ok(())`: the client left.
async fn relay(
    peer: &mut Peer,
    room: &Room,
    mut session: ServerSession,
    changed: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
    ping_interval: Option<Duration>,
) -> Result<(), Ending> {
    // Liveness: a ping every interval; a peer that answered none of the last two is gone (a
    // vanished peer never closes its socket, and an idle connection writes nothing that
    // could fail).
    let mut ping = ping_interval.map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        // At shutdown no new frame is started (checked here because `select!` below picks
        // among ready branches at random).
        if stop.has_changed().unwrap_or(true) {
            return Err(Ending::Error(ServerError::ShuttingDown));
        }
        // The session moves into the database task and back.
        let (back, frames) = tokio::select! {
            _ = stop.changed() => return Err(Ending::Error(ServerError::ShuttingDown)),
            msg = peer.recv() => {
                let bytes = match msg {
                    Ok(Some(b)) => b,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(Ending::Error(e)),
                };
                debug!(peer = %peer.addr, room = room.name, bytes = bytes.len(), "frame in");
                let (back, result) = room
                    .with(move |conn| {
                        let r = session.handle(conn, &bytes);
                        (session, r)
                    })
                    .await
                    .map_err(Ending::Error)?;
                match result {
                    Ok(out) => {
                        peer.rows_in += out.received_rows as u64;
                        if out.room_changed {
                            // Every connection of the room pumps, this one included: its own
                            // notification also covers commits of others that landed while
                            // it was busy (its own rows are never sent back to it).
                            room.notify();
                        }
                        (back, out.send)
                    }
                    Err(CoreError::Remote { code, message }) => {
                        return Err(Ending::ClientError(code, message))
                    }
                    Err(e) => return Err(Ending::Error(ServerError::Core(e))),
                }
            }
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
                if let Err(e) = peer.ping().await {
                    return e.into();
                }
                continue;
            }
            r = changed.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                if session.blocked() {
                    // The window is full: the client's acks will pump, reading everything
                    // committed up to then, so this notification is not needed.
                    continue;
                }
                let (back, result) = room
                    .with(move |conn| {
                        let r = session.pump(conn);
                        (session, r)
                    })
                    .await
                    .map_err(Ending::Error)?;
                (back, result.map_err(|e| Ending::Error(ServerError::Core(e)))?)
            }
        };
        session = back;
        peer.rows_out = session.rows_sent();
        if let Err(e) = peer.send(frames).await {
            return e.into();
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
        assert_eq!(
            close_code(&ServerError::InvalidRoom("..".into())),
            CLOSE_POLICY
        );
        assert_eq!(close_code(&ServerError::ShuttingDown), CLOSE_GOING_AWAY);
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
