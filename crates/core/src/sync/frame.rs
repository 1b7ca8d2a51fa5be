//! The frames of the sync protocol and their binary encoding.
//!
//! Every frame is one WebSocket binary message:
//!
//! ```text
//! magic 0xD5 | protocol version (2) | kind | body
//! ```
//!
//! Integers are LEB128 varints (signed ones zigzag-encoded), strings and blobs are
//! length-prefixed, site ids and incarnation ids are 16 raw bytes, booleans one byte (0 or 1),
//! REALs 8 bytes little-endian. A `Changes` body starts with three dictionaries (tables,
//! columns, site ids) that its rows index into, so a chunk of 1024 rows of one table carries the
//! table name once.
//!
//! Decoding checks everything: magic, version (`PROTOCOL_VERSION` error on a mismatch, so the
//! peer can say which versions meet), kind, every length and index, UTF-8, value tags, version
//! ranges, trailing bytes, and the limits below ([`MAX_HELLO_BYTES`], [`MAX_ROWS_PER_FRAME`],
//! [`MAX_NAME_BYTES`], ...). Any failure is a `PROTOCOL_ERROR`. Nothing is allocated in
//! proportion to a count or length the frame declares, only to bytes it actually holds, and
//! decoded rows share the frame's dictionary entries (`Arc`) instead of copying them: decoding
//! allocates at most about 20 times the frame's size (a dictionary of one-byte names is the
//! worst case), checked by `tests/frame_alloc.rs`.
//!
//! [`Frame::peek_kind`] reads only the three header bytes, and [`Frame::decode_hello`] refuses
//! anything but a Hello of at most [`MAX_HELLO_BYTES`] before decoding it, so a server can check
//! an unauthenticated peer's first frame without decoding anything large.

use super::wire::{malformed, Reader, Writer};
use crate::crdt::{Change, Cursor, MAX_VERSION};
use crate::error::{Error, Result};
use rusqlite::types::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// First byte of every frame.
pub const MAGIC: u8 = 0xD5;
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 2;

/// Largest `Hello` frame, in bytes: a bigger one is refused without being decoded (it is the
/// only frame an unauthenticated peer sends).
pub const MAX_HELLO_BYTES: usize = 64 << 10;
/// Most change rows in one `Changes` frame (and most entries in each of its dictionaries).
pub const MAX_ROWS_PER_FRAME: usize = 16_384;
/// Longest table or column name in a `Changes` frame, and longest room or schema name in a
/// `Hello`, in bytes.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest token in a `Hello`, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 << 10;
/// Most peer cursors in a `Hello`.
pub const MAX_HELLO_CURSORS: usize = 256;
/// Longest error code (and error detail key) in an `Error` frame, in bytes.
pub const MAX_ERROR_CODE_BYTES: usize = 64;
/// Longest error message (and error detail value) in an `Error` frame, in bytes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 2048;
/// Most details in an `Error` frame.
pub const MAX_ERROR_DETAILS: usize = 16;

const KIND_HELLO: u8 = 1;
const KIND_WELCOME: u8 = 2;
const KIND_CHANGES: u8 = 3;
const KIND_ACK: u8 = 4;
const KIND_CAUGHT_UP: u8 = 5;
const KIND_ERROR: u8 = 6;

const VAL_NULL: u8 = 0;
const VAL_INTEGER: u8 = 1;
const VAL_REAL: u8 = 2;
const VAL_TEXT: u8 = 3;
const VAL_BLOB: u8 = 4;

/// Name and version of the schema a database holds; both ends of a sync must hold the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaId {
    /// Schema name (`schema_name`, or `migrations` for ordered migration files).
    pub name: String,
    /// Schema version (`schema_version`, or the timestamp of the last migration applied).
    pub version: i64,
}

