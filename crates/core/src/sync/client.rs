//! The client end of a sync connection.
//!
//! One [`ClientSession`] per connection attempt: make one, send [`ClientSession::hello`], feed
//! every received frame to [`ClientSession::handle`], call [`ClientSession::pump`] after local
//! commits, and drop it when the connection closes. Everything that must survive a reconnect
//! (the cursor of what the server sent) lives in the database.

use super::frame::{Changes, Frame, Hello, PeerCursor};
use super::{
    in_transaction, schema_id, DEFAULT_CHUNK_SIZE, DEFAULT_WINDOW, MAX_FRAME_PAYLOAD,
    MAX_HELLO_CURSORS,
};
use crate::crdt::{self, Cursor, SiteFilter};
use crate::error::{Error, Result};
use rusqlite::Connection;

/// What a client asks for when it joins.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Room to join.
    pub room: String,
    /// Token for the server's `Authenticator`.
    pub token: Option<String>,
    /// Change rows per inbound and outbound chunk (the server may lower it).
    pub chunk_size: u32,
    /// Unacknowledged outbound chunks allowed in flight.
    pub window: usize,
}

impl ClientConfig {
    /// A configuration for `room` with default chunk size and window.
    pub fn new(room: impl Into<String>) -> Self {
        ClientConfig {
            room: room.into(),
            token: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            window: DEFAULT_WINDOW,
        }
    }
}

/// What handling one frame produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientOutput {
    /// Encoded frames to send, in order.
    pub send: Vec<Vec<u8>>,
    /// Change rows this frame made the database apply (0 for other frames).
    pub received_rows: usize,
    /// Whether a committed transaction changed the database (reactivity has rows to announce).
    pub committed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    AwaitWelcome,
    Joined,
}

/// State of one client connection.
#[derive(Debug)]
pub struct ClientSession {
    cfg: ClientConfig,
    state: State,
    server_site: [u8; 16],
    /// Local changes up to here were sent.
    sent: Cursor,
    /// Outbound `Changes` frames not acknowledged yet.
    in_flight: usize,
    /// The last outbound page reached the end of the local changes.
    outbound_complete: bool,
    caught_up: bool,
    total: u64,
    applied: u64,
}

impl ClientSession {
    /// A session that will join `cfg.room`.
    pub fn new(mut cfg: ClientConfig) -> Self {
        if cfg.chunk_size == 0 {
            cfg.chunk_size = DEFAULT_CHUNK_SIZE;
        }
        cfg.window = cfg.window.max(1);
        ClientSession {
            cfg,
            state: State::New,
            server_site: [0; 16],
            sent: Cursor::START,
            in_flight: 0,
            outbound_complete: false,
            caught_up: false,
            total: 0,
            applied: 0,
        }
    }

    /// The `Hello` frame to send first: site id, schema and the stored cursors.
    pub fn hello(&mut self, conn: &Connection) -> Result<Vec<u8>> {
        let mut cursors = Vec::new();
        for (site, cursor) in crdt::peer_cursors(conn)? {
            let Ok(site) = <[u8; 16]>::try_from(site.as_slice()) else {
                continue;
            };
            if cursors.len() == MAX_HELLO_CURSORS {
                break;
            }
            cursors.push(PeerCursor {
                site,
                incarnation: peer_incarnation(conn, &site)?.unwrap_or([0; 16]),
                cursor,
            });
        }
        let hello = Hello {
            room: self.cfg.room.clone(),
            site_id: crdt::site_id(conn)?,
            schema: schema_id(conn)?,
            head: crdt::db_version(conn)?,
            cursors,
            token: self.cfg.token.clone(),
            chunk_size: self.cfg.chunk_size,
        };
        self.state = State::AwaitWelcome;
        Ok(Frame::Hello(hello).encode())
    }

    /// Handles one received frame. An `Error` frame from the server comes back as
    /// `Err(Error::Remote{..})` with the server's code; a frame the protocol does not allow
    /// here is a `PROTOCOL_ERROR`. After an error, drop the session and close the connection.
    pub fn handle(&mut self, conn: &Connection, bytes: &[u8]) -> Result<ClientOutput> {
        self.handle_batch(conn, &[bytes])
    }

    /// Handles frames received back to back, in order, as [`ClientSession::handle`] would one
    /// by one, except that each run of consecutive `Changes` frames is applied in one
    /// transaction that stores the cursor of its last frame: one durable commit instead of one
    /// per frame, with the same guarantee (a crash keeps all of the run and its cursor, or
    /// none of it). Every frame is still acknowledged. The batch is bounded by what the server
    /// may have in flight (its window of unacknowledged frames).
    pub fn handle_batch(&mut self, conn: &Connection, frames: &[&[u8]]) -> Result<ClientOutput> {
        let mut out = ClientOutput::default();
        let mut run: Vec<Changes> = Vec::new();
        for bytes in frames {
            match (self.state, Frame::decode(bytes)?) {
                (State::Joined, Frame::Changes(c)) => run.push(c),
                (_, frame) => {
                    self.apply_run(conn, std::mem::take(&mut run), &mut out)?;
                    self.handle_frame(conn, frame, &mut out)?;
                }
            }
        }
        self.apply_run(conn, run, &mut out)?;
        Ok(out)
    }

