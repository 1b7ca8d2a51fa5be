//! A room's own thread: the only user of the room's SQLite connection, and the keeper of every
//! joined client's [`ServerSession`].
//!
//! Connections send it commands ([`Cmd`]) and receive encoded frames on their own outbound
//! queue ([`Outbound`]). Each turn of its loop takes every command that is waiting, then:
//! 1. **group commit**: all uploaded chunks go in one transaction, each in its own savepoint
//!    (a refused chunk is rolled back alone), with their cursors; each client's `Ack` is queued
//!    only after the commit returned;
//! 2. acknowledgements, dev tasks and departures, in arrival order (an `Ack` pumps that
//!    client's next pages from the database);
//! 3. **fan-out**: when the room changed, the rows committed since the last turn are read once
//!    and encoded once per distinct audience (everyone, or everyone but the writer), and the
//!    same bytes are queued to every client that had sent everything before them; the others
//!    (window full, smaller chunks) read their own pages when their acks arrive;
//! 4. joins (after the fan-out, so a newcomer's backlog includes this turn's rows).
//!
//! Nothing here waits on a socket: a slow client only stops acknowledging, which stops its
//! flow (its window), never the room's. Queued frames per client are bounded by the protocol:
//! its window of `Changes` frames, and one `Ack` per upload (a connection sends one upload at a
//! time and reads no further frame while it has unsent frames).

use crate::error::ServerError;
use bytes::Bytes;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use synqlite_core::crdt::{self, Change, Cursor, SiteFilter};
use synqlite_core::rusqlite::Connection;
use synqlite_core::sync::{
    encode_changes, Changes, Frame, FrameKind, Hello, ServerOptions, ServerSession,
    MAX_FRAME_PAYLOAD,
};
use tokio::sync::{mpsc, oneshot};

/// A frame for one connection, already encoded.
#[derive(Debug)]
pub struct Outbound {
    /// The frame.
    pub bytes: Bytes,
    /// Whether it is a `Changes` frame (the client owes an `Ack` for it).
    pub changes: bool,
}

/// A connection's outbound queue.
pub type OutQueue = mpsc::UnboundedSender<Outbound>;

/// Where a refused join ends: the error, and the frame to send before closing.
pub type Refusal = (ServerError, Vec<u8>);

/// A joined connection's ticket.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// Its id in the room.
    pub id: u64,
    /// Change rows of the join-time backlog.
    pub backlog: u64,
}

/// A task run on the room's connection (dev endpoints, seeding, tests).
pub type Task = Box<dyn FnOnce(&Connection) + Send>;

/// What connections ask of the room.
pub enum Cmd {
    /// Join with this Hello; frames go to `out`.
    Join {
        hello: Box<Hello>,
        out: OutQueue,
        reply: oneshot::Sender<Result<Ticket, Refusal>>,
    },
    /// Apply an uploaded chunk (checked by the connection); the `Ack` goes to the client's
    /// queue after the commit, the number of rows applied to `reply`.
    Upload {
        id: u64,
        changes: Changes,
        reply: oneshot::Sender<Result<usize, ServerError>>,
    },
    /// The client acknowledged a `Changes` frame.
    Ack { id: u64 },
    /// The connection ended.
    Leave { id: u64 },
    /// Run a task on the connection.
    Run(Task),
    /// Checkpoint and stop (the room has no connections left, or the server stops).
    Close(oneshot::Sender<()>),
}

struct Member {
    session: ServerSession,
    site: [u8; 16],
    out: OutQueue,
}

impl Member {
    fn send(&self, frames: Vec<Vec<u8>>) {
        for f in frames {
            let changes = matches!(Frame::peek_kind(&f), Ok(FrameKind::Changes));
            // A closed queue means the connection is ending; its Leave follows.
            let _ = self.out.send(Outbound {
                bytes: Bytes::from(f),
                changes,
            });
        }
    }
}

/// Commands taken per turn at most (the rest wait for the next turn).
const MAX_BATCH: usize = 1024;

/// The room thread's state.
pub struct Actor {
    name: String,
    conn: Connection,
    path: std::path::PathBuf,
    incarnation: [u8; 16],
    opts: ServerOptions,
    members: HashMap<u64, Member>,
    next_id: u64,
    /// Past every committed row the members were told about.
    head: Cursor,
}

struct PendingUpload {
    id: u64,
    changes: Changes,
    reply: oneshot::Sender<Result<usize, ServerError>>,
}