impl std::fmt::Display for SchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// What a client has received from one peer (a room database), as it tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCursor {
    /// The peer's site id.
    pub site: [u8; 16],
    /// The incarnation of the peer's database the cursor belongs to (a re-created room
    /// database has a new one, and old cursors into it mean nothing).
    pub incarnation: [u8; 16],
    /// Everything of the peer up to here was received.
    pub cursor: Cursor,
}

/// Client -> server, first frame: who joins which room, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The room to join (at most [`MAX_NAME_BYTES`]).
    pub room: String,
    /// The client database's site id.
    pub site_id: [u8; 16],
    /// The client's schema (name at most [`MAX_NAME_BYTES`]).
    pub schema: SchemaId,
    /// The client's committed db_version (so the server can clamp a cursor it holds for this
    /// site to what the client really has).
    pub head: i64,
    /// What the client has received so far, per peer (at most [`MAX_HELLO_CURSORS`]).
    pub cursors: Vec<PeerCursor>,
    /// Credentials for the `Authenticator` (at most [`MAX_TOKEN_BYTES`]).
    pub token: Option<String>,
    /// Change rows per chunk the client wants (the server caps it).
    pub chunk_size: u32,
}

/// Server -> client, answer to `Hello`.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// The room database's site id.
    pub server_site: [u8; 16],
    /// The room database's incarnation id (cursors the client holds for another incarnation
    /// are void).
    pub incarnation: [u8; 16],
    /// What the server has received from this client: upload resumes after it.
    pub your_cursor: Cursor,
    /// Where the server's stream of changes to this client starts.
    pub start: Cursor,
    /// Change rows the server is about to send (for `{applied, total}` progress).
    pub total: u64,
    /// The chunk size the server uses.
    pub chunk_size: u32,
}

/// A chunk of change rows, either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The rows, in the sender's `(db_version, seq)` order (at most [`MAX_ROWS_PER_FRAME`]).
    pub rows: Vec<Change>,
    /// The sender's cursor after this chunk (the receiver stores it with the rows).
    pub last: Cursor,
}

/// An error, sent before closing the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFrame {
    /// Stable error code (`SCHEMA_MISMATCH`, `UNAUTHORIZED`, `PROTOCOL_ERROR`, ...; at most
    /// [`MAX_ERROR_CODE_BYTES`]).
    pub code: String,
    /// Human-readable message (at most [`MAX_ERROR_MESSAGE_BYTES`]).
    pub message: String,
    /// Whether reconnecting later may succeed ([`Error::is_retryable`]).
    pub retryable: bool,
    /// Extra facts, e.g. `server_schema` / `client_schema` for a schema mismatch (at most
    /// [`MAX_ERROR_DETAILS`]).
    pub details: Vec<(String, String)>,
}

/// The kind of a frame, readable from its header alone ([`Frame::peek_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// [`Frame::Hello`].
    Hello,
    /// [`Frame::Welcome`].
    Welcome,
    /// [`Frame::Changes`].
    Changes,
    /// [`Frame::Ack`].
    Ack,
    /// [`Frame::CaughtUp`].
    CaughtUp,
    /// [`Frame::Error`].
    Error,
}

impl FrameKind {
    /// A short name for logs (`hello`, `changes`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Hello => "hello",
            FrameKind::Welcome => "welcome",
            FrameKind::Changes => "changes",
            FrameKind::Ack => "ack",
            FrameKind::CaughtUp => "caught-up",
            FrameKind::Error => "error",
        }
    }

    fn byte(self) -> u8 {
        match self {
            FrameKind::Hello => KIND_HELLO,
            FrameKind::Welcome => KIND_WELCOME,
            FrameKind::Changes => KIND_CHANGES,
            FrameKind::Ack => KIND_ACK,
            FrameKind::CaughtUp => KIND_CAUGHT_UP,
            FrameKind::Error => KIND_ERROR,
        }
    }

    fn from_byte(b: u8) -> Option<FrameKind> {
        Some(match b {
            KIND_HELLO => FrameKind::Hello,
            KIND_WELCOME => FrameKind::Welcome,
            KIND_CHANGES => FrameKind::Changes,
            KIND_ACK => FrameKind::Ack,
            KIND_CAUGHT_UP => FrameKind::CaughtUp,
            KIND_ERROR => FrameKind::Error,
            _ => return None,
        })
    }
}

