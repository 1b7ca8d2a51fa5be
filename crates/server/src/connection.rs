//! One WebSocket connection: Hello, authentication, join, then relaying frames between the
//! client and its room until either side closes, an error ends it, or the server shuts down.
//!
//! Every frame is handled on the room's connection ([`crate::rooms::Room::with`]); replies are
//! written before the next frame is read. Flow control comes from the protocol's window: the
//! session sends at most a few unacknowledged chunks, so a slow client only slows its own
//! connection, and memory per connection stays bounded by the chunk size.

use crate::error::ServerError;
use crate::http::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synqlite_core::sync::{Frame, ServerSession};
use tracing::{info, warn};

/// Close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL: u16 = 1011;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sends an error frame then a close frame; errors while doing so are ignored (the peer may
/// already be gone).
async fn fail(socket: &mut WebSocket, err: &ServerError) {
    let frame = Frame::Error(synqlite_core::sync::ErrorFrame {
        code: err.code().to_owned(),
        message: err.to_string(),
        details: Vec::new(),
    });
    close_with(socket, frame.encode(), err).await;
}

async fn close_with(socket: &mut WebSocket, frame: Vec<u8>, err: &ServerError) {
    let code = match err {
        ServerError::ShuttingDown => CLOSE_GOING_AWAY,
        ServerError::FrameTooLarge(_) => CLOSE_TOO_BIG,
        ServerError::InvalidRoom(_) | ServerError::Unauthorized(_) => CLOSE_POLICY,
        ServerError::Core(e) if e.code() == "INTERNAL" || e.code().starts_with("SQLITE_") => {
            CLOSE_INTERNAL
        }
        ServerError::Io { .. } | ServerError::Migrations(_) | ServerError::Internal(_) => {
            CLOSE_INTERNAL
        }
        _ => CLOSE_PROTOCOL,
    };
    let _ = socket.send(Message::Binary(frame.into())).await;
    let reason = err.code().to_owned();
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// What the next received message was.
enum Incoming {
    Frame(Vec<u8>),
    Closed,
}

fn classify(msg: Option<Result<Message, axum::Error>>) -> Result<Incoming, ServerError> {
    match msg {
        None => Ok(Incoming::Closed),
        Some(Err(e)) => {
            let text = e.to_string();
            if text.contains("too long") || text.contains("Space limit") {
                Err(ServerError::FrameTooLarge(text))
            } else {
                Ok(Incoming::Closed)
            }
        }
        Some(Ok(Message::Binary(b))) => Ok(Incoming::Frame(b.to_vec())),
        Some(Ok(Message::Text(_))) => Err(ServerError::Core(synqlite_core::Error::Protocol(
            "text messages are not part of the sync protocol; send binary frames".into(),
        ))),
        Some(Ok(Message::Close(_))) => Ok(Incoming::Closed),
        // Pings are answered by the WebSocket layer.
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Incoming::Frame(Vec::new())),
    }
}

