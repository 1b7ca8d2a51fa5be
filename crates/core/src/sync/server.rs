//! The server end of a sync connection, one per connected client, all sharing the room's
//! database connection.
//!
//! The transport checks the room name, the token and the schema, then calls
//! [`ServerSession::accept`]. Afterwards, for every received frame:
//! - an uploaded `Changes` frame is checked with [`ServerSession::check_upload`] (rows of the
//!   client's own site only, versions in range) and applied with
//!   [`ServerSession::apply_upload`] inside a transaction the transport owns (so it can commit
//!   the uploads of several clients at once), which also stores the client's cursor, derived
//!   from the rows received and never from what the client claims;
//! - an `Ack` calls [`ServerSession::acked`] and then [`ServerSession::pump`].
//!
//! When the room's database changed (another client's upload committed), the transport either
//! hands the just-committed rows, read once, to every session that had sent everything before
//! them ([`ServerSession::can_follow`] / [`ServerSession::followed`]: one encoded frame shared
//! by many clients), or calls [`ServerSession::pump`], which reads the rows from the database.
//!
//! [`ServerSession::handle`] does all of it for one frame in its own transaction (for tests and
//! simple transports).

use super::frame::{Changes, ErrorFrame, Frame, Hello, Welcome};
use super::{
    in_transaction, schema_id, DEFAULT_CHUNK_SIZE, DEFAULT_WINDOW, MAX_CHUNK_SIZE,
    MAX_FRAME_PAYLOAD, MAX_ROWS_PER_FRAME,
};
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
    /// The room database's incarnation id (see [`Welcome::incarnation`]): a client's cursor of
    /// another incarnation is not trusted.
    pub incarnation: [u8; 16],
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_chunk: MAX_CHUNK_SIZE,
            window: DEFAULT_WINDOW,
            incarnation: [0; 16],
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

/// The `SCHEMA_MISMATCH` rejection for a client holding `theirs` in a room holding `ours`.
pub fn schema_rejection(ours: &super::SchemaId, theirs: &super::SchemaId) -> Rejection {
    let error = Error::SchemaMismatch(format!(
        "the room holds schema {ours}, the client holds {theirs}; update the client (or the \
         server) so both apply the same schema"
    ));
    let frame = Frame::Error(ErrorFrame {
        code: error.code().to_owned(),
        message: error.to_string(),
        retryable: false,
        details: vec![
            ("server_schema".into(), ours.to_string()),
            ("client_schema".into(), theirs.to_string()),
        ],
    })
    .encode();
    Rejection { error, frame }
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

/// What [`ServerSession::apply_upload`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// Change rows that changed the room database.
    pub applied: usize,
    /// The `Ack` frame to send once the transaction committed.
    pub ack: Vec<u8>,
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
    total: u64,
}