impl std::fmt::Display for FrameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Client -> server, first frame.
    Hello(Hello),
    /// Server -> client, answer to `Hello`.
    Welcome(Welcome),
    /// Change rows, either way.
    Changes(Changes),
    /// The receiver of a `Changes` frame stored everything up to this cursor.
    Ack(Cursor),
    /// Server -> client: everything the server held at join time was sent.
    CaughtUp,
    /// The sender closes the connection because of this error.
    Error(ErrorFrame),
}

impl Frame {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        self.frame_kind().name()
    }

    /// The kind of this frame.
    pub fn frame_kind(&self) -> FrameKind {
        match self {
            Frame::Hello(_) => FrameKind::Hello,
            Frame::Welcome(_) => FrameKind::Welcome,
            Frame::Changes(_) => FrameKind::Changes,
            Frame::Ack(_) => FrameKind::Ack,
            Frame::CaughtUp => FrameKind::CaughtUp,
            Frame::Error(_) => FrameKind::Error,
        }
    }

    /// An error frame for `err`, with its stable code and [`Error::is_retryable`].
    pub fn error(err: &Error) -> Frame {
        Frame::Error(ErrorFrame {
            code: err.code().to_owned(),
            message: err.to_string(),
            retryable: err.is_retryable(),
            details: Vec::new(),
        })
    }

    /// Encodes the frame. The texts of an `Error` frame are cut (at a character boundary) to
    /// the limits the decoder enforces, and details past [`MAX_ERROR_DETAILS`] left out, so an
    /// error frame always reaches the peer; other frames are encoded as they are (one that
    /// breaks a limit is refused by the peer).
    pub fn encode(&self) -> Vec<u8> {
        if let Frame::Changes(c) = self {
            return encode_changes(&c.rows, c.last);
        }
        let mut w = header(self.frame_kind());
        match self {
            Frame::Hello(h) => {
                w.str(&h.room);
                w.raw(&h.site_id);
                w.str(&h.schema.name);
                w.ivar(h.schema.version);
                w.ivar(h.head);
                w.len(h.cursors.len());
                for c in &h.cursors {
                    w.raw(&c.site);
                    w.raw(&c.incarnation);
                    cursor(&mut w, c.cursor);
                }
                match &h.token {
                    Some(t) => {
                        w.u8(1);
                        w.str(t);
                    }
                    None => w.u8(0),
                }
                w.uvar(u64::from(h.chunk_size));
            }
            Frame::Welcome(m) => {
                w.raw(&m.server_site);
                w.raw(&m.incarnation);
                cursor(&mut w, m.your_cursor);
                cursor(&mut w, m.start);
                w.uvar(m.total);
                w.uvar(u64::from(m.chunk_size));
            }
            Frame::Ack(c) => cursor(&mut w, *c),
            Frame::Changes(_) | Frame::CaughtUp => {}
            Frame::Error(e) => {
                w.str(cut(&e.code, MAX_ERROR_CODE_BYTES));
                w.str(cut(&e.message, MAX_ERROR_MESSAGE_BYTES));
                w.u8(u8::from(e.retryable));
                let details = &e.details[..e.details.len().min(MAX_ERROR_DETAILS)];
                w.len(details.len());
                for (k, v) in details {
                    w.str(cut(k, MAX_ERROR_CODE_BYTES));
                    w.str(cut(v, MAX_ERROR_MESSAGE_BYTES));
                }
            }
        }
        w.buf
    }

    /// The kind of an encoded frame, from its three header bytes (nothing else is read):
    /// `PROTOCOL_ERROR` for a bad magic byte or an unknown kind, `PROTOCOL_VERSION` for a frame
    /// of another protocol version.
    pub fn peek_kind(bytes: &[u8]) -> Result<FrameKind> {
        read_header(&mut Reader::new(bytes))
    }

    /// Decodes a frame that must be a `Hello` (a server's first frame): anything else, and a
    /// Hello of more than [`MAX_HELLO_BYTES`], is refused with a `PROTOCOL_ERROR` before its
    /// body is read.
    pub fn decode_hello(bytes: &[u8]) -> Result<Hello> {
        let mut r = Reader::new(bytes);
        let kind = read_header(&mut r)?;
        if kind != FrameKind::Hello {
            return Err(Error::Protocol(format!(
                "the first frame must be a hello, got {kind}"
            )));
        }
        check_hello_size(bytes)?;
        let hello = read_hello(&mut r)?;
        r.finish()?;
        Ok(hello)
    }

    /// Decodes one frame; any malformed input is a `PROTOCOL_ERROR` (`PROTOCOL_VERSION` for a
    /// frame of another protocol version).
    pub fn decode(bytes: &[u8]) -> Result<Frame> {
        let mut r = Reader::new(bytes);
        let frame = match read_header(&mut r)? {
            FrameKind::Hello => {
                check_hello_size(bytes)?;
                Frame::Hello(read_hello(&mut r)?)
            }
            FrameKind::Welcome => Frame::Welcome(Welcome {
                server_site: r.site("server site")?,
                incarnation: r.site("incarnation")?,
                your_cursor: read_cursor(&mut r)?,
                start: read_cursor(&mut r)?,
                total: r.uvar("total")?,
                chunk_size: chunk_size(&mut r)?,
            }),
            FrameKind::Changes => {
                let last = read_cursor(&mut r)?;
                let rows = decode_rows(&mut r)?;
                Frame::Changes(Changes { rows, last })
            }
            FrameKind::Ack => Frame::Ack(read_cursor(&mut r)?),
            FrameKind::CaughtUp => Frame::CaughtUp,
            FrameKind::Error => {
                let code = r.str_max("error code", MAX_ERROR_CODE_BYTES)?.to_owned();
                let message = r
                    .str_max("error message", MAX_ERROR_MESSAGE_BYTES)?
                    .to_owned();
                let retryable = flag(&mut r, "retryable flag")?;
                let n = r.count_max("error details", 2, MAX_ERROR_DETAILS)?;
                let mut details = Vec::with_capacity(n);
                for _ in 0..n {
                    details.push((
                        r.str_max("detail key", MAX_ERROR_CODE_BYTES)?.to_owned(),
                        r.str_max("detail value", MAX_ERROR_MESSAGE_BYTES)?
                            .to_owned(),
                    ));
                }
                Frame::Error(ErrorFrame {
                    code,
                    message,
                    retryable,
                    details,
                })
            }
        };
        r.finish()?;
        Ok(frame)
    }
}