async fn send_all(socket: &mut WebSocket, frames: Vec<Vec<u8>>) -> bool {
    for f in frames {
        if socket.send(Message::Binary(f.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// Serves one upgraded connection until it ends.
pub async fn run(mut socket: WebSocket, state: Arc<AppState>, peer: SocketAddr) {
    let mut stop = state.stop.clone();
    if *stop.borrow() {
        fail(&mut socket, &ServerError::ShuttingDown).await;
        return;
    }
    // Hello.
    let first = tokio::select! {
        m = tokio::time::timeout(Duration::from_secs(state.hello_timeout_secs), socket.recv()) => m,
        _ = stop.changed() => {
            fail(&mut socket, &ServerError::ShuttingDown).await;
            return;
        }
    };
    let bytes = match first {
        Err(_) => {
            fail(
                &mut socket,
                &ServerError::HelloTimeout(state.hello_timeout_secs),
            )
            .await;
            return;
        }
        Ok(m) => match classify(m) {
            Ok(Incoming::Frame(b)) => b,
            Ok(Incoming::Closed) => return,
            Err(e) => {
                warn!(%peer, code = e.code(), error = %e, "bad first frame");
                fail(&mut socket, &e).await;
                return;
            }
        },
    };
    let hello = match Frame::decode(&bytes) {
        Ok(Frame::Hello(h)) => h,
        Ok(f) => {
            let e = ServerError::Core(synqlite_core::Error::Protocol(format!(
                "the first frame must be a hello, got {}",
                f.kind()
            )));
            fail(&mut socket, &e).await;
            return;
        }
        Err(e) => {
            let e = ServerError::Core(e);
            warn!(%peer, code = e.code(), error = %e, "bad hello");
            fail(&mut socket, &e).await;
            return;
        }
    };
    let site = hex(&hello.site_id);
    let room_name = hello.room.clone();
    let joined = async {
        state
            .auth
            .authenticate(hello.token.as_deref(), &hello.room)?;
        let room = state.rooms.get(&hello.room).await?;
        let opts = state.session;
        let accepted = room
            .with(move |conn| ServerSession::accept(conn, &hello, opts))
            .await?;
        Ok::<_, ServerError>((room, accepted))
    }
    .await;
    let (room, mut session, frames) = match joined {
        Ok((room, Ok((session, frames)))) => (room, session, frames),
        Ok((_, Err(rejection))) => {
            let e = ServerError::Core(rejection.error);
            warn!(%peer, room = room_name, site, code = e.code(), error = %e, "join refused");
            close_with(&mut socket, rejection.frame, &e).await;
            return;
        }
        Err(e) => {
            warn!(%peer, room = room_name, site, code = e.code(), error = %e, "join refused");
            fail(&mut socket, &e).await;
            return;
        }
    };
    info!(%peer, room = room_name, site, "client joined");
    let mut changed = room.subscribe();
    changed.borrow_and_update();
    let (mut received, mut frames_in) = (0usize, 0usize);
    if !send_all(&mut socket, frames).await {
        return;
    }
    let end: Option<ServerError> = loop {
        tokio::select! {
            msg = socket.recv() => {
                let bytes = match classify(msg) {
                    Ok(Incoming::Frame(b)) if b.is_empty() => continue,
                    Ok(Incoming::Frame(b)) => b,
                    Ok(Incoming::Closed) => break None,
                    Err(e) => break Some(e),
                };
                frames_in += 1;
                let (back, result) = match room.with(move |conn| {
                    let r = session.handle(conn, &bytes);
                    (session, r)
                }).await {
                    Ok(v) => v,
                    Err(e) => break Some(e),
                };
                session = back;
                match result {
                    Ok(out) => {
                        received += out.received_rows;
                        if out.room_changed {
                            room.notify();
                            // Our own notification is not news to us.
                            changed.borrow_and_update();
                        }
                        if !send_all(&mut socket, out.send).await {
                            break None;
                        }
                    }
                    Err(e) => break Some(ServerError::Core(e)),
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    break None;
                }
                if session.blocked() {
                    // The client's acks will pump; the notification is coalesced meanwhile.
                    continue;
                }
                let (back, result) = match room.with(move |conn| {
                    let r = session.pump(conn);
                    (session, r)
                }).await {
                    Ok(v) => v,
                    Err(e) => break Some(e),
                };
                session = back;
                match result {
                    Ok(frames) => {
                        if !send_all(&mut socket, frames).await {
                            break None;
                        }
                    }
                    Err(e) => break Some(ServerError::Core(e)),
                }
            }
            _ = stop.changed() => break Some(ServerError::ShuttingDown),
        }
    };
    match end {
        None => {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: CLOSE_NORMAL,
                    reason: "".into(),
                })))
                .await;
            info!(%peer, room = room_name, site, frames_in, rows_received = received, "client left");
        }
        Some(e) => {
            if matches!(e, ServerError::ShuttingDown) {
                info!(%peer, room = room_name, site, "closing for shutdown");
            } else {
                warn!(%peer, room = room_name, site, code = e.code(), error = %e, frames_in, rows_received = received, "connection failed");
            }
            fail(&mut socket, &e).await;
        }
    }
}