    /// Handles a decoded frame other than a `Changes` frame of a joined session.
    fn handle_frame(
        &mut self,
        conn: &Connection,
        frame: Frame,
        out: &mut ClientOutput,
    ) -> Result<()> {
        match (self.state, frame) {
            (_, Frame::Error(e)) => {
                return Err(Error::Remote {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                })
            }
            (State::AwaitWelcome, Frame::Welcome(w)) => {
                self.restart_at(conn, &w.server_site, w.incarnation, w.start)?;
                self.server_site = w.server_site;
                self.sent = w.your_cursor;
                self.total = w.total;
                self.state = State::Joined;
                self.cfg.chunk_size = w.chunk_size.clamp(1, self.cfg.chunk_size);
                out.send.extend(self.pump(conn)?);
            }
            (State::Joined, Frame::Ack(_)) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                out.send.extend(self.pump(conn)?);
            }
            (State::Joined, Frame::CaughtUp) => {
                self.caught_up = true;
                self.total = self.applied;
            }
            (state, f) => {
                return Err(Error::Protocol(format!(
                    "unexpected {} frame from the server ({state:?})",
                    f.kind()
                )))
            }
        }
        Ok(())
    }

    /// Applies a run of `Changes` frames in one transaction with the last one's cursor, then
    /// acknowledges each.
    fn apply_run(
        &mut self,
        conn: &Connection,
        run: Vec<Changes>,
        out: &mut ClientOutput,
    ) -> Result<()> {
        let Some(last) = run.last().map(|c| c.last) else {
            return Ok(());
        };
        let applied = in_transaction(conn, || {
            let mut applied = 0;
            for c in &run {
                applied += crdt::apply_changes(conn, &c.rows)?.applied;
            }
            crdt::set_peer_cursor(conn, &self.server_site, last)?;
            Ok(applied)
        })?;
        out.committed |= applied > 0;
        for c in &run {
            out.received_rows += c.rows.len();
            if !self.caught_up {
                self.applied += c.rows.len() as u64;
                self.total = self.total.max(self.applied);
            }
            out.send.push(Frame::Ack(c.last).encode());
        }
        Ok(())
    }

    /// Makes the stored cursor for the room `site` the one the server streams from (`start`,
    /// earlier than ours when the room was restored or is another incarnation), with the
    /// room's incarnation. Moving a cursor back only makes rows arrive twice, which merging
    /// ignores.
    fn restart_at(
        &self,
        conn: &Connection,
        site: &[u8; 16],
        incarnation: [u8; 16],
        start: Cursor,
    ) -> Result<()> {
        let ours = crdt::peer_cursor(conn, site)?.unwrap_or(Cursor::START);
        if ours == start && peer_incarnation(conn, site)? == Some(incarnation) {
            return Ok(());
        }
        in_transaction(conn, || {
            crdt::forget_peer_cursor(conn, site)?;
            if start != Cursor::START {
                crdt::set_peer_cursor(conn, site, start)?;
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO crsql_master (key, value) VALUES (?1, ?2)",
            )?
            .execute(rusqlite::params![incarnation_key(site), &incarnation[..]])?;
            Ok(())
        })
    }

    /// Frames carrying local changes not sent yet, as many as the window allows. Call it after
    /// local commits (it returns nothing before the server's `Welcome`).
    pub fn pump(&mut self, conn: &Connection) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        if self.state != State::Joined {
            return Ok(frames);
        }
        while self.in_flight < self.cfg.window {
            let page = crdt::limit_page_bytes(
                crdt::changes_page(
                    conn,
                    self.sent,
                    self.cfg.chunk_size as usize,
                    SiteFilter::Local,
                )?,
                MAX_FRAME_PAYLOAD,
            );
            self.outbound_complete = page.complete;
            if !page.changes.is_empty() {
                frames.push(
                    Frame::Changes(Changes {
                        rows: page.changes,
                        last: page.next,
                    })
                    .encode(),
                );
                self.in_flight += 1;
            }
            self.sent = page.next;
            if page.complete {
                break;
            }
        }
        Ok(frames)
    }

    /// Whether the server's `Welcome` arrived.
    pub fn joined(&self) -> bool {
        self.state == State::Joined
    }

    /// Whether everything the server held at join time was received and every local change
    /// sent so far was acknowledged.
    pub fn up_to_date(&self) -> bool {
        self.caught_up && self.in_flight == 0 && self.outbound_complete
    }

    /// Whether the join-time backlog from the server was fully received.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Initial-sync progress: `(applied, total)` change rows.
    pub fn progress(&self) -> (u64, u64) {
        (self.applied, self.total)
    }

    /// The room database's site id (zero before `Welcome`).
    pub fn server_site(&self) -> [u8; 16] {
        self.server_site
    }
}

/// The `crsql_master` key of the incarnation a peer's cursor belongs to.
fn incarnation_key(site: &[u8; 16]) -> String {
    let hex: String = site.iter().map(|b| format!("{b:02x}")).collect();
    format!("synqlite.peer_incarnation.{hex}")
}

/// The incarnation of the room database `site` that our cursor for it belongs to.
fn peer_incarnation(conn: &Connection, site: &[u8; 16]) -> Result<Option<[u8; 16]>> {
    use rusqlite::OptionalExtension;
    let v: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM crsql_master WHERE key = ?1 AND typeof(value) = 'blob'")?
        .query_row([incarnation_key(site)], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
}