/// A writer holding the header of a frame of `kind`.
fn header(kind: FrameKind) -> Writer {
    let mut w = Writer::default();
    w.u8(MAGIC);
    w.u8(PROTOCOL_VERSION);
    w.u8(kind.byte());
    w
}

fn read_header(r: &mut Reader<'_>) -> Result<FrameKind> {
    if r.u8("magic")? != MAGIC {
        return Err(malformed("not a synqlite sync frame (bad magic byte)"));
    }
    let version = r.u8("protocol version")?;
    if version != PROTOCOL_VERSION {
        return Err(Error::ProtocolVersion(format!(
            "the peer speaks sync protocol version {version}, this end speaks version \
             {PROTOCOL_VERSION}"
        )));
    }
    let k = r.u8("kind")?;
    FrameKind::from_byte(k).ok_or_else(|| malformed(&format!("unknown message kind {k}")))
}

fn check_hello_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_HELLO_BYTES {
        return Err(Error::Protocol(format!(
            "hello frame of {} bytes exceeds the limit of {MAX_HELLO_BYTES} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

/// The body of a Hello (after the header).
fn read_hello(r: &mut Reader<'_>) -> Result<Hello> {
    let room = r.str_max("room", MAX_NAME_BYTES)?.to_owned();
    let site_id = r.site("site id")?;
    let name = r.str_max("schema name", MAX_NAME_BYTES)?.to_owned();
    let version = r.ivar("schema version")?;
    let head = version_in_range(r, "head")?;
    // A cursor: two 16-byte ids and two varints.
    let n = r.count_max("cursors", 34, MAX_HELLO_CURSORS)?;
    let mut cursors = Vec::with_capacity(n);
    for _ in 0..n {
        cursors.push(PeerCursor {
            site: r.site("cursor site")?,
            incarnation: r.site("cursor incarnation")?,
            cursor: read_cursor(r)?,
        });
    }
    let token = match flag(r, "token flag")? {
        false => None,
        true => Some(r.str_max("token", MAX_TOKEN_BYTES)?.to_owned()),
    };
    let chunk_size = chunk_size(r)?;
    Ok(Hello {
        room,
        site_id,
        schema: SchemaId { name, version },
        head,
        cursors,
        token,
        chunk_size,
    })
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn flag(r: &mut Reader<'_>, what: &str) -> Result<bool> {
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(malformed(&format!("bad {what} {b}"))),
    }
}

fn chunk_size(r: &mut Reader<'_>) -> Result<u32> {
    u32::try_from(r.uvar("chunk size")?).map_err(|_| malformed("chunk size out of range"))
}

fn cursor(w: &mut Writer, c: Cursor) {
    w.ivar(c.db_version);
    w.ivar(c.seq);
}

fn read_cursor(r: &mut Reader<'_>) -> Result<Cursor> {
    let db_version = r.ivar("cursor db_version")?;
    let seq = r.ivar("cursor seq")?;
    if !(0..=MAX_VERSION).contains(&db_version) {
        return Err(malformed("cursor db_version out of range"));
    }
    Ok(Cursor { db_version, seq })
}

/// Index of `key` in a frame dictionary, adding it on first use.
fn intern<'a>(
    map: &mut HashMap<&'a [u8], usize>,
    list: &mut Vec<&'a [u8]>,
    key: &'a [u8],
) -> usize {
    *map.entry(key).or_insert_with(|| {
        list.push(key);
        list.len() - 1
    })
}

/// Encodes a `Changes` frame of `rows` (borrowed: a server encodes the subset of rows meant for
/// one client without copying them) ending at `last`; `Frame::Changes(..).encode()` is this.
/// `rows` is iterated twice. The peer refuses a frame of more than [`MAX_ROWS_PER_FRAME`] rows
/// or with a table or column name longer than [`MAX_NAME_BYTES`].
pub fn encode_changes<'a>(
    rows: impl IntoIterator<Item = &'a Change> + Clone,
    last: Cursor,
) -> Vec<u8> {
    let mut w = header(FrameKind::Changes);
    cursor(&mut w, last);
    let (mut tm, mut cm, mut sm) = (HashMap::new(), HashMap::new(), HashMap::new());
    let (mut tables, mut cids, mut sites) = (Vec::new(), Vec::new(), Vec::new());
    let idx: Vec<(usize, usize, usize)> = rows
        .clone()
        .into_iter()
        .map(|c| {
            (
                intern(&mut tm, &mut tables, c.table.as_bytes()),
                intern(&mut cm, &mut cids, c.cid.as_bytes()),
                intern(&mut sm, &mut sites, &c.site_id),
            )
        })
        .collect();
    for dict in [&tables, &cids, &sites] {
        w.len(dict.len());
        for s in dict.iter() {
            w.bytes(s);
        }
    }
    w.len(idx.len());
    for (c, (t, k, s)) in rows.into_iter().zip(idx) {
        w.len(t);
        w.bytes(&c.pk);
        w.len(k);
        match &c.val {
            Value::Null => w.u8(VAL_NULL),
            Value::Integer(i) => {
                w.u8(VAL_INTEGER);
                w.ivar(*i);
            }
            Value::Real(f) => {
                w.u8(VAL_REAL);
                w.f64(*f);
            }
            Value::Text(t) => {
                w.u8(VAL_TEXT);
                w.str(t);
            }
            Value::Blob(b) => {
                w.u8(VAL_BLOB);
                w.bytes(b);
            }
        }
        w.ivar(c.col_version);
        w.ivar(c.db_version);
        w.len(s);
        w.ivar(c.cl);
        w.ivar(c.seq);
    }
    w.buf
}

fn version_in_range(r: &mut Reader<'_>, what: &str) -> Result<i64> {
    let v = r.ivar(what)?;
    if !(0..=MAX_VERSION).contains(&v) {
        return Err(malformed(&format!("{what} {v} out of range")));
    }
    Ok(v)
}

fn index<'a, T>(r: &mut Reader<'_>, dict: &'a [T], what: &str) -> Result<&'a T> {
    let i = r.uvar(what)?;
    usize::try_from(i)
        .ok()
        .and_then(|i| dict.get(i))
        .ok_or_else(|| malformed(&format!("{what} index {i} out of range")))
}

/// A dictionary of names, each at most [`MAX_NAME_BYTES`]. Empty names share one allocation,
/// so every entry costs at most 20 times its encoded size (16-byte slot, 16-byte `Arc` header
/// and the name rounded up to 8, against one length byte and the name).
fn names(r: &mut Reader<'_>, what: &str) -> Result<Vec<Arc<str>>> {
    let n = r.count_max(what, 1, MAX_ROWS_PER_FRAME)?;
    let mut out = Vec::with_capacity(n);
    let mut empty: Option<Arc<str>> = None;
    for _ in 0..n {
        let s = r.str_max(what, MAX_NAME_BYTES)?;
        out.push(if s.is_empty() {
            empty.get_or_insert_with(|| Arc::from("")).clone()
        } else {
            Arc::from(s)
        });
    }
    Ok(out)
}

fn decode_rows(r: &mut Reader<'_>) -> Result<Vec<Change>> {
    let tables = names(r, "table name")?;
    let cids = names(r, "column name")?;
    let n = r.count_max("site ids", 17, MAX_ROWS_PER_FRAME)?;
    let mut sites: Vec<Arc<[u8]>> = Vec::with_capacity(n);
    for _ in 0..n {
        let b = r.bytes("site id")?;
        if b.len() != 16 {
            return Err(malformed("a site id is not 16 bytes"));
        }
        sites.push(Arc::from(b));
    }
    // A row is at least 9 bytes (one per field).
    let n = r.count_max("rows", 9, MAX_ROWS_PER_FRAME)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let table = index(r, &tables, "table")?.clone();
        let pk = r.bytes("pk")?.to_vec();
        let cid = index(r, &cids, "column")?.clone();
        let val = match r.u8("value tag")? {
            VAL_NULL => Value::Null,
            VAL_INTEGER => Value::Integer(r.ivar("integer value")?),
            VAL_REAL => Value::Real(r.f64("real value")?),
            VAL_TEXT => Value::Text(r.str("text value")?.to_owned()),
            VAL_BLOB => Value::Blob(r.bytes("blob value")?.to_vec()),
            t => return Err(malformed(&format!("unknown value tag {t}"))),
        };
        let col_version = version_in_range(r, "col_version")?;
        let db_version = version_in_range(r, "db_version")?;
        let site_id = index(r, &sites, "site")?.clone();
        let cl = version_in_range(r, "cl")?;
        let seq = version_in_range(r, "seq")?;
        rows.push(Change {
            table,
            pk,
            cid,
            val,
            col_version,
            db_version,
            site_id,
            cl,
            seq,
        });
    }
    Ok(rows)
}
