//! The server end of a sync connection, one per connected client, all sharing the room's
//! database connection.
//!
//! The transport decodes the first frame, checks the token (that is the server's business),
//! then calls [`ServerSession::accept`]. Afterwards it feeds every received frame to
//! [`ServerSession::handle`], and calls [`ServerSession::pump`] whenever another client's
//! changes were committed to the room (when `handle` reports `room_changed`).

use super::frame::{Changes, ErrorFrame, Frame, Hello, Welcome};
use super::{in_transaction, schema_id, DEFAULT_CHUNK_SIZE, DEFAULT_WINDOW, MAX_FRAME_PAYLOAD};
use crate::crdt::{self, Cursor, SiteFilter};
use crate::error::{Error, Result};
use rusqlite::Connection;

/// Limits the server applies to every session.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Largest chunk the server sends, whatever the client asks.
    pub max_chunk: u32,
    /// Unacknowledged `Changes` frames allowed in flight to one client.
    pub window: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_chunk: DEFAULT_CHUNK_SIZE * 8,
            window: DEFAULT_WINDOW,
        }
    }
}

/// A refused join: the error, and the encoded error frame to send before closing.
#[derive(Debug)]
pub struct Rejection {
    /// Why.
    pub error: Error,
    /// The error frame for the client.
    pub frame: Vec<u8>,
}

impl Rejection {
    /// A rejection carrying `error` (details: none).
    pub fn new(error: Error) -> Self {
        let frame = Frame::error(&error).encode();
        Rejection { error, frame }
    }
}

/// What handling one frame produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ServerOutput {
    /// Encoded frames to send to this client, in order.
    pub send: Vec<Vec<u8>>,
    /// The room database changed: the other sessions of the room should `pump`.
    pub room_changed: bool,
    /// Change rows received in this frame.
    pub received_rows: usize,
}

/// State of one client's connection to a room.
#[derive(Debug)]
pub struct ServerSession {
    client_site: [u8; 16],
    /// Room changes up to here were sent to the client.
    sent: Cursor,
    in_flight: usize,
    chunk: u32,
    window: usize,
    caught_up_sent: bool,
    rows_sent: u64,
}

impl ServerSession {
    /// Checks the client's schema against the room's and answers its `Hello` with `Welcome`
    /// followed by the first chunks of the backlog. The caller has already checked the room
    /// name and the token.
    pub fn accept(
        conn: &Connection,
        hello: &Hello,
        opts: ServerOptions,
    ) -> std::result::Result<(ServerSession, Vec<Vec<u8>>), Rejection> {
        let ours = schema_id(conn).map_err(Rejection::new)?;
        if ours != hello.schema {
            let error = Error::SchemaMismatch(format!(
                "the room holds schema {ours}, the client holds {}; update the client (or the \
                 server) so both apply the same schema",
                hello.schema
            ));
            let frame = Frame::Error(ErrorFrame {
                code: error.code().to_owned(),
                message: error.to_string(),
                retryable: false,
                details: vec![
                    ("server_schema".into(), ours.to_string()),
                    ("client_schema".into(), hello.schema.to_string()),
                ],
            })
            .encode();
            return Err(Rejection { error, frame });
        }
        let joined = (|| {
            let server_site = crdt::site_id(conn)?;
            let start = hello
                .cursors
                .iter()
                .find(|c| c.site == server_site)
                .map(|c| c.cursor)
                .unwrap_or(Cursor::START);
            let total = crdt::count_changes(conn, start, SiteFilter::Exclude(&hello.site_id))?;
            let your_cursor = crdt::peer_cursor(conn, &hello.site_id)?.unwrap_or(Cursor::START);
            let chunk = match hello.chunk_size {
                0 => DEFAULT_CHUNK_SIZE,
                n => n,
            }
            .min(opts.max_chunk.max(1));
            let mut session = ServerSession {
                client_site: hello.site_id,
                sent: start,
                in_flight: 0,
                chunk,
                window: opts.window.max(1),
                caught_up_sent: false,
                rows_sent: 0,
            };
            let welcome = Frame::Welcome(Welcome {
                server_site,
                incarnation: [0; 16],
                your_cursor,
                start,
                total,
                chunk_size: chunk,
            });
            let mut frames = vec![welcome.encode()];
            frames.extend(session.pump(conn)?);
            Ok((session, frames))
        })();
        joined.map_err(Rejection::new)
    }

    /// Handles one frame from the client (after `accept`). Errors are the client's fault
    /// (malformed frame, invalid change rows: nothing of the frame was written) or the
    /// database's; answer them with [`Frame::error`] and close.
    pub fn handle(&mut self, conn: &Connection, bytes: &[u8]) -> Result<ServerOutput> {
        let mut out = ServerOutput::default();
        match Frame::decode(bytes)? {
            Frame::Changes(c) => {
                out.received_rows = c.rows.len();
                out.room_changed = in_transaction(conn, || {
                    let stats = crdt::apply_changes(conn, &c.rows)?;
                    crdt::set_peer_cursor(conn, &self.client_site, c.last)?;
                    Ok(stats.applied > 0)
                })?;
                out.send.push(Frame::Ack(c.last).encode());
            }
            Frame::Ack(_) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                out.send = self.pump(conn)?;
            }
            Frame::Error(e) => {
                return Err(Error::Remote {
                    code: e.code,
                    message: e.message,
                })
            }
            f => {
                return Err(Error::Protocol(format!(
                    "unexpected {} frame from a joined client",
                    f.kind()
                )))
            }
        }
        Ok(out)
    }

    /// Frames with room changes the client has not seen (its own left out), as many as the
    /// window allows, then `CaughtUp` once the join-time backlog is sent.
    pub fn pump(&mut self, conn: &Connection) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        while self.in_flight < self.window {
            let page = crdt::limit_page_bytes(
                crdt::changes_page(
                    conn,
                    self.sent,
                    self.chunk as usize,
                    SiteFilter::Exclude(&self.client_site),
                )?,
                MAX_FRAME_PAYLOAD,
            );
            self.sent = page.next;
            if !page.changes.is_empty() {
                self.rows_sent += page.changes.len() as u64;
                frames.push(
                    Frame::Changes(Changes {
                        rows: page.changes,
                        last: page.next,
                    })
                    .encode(),
                );
                self.in_flight += 1;
            }
            if page.complete {
                if !self.caught_up_sent {
                    frames.push(Frame::CaughtUp.encode());
                    self.caught_up_sent = true;
                }
                break;
            }
        }
        Ok(frames)
    }

    /// The client's site id.
    pub fn client_site(&self) -> [u8; 16] {
        self.client_site
    }

    /// Change rows put in `Changes` frames for this client so far.
    pub fn rows_sent(&self) -> u64 {
        self.rows_sent
    }

    /// Whether the window is full (the client has not acknowledged enough chunks).
    pub fn blocked(&self) -> bool {
        self.in_flight >= self.window
    }
}