impl Actor {
    /// An actor for the room `name` over its open connection to the file at `path`.
    pub fn new(
        name: String,
        conn: Connection,
        path: std::path::PathBuf,
        opts: ServerOptions,
    ) -> Result<Actor, ServerError> {
        let incarnation = super::store::open_incarnation(&conn, &path)?;
        let opts = ServerOptions {
            incarnation,
            ..opts
        };
        let head = Cursor {
            db_version: crdt::db_version(&conn)?,
            seq: i64::MAX,
        };
        Ok(Actor {
            name,
            conn,
            path,
            incarnation,
            opts,
            members: HashMap::new(),
            next_id: 1,
            head,
        })
    }

    /// Serves commands until `Close` or until every sender is gone; then checkpoints.
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            closing = self.turn(batch);
        }
        if let Err(e) = super::store::close_clean(&self.conn, &self.path, &self.incarnation) {
            tracing::warn!(room = self.name, error = %e, "closing the room cleanly failed");
        }
        tracing::info!(room = self.name, "room closed");
        drop(self);
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    /// One turn over a batch of commands (see the module docs); returns the `Close` reply if
    /// the batch asked to close.
    fn turn(&mut self, batch: Vec<Cmd>) -> Option<oneshot::Sender<()>> {
        let mut uploads = Vec::new();
        let mut rest = Vec::new();
        for c in batch {
            match c {
                Cmd::Upload { id, changes, reply } => {
                    uploads.push(PendingUpload { id, changes, reply })
                }
                other => rest.push(other),
            }
        }
        let mut changed = self.commit_uploads(uploads);
        let mut joins = Vec::new();
        let mut closing = None;
        for c in rest {
            match c {
                Cmd::Ack { id } => self.ack(id),
                Cmd::Leave { id } => {
                    self.members.remove(&id);
                }
                Cmd::Run(task) => {
                    self.run_task(task);
                    changed = true;
                }
                Cmd::Join { hello, out, reply } => joins.push((hello, out, reply)),
                Cmd::Close(done) => closing = Some(done),
                Cmd::Upload { .. } => {}
            }
        }
        if changed {
            if let Err(e) = self.fan_out() {
                tracing::error!(room = self.name, code = e.code(), error = %e, "fan-out failed");
            }
        }
        for (hello, out, reply) in joins {
            let _ = reply.send(self.join(&hello, out));
        }
        closing
    }

    fn commit_uploads(&mut self, uploads: Vec<PendingUpload>) -> bool {
        if uploads.is_empty() {
            return false;
        }
        let conn = &self.conn;
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = ServerError::Core(e.into());
            for u in uploads {
                let _ = u.reply.send(Err(internal(&e)));
            }
            return false;
        }
        let mut done = Vec::with_capacity(uploads.len());
        for u in uploads {
            let Some(m) = self.members.get_mut(&u.id) else {
                let _ = u
                    .reply
                    .send(Err(ServerError::Internal("the connection left".into())));
                continue;
            };
            let result = conn
                .execute_batch("SAVEPOINT upload")
                .map_err(synqlite_core::Error::from)
                .and_then(|()| m.session.apply_upload(conn, &u.changes));
            let settle = match &result {
                Ok(_) => "RELEASE upload",
                Err(_) => "ROLLBACK TO upload; RELEASE upload",
            };
            if let Err(e) = conn.execute_batch(settle) {
                tracing::error!(room = self.name, error = %e, "savepoint failed");
            }
            done.push((u.id, result, u.reply));
        }
        let committed = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            ServerError::Core(e.into())
        });
        let mut changed = false;
        for (id, result, reply) in done {
            let answer = match (&committed, result) {
                (Err(e), _) => Err(internal(e)),
                (Ok(()), Err(e)) => Err(ServerError::Core(e)),
                (Ok(()), Ok(up)) => {
                    changed |= up.applied > 0;
                    if let Some(m) = self.members.get(&id) {
                        m.send(vec![up.ack]);
                    }
                    Ok(up.applied)
                }
            };
            let _ = reply.send(answer);
        }
        changed
    }

    fn ack(&mut self, id: u64) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if !m.session.acked() {
            return;
        }
        if m.session.caught_up() && m.session.sent() >= self.head {
            // Everything committed was handed out already: nothing to read.
            return;
        }
        match m.session.pump(&self.conn) {
            Ok(frames) => m.send(frames),
            Err(e) => self.drop_member(id, ServerError::Core(e)),
        }
    }

    fn run_task(&mut self, task: Task) {
        let conn = &self.conn;
        if std::panic::catch_unwind(AssertUnwindSafe(|| task(conn))).is_err() {
            tracing::error!(room = self.name, "a room task panicked");
        }
        if !conn.is_autocommit() {
            tracing::error!(
                room = self.name,
                "a room task left a transaction open; rolling it back"
            );
            let _ = conn.execute_batch("ROLLBACK");
        }
    }

    /// Ends a member whose session failed: its queue closes, and its connection reports the
    /// error it finds (the room's database failed).
    fn drop_member(&mut self, id: u64, e: ServerError) {
        tracing::error!(room = self.name, code = e.code(), error = %e, "session failed");
        self.members.remove(&id);
    }

    fn join(&mut self, hello: &Hello, out: OutQueue) -> Result<Ticket, Refusal> {
        // Connections that ended but whose Leave is still queued are gone already.
        self.members.retain(|_, m| !m.out.is_closed());
        if self.members.values().any(|m| m.site == hello.site_id) {
            let e = ServerError::SiteInUse;
            let frame = crate::connection::error_frame(&e);
            return Err((e, frame));
        }
        let (session, frames) = ServerSession::accept(&self.conn, hello, self.opts)
            .map_err(|r| (ServerError::Core(r.error), r.frame))?;
        let id = self.next_id;
        self.next_id += 1;
        let backlog = session.backlog();
        let m = Member {
            session,
            site: hello.site_id,
            out,
        };
        m.send(frames);
        self.members.insert(id, m);
        Ok(Ticket { id, backlog })
    }

    /// Hands the rows committed since `head` to the members (see the module docs).
    fn fan_out(&mut self) -> Result<(), ServerError> {
        let prev = self.head;
        let page = crdt::limit_page_bytes(
            crdt::changes_page(
                &self.conn,
                prev,
                self.opts.max_chunk as usize,
                SiteFilter::All,
            )?,
            MAX_FRAME_PAYLOAD,
        );
        if !page.complete {
            // More than one frame's worth: everyone reads their own pages.
            self.head = Cursor {
                db_version: crdt::db_version(&self.conn)?,
                seq: i64::MAX,
            };
            self.pump_all();
            return Ok(());
        }
        let next = page.next;
        self.head = next;
        let rows = page.changes;
        let mut writers: Vec<&[u8]> = Vec::new();
        for r in &rows {
            if !writers.contains(&&r.site_id[..]) {
                writers.push(&r.site_id[..]);
            }
        }
        // Encoded once per audience: `None` all rows, `Some(site)` all but that site's.
        let mut encoded: HashMap<Option<[u8; 16]>, Bytes> = HashMap::new();
        let mut behind = Vec::new();
        for (id, m) in self.members.iter_mut() {
            let wrote = writers.contains(&&m.site[..]);
            let count = if wrote {
                rows.iter().filter(|r| r.site_id[..] != m.site[..]).count()
            } else {
                rows.len()
            };
            if m.session.can_follow(prev, count) {
                if count > 0 {
                    let key = wrote.then_some(m.site);
                    let bytes = encoded
                        .entry(key)
                        .or_insert_with(|| encode(&rows, key.as_ref(), next))
                        .clone();
                    let _ = m.out.send(Outbound {
                        bytes,
                        changes: true,
                    });
                }
                m.session.followed(next, count);
            } else if !m.session.blocked() && m.session.sent() < next {
                behind.push(*id);
            }
        }
        for id in behind {
            self.pump(id);
        }
        Ok(())
    }

    fn pump(&mut self, id: u64) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        match m.session.pump(&self.conn) {
            Ok(frames) => m.send(frames),
            Err(e) => self.drop_member(id, ServerError::Core(e)),
        }
    }

    fn pump_all(&mut self) {
        let ids: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, m)| !m.session.blocked())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.pump(id);
        }
    }
}

/// A `Changes` frame of `rows` (without those of `skip`'s site) ending at `last`.
fn encode(rows: &[Change], skip: Option<&[u8; 16]>, last: Cursor) -> Bytes {
    let keep = rows
        .iter()
        .filter(move |r| skip.is_none_or(|s| r.site_id[..] != s[..]));
    Bytes::from(encode_changes(keep, last))
}

fn internal(e: &ServerError) -> ServerError {
    ServerError::Internal(format!("the room's transaction failed: {e}"))
}