impl ServerSession {
    /// Checks the client's schema against the room's and answers its `Hello` with `Welcome`
    /// followed by the first chunks of the backlog. The caller has already checked the room
    /// name and the token.
    ///
    /// The room streams to the client from the client's cursor for this room, unless that
    /// cursor belongs to another incarnation of the room database or is past the room's own
    /// `db_version` (the room went back in time: restored, or lost commits): then from the
    /// start. The cursor the room holds for the client's site is where the client's uploads
    /// resume; when it is past the client's own `head` (the client database went back), it is
    /// reset so the client uploads everything again. Merging is idempotent: a resync duplicates
    /// nothing.
    pub fn accept(
        conn: &Connection,
        hello: &Hello,
        opts: ServerOptions,
    ) -> std::result::Result<(ServerSession, Vec<Vec<u8>>), Rejection> {
        let ours = schema_id(conn).map_err(Rejection::new)?;
        if ours != hello.schema {
            return Err(schema_rejection(&ours, &hello.schema));
        }
        let joined = (|| {
            let server_site = crdt::site_id(conn)?;
            let head = crdt::db_version(conn)?;
            let start = hello
                .cursors
                .iter()
                .find(|c| c.site == server_site)
                .filter(|c| c.incarnation == opts.incarnation && c.cursor.db_version <= head)
                .map(|c| c.cursor)
                .unwrap_or(Cursor::START);
            let total = crdt::count_changes(conn, start, SiteFilter::Exclude(&hello.site_id))?;
            let mut your_cursor = crdt::peer_cursor(conn, &hello.site_id)?.unwrap_or(Cursor::START);
            if your_cursor.db_version > hello.head {
                crdt::forget_peer_cursor(conn, &hello.site_id)?;
                your_cursor = Cursor::START;
            }
            let chunk = match hello.chunk_size {
                0 => DEFAULT_CHUNK_SIZE,
                n => n,
            }
            .min(opts.max_chunk.clamp(1, MAX_ROWS_PER_FRAME as u32));
            let mut session = ServerSession {
                client_site: hello.site_id,
                sent: start,
                in_flight: 0,
                chunk,
                window: opts.window.max(1),
                caught_up_sent: false,
                rows_sent: 0,
                total,
            };
            let welcome = Frame::Welcome(Welcome {
                server_site,
                incarnation: opts.incarnation,
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

    /// Checks an uploaded chunk before it is applied: every row must be the client's own
    /// (a client never speaks for another site id). Version ranges and the rows themselves are
    /// checked by the merge, before it writes anything.
    pub fn check_upload(&self, changes: &Changes) -> Result<()> {
        check_own_rows(&self.client_site, changes)
    }

    /// Applies an uploaded chunk in the caller's transaction (run [`Self::check_upload`]
    /// first) and stores the client's cursor: the greatest `(db_version, seq)` among the rows
    /// received, never the frame's own claim. Send the returned `Ack` once the transaction
    /// committed; an empty chunk writes nothing.
    pub fn apply_upload(&mut self, conn: &Connection, changes: &Changes) -> Result<Upload> {
        let ack = Frame::Ack(changes.last).encode();
        let Some(received) = changes.rows.iter().map(Cursor::after).max() else {
            return Ok(Upload { applied: 0, ack });
        };
        let stats = crdt::apply_changes(conn, &changes.rows)?;
        crdt::set_peer_cursor(conn, &self.client_site, received)?;
        Ok(Upload {
            applied: stats.applied,
            ack,
        })
    }

    /// Records an `Ack` from the client; returns whether a `Changes` frame was in flight (an
    /// `Ack` for nothing changes nothing).
    pub fn acked(&mut self) -> bool {
        if self.in_flight == 0 {
            return false;
        }
        self.in_flight -= 1;
        true
    }

    /// Handles one frame from the client (after `accept`) in its own transaction. Errors are
    /// the client's fault (malformed frame, invalid change rows: nothing of the frame was
    /// written) or the database's; answer them with [`Frame::error`] and close.
    pub fn handle(&mut self, conn: &Connection, bytes: &[u8]) -> Result<ServerOutput> {
        let mut out = ServerOutput::default();
        match Frame::decode(bytes)? {
            Frame::Changes(c) => {
                self.check_upload(&c)?;
                out.received_rows = c.rows.len();
                let up = if c.rows.is_empty() {
                    self.apply_upload(conn, &c)?
                } else {
                    in_transaction(conn, || self.apply_upload(conn, &c))?
                };
                out.room_changed = up.applied > 0;
                out.send.push(up.ack);
            }
            Frame::Ack(_) => {
                if self.acked() {
                    out.send = self.pump(conn)?;
                }
            }
            Frame::Error(e) => {
                return Err(Error::Remote {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
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

    /// Whether the rows committed right after `head` may be handed to this client from memory
    /// (see the module docs): it has sent everything up to `head`, its join-time backlog is
    /// done, its window has room, and `rows` fit in one of its chunks.
    pub fn can_follow(&self, head: Cursor, rows: usize) -> bool {
        self.caught_up_sent
            && self.sent == head
            && self.in_flight < self.window
            && rows <= self.chunk as usize
    }

    /// Records that the rows committed up to `next` were handed to the client in one frame of
    /// `rows` rows (0: none of them was for this client, nothing was sent).
    pub fn followed(&mut self, next: Cursor, rows: usize) {
        self.sent = self.sent.max(next);
        if rows > 0 {
            self.in_flight += 1;
            self.rows_sent += rows as u64;
        }
    }

    /// Whether the join-time backlog was sent (and `CaughtUp` with it).
    pub fn caught_up(&self) -> bool {
        self.caught_up_sent
    }

    /// Room changes up to here were sent to the client.
    pub fn sent(&self) -> Cursor {
        self.sent
    }

    /// The client's site id.
    pub fn client_site(&self) -> [u8; 16] {
        self.client_site
    }

    /// Change rows put in `Changes` frames for this client so far.
    pub fn rows_sent(&self) -> u64 {
        self.rows_sent
    }

    /// Change rows announced in `Welcome` (the join-time backlog).
    pub fn backlog(&self) -> u64 {
        self.total
    }

    /// Whether the window is full (the client has not acknowledged enough chunks).
    pub fn blocked(&self) -> bool {
        self.in_flight >= self.window
    }
}

/// Refuses (`INVALID_CHANGE`) an uploaded chunk holding a row of another site than `site`, the
/// uploading client's: a client never speaks for another site id.
pub fn check_own_rows(site: &[u8; 16], changes: &Changes) -> Result<()> {
    for (i, c) in changes.rows.iter().enumerate() {
        if c.site_id[..] != site[..] {
            return Err(Error::InvalidChange(format!(
                "change {i}: a client uploads only its own changes (site id {}), this row \
                 carries another site id",
                hex(site)
            )));
        }
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
