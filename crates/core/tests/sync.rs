//! The sync protocol without a network: frames round-trip, the decoder survives hostile bytes,
//! a client resumes an interrupted initial sync exactly, schemas are checked at join, and
//! random interleavings of clients, writes, disconnects and reconnects converge.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use std::collections::VecDeque;
use synqlite_core::crdt::{self, Change, Cursor};
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::{params, Connection};
use synqlite_core::schema::{apply_schema, SchemaMode};
use synqlite_core::sync::{
    Changes, ClientConfig, ClientSession, ErrorFrame, Frame, Hello, PeerCursor, SchemaId,
    ServerOptions, ServerSession, Welcome, PROTOCOL_VERSION,
};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL DEFAULT 0, note);
    SELECT crsql_as_crr('items');";

#[cfg(not(target_family = "wasm"))]
const CASES: u32 = 200;
#[cfg(target_family = "wasm")]
const CASES: u32 = 40;

fn db() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    apply_schema(&c, "test", SCHEMA, SchemaMode::Strict).unwrap();
    c
}

fn rows(c: &Connection) -> Vec<(String, i64, Value)> {
    let mut s = c
        .prepare("SELECT id, n, note FROM items ORDER BY id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn insert_many(c: &Connection, prefix: &str, n: usize) {
    c.execute_batch("BEGIN").unwrap();
    for i in 0..n {
        c.execute(
            "INSERT INTO items (id, n, note) VALUES (?1, ?2, ?3)",
            params![format!("{prefix}{i:05}"), i as i64, format!("note {i}")],
        )
        .unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

fn hello_of(bytes: &[u8]) -> Hello {
    match Frame::decode(bytes).unwrap() {
        Frame::Hello(h) => h,
        f => panic!("expected hello, got {f:?}"),
    }
}

/// One connection: a client session, its server session, and the frames in flight each way.
struct Link {
    client: ClientSession,
    server: Option<ServerSession>,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
}

impl Link {
    fn open(client_db: &Connection, room: &str, chunk: u32) -> Link {
        let mut cfg = ClientConfig::new(room);
        cfg.chunk_size = chunk;
        cfg.window = 2;
        let mut client = ClientSession::new(cfg);
        let hello = client.hello(client_db).unwrap();
        Link {
            client,
            server: None,
            up: VecDeque::from([hello]),
            down: VecDeque::new(),
        }
    }

    /// Delivers one frame client -> server; returns whether the room changed.
    fn deliver_up(&mut self, room: &Connection, opts: ServerOptions) -> bool {
        let Some(bytes) = self.up.pop_front() else {
            return false;
        };
        match &mut self.server {
            None => {
                let hello = hello_of(&bytes);
                let (session, frames) = ServerSession::accept(room, &hello, opts)
                    .map_err(|r| r.error)
                    .unwrap();
                self.server = Some(session);
                self.down.extend(frames);
                false
            }
            Some(s) => {
                let out = s.handle(room, &bytes).unwrap();
                self.down.extend(out.send);
                out.room_changed
            }
        }
    }

    fn deliver_down(&mut self, client_db: &Connection) -> usize {
        let Some(bytes) = self.down.pop_front() else {
            return 0;
        };
        let out = self.client.handle(client_db, &bytes).unwrap();
        self.up.extend(out.send);
        out.received_rows
    }

    fn pump_server(&mut self, room: &Connection) {
        if let Some(s) = &mut self.server {
            self.down.extend(s.pump(room).unwrap());
        }
    }

    fn idle(&self) -> bool {
        self.up.is_empty() && self.down.is_empty()
    }
}

/// Runs links until no frame is in flight, pumping every other link when the room changes.
fn settle(room: &Connection, clients: &[Connection], links: &mut [Option<Link>]) {
    let opts = ServerOptions::default();
    for _ in 0..100_000 {
        let mut busy = false;
        for i in 0..links.len() {
            let Some(link) = links[i].as_mut() else {
                continue;
            };
            if link.idle() {
                continue;
            }
            busy = true;
            let changed = link.deliver_up(room, opts);
            links[i].as_mut().unwrap().deliver_down(&clients[i]);
            if changed {
                for (j, other) in links.iter_mut().enumerate() {
                    if j != i {
                        if let Some(o) = other.as_mut() {
                            o.pump_server(room);
                        }
                    }
                }
            }
        }
        if !busy {
            return;
        }
    }
    panic!("links did not settle");
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn frames_round_trip() {
    let change = |val: Value, seq: i64| Change {
        table: "items".into(),
        pk: crdt::pack::pack(&[Value::Text(format!("k{seq}"))]).unwrap(),
        cid: "note".into(),
        val,
        col_version: 3,
        db_version: 9,
        site_id: vec![7; 16].into(),
        cl: 1,
        seq,
    };
    let frames = vec![
        Frame::Hello(Hello {
            room: "r-1".into(),
            site_id: [1; 16],
            schema: SchemaId {
                name: "media".into(),
                version: -42,
            },
            head: 77,
            cursors: vec![PeerCursor {
                site: [2; 16],
                incarnation: [4; 16],
                cursor: Cursor {
                    db_version: 5,
                    seq: 3,
                },
            }],
            token: Some("tok".into()),
            chunk_size: 1024,
        }),
        Frame::Welcome(Welcome {
            server_site: [3; 16],
            incarnation: [5; 16],
            your_cursor: Cursor::START,
            start: Cursor {
                db_version: 8,
                seq: 2,
            },
            total: 50_000,
            chunk_size: 512,
        }),
        Frame::Changes(Changes {
            rows: vec![
                change(Value::Null, 0),
                change(Value::Integer(i64::MIN), 1),
                change(Value::Real(-0.5), 2),
                change(Value::Text("é\0x".into()), 3),
                change(Value::Blob(vec![0, 255]), 4),
            ],
            last: Cursor {
                db_version: 9,
                seq: i64::MAX,
            },
        }),
        Frame::Ack(Cursor {
            db_version: 1,
            seq: 0,
        }),
        Frame::CaughtUp,
        Frame::Error(ErrorFrame {
            code: "SCHEMA_MISMATCH".into(),
            message: "m".into(),
            retryable: true,
            details: vec![("server_schema".into(), "a@1".into())],
        }),
    ];
    for f in frames {
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        // Every strict prefix is rejected, never accepted as something else.
        for cut in 0..bytes.len() {
            let e = Frame::decode(&bytes[..cut]).unwrap_err();
            assert_eq!(e.code(), "PROTOCOL_ERROR", "prefix {cut} of {}", f.kind());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Frame::decode(&long).unwrap_err().code(), "PROTOCOL_ERROR");
    }
    let mut other = Frame::CaughtUp.encode();
    other[1] = PROTOCOL_VERSION + 1;
    assert_eq!(
        Frame::decode(&other).unwrap_err().code(),
        "PROTOCOL_VERSION"
    );
    assert_eq!(
        Frame::decode(&[0xD5, PROTOCOL_VERSION, 99])
            .unwrap_err()
            .code(),
        "PROTOCOL_ERROR"
    );
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn decoder_never_panics_on_hostile_bytes() {
    let source = db();
    insert_many(&source, "k", 20);
    let page = crdt::changes_page(&source, Cursor::START, 100, crdt::SiteFilter::All).unwrap();
    let valid = Frame::Changes(Changes {
        rows: page.changes,
        last: page.next,
    })
    .encode();
    let mut runner = TestRunner::new(Config {
        cases: CASES * 20,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..6),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(random, flips, mutate)| {
            if mutate {
                let mut b = valid.clone();
                for (i, v) in &flips {
                    let at = i.index(b.len());
                    b[at] = *v;
                }
                if let Err(e) = Frame::decode(&b) {
                    prop_assert!(["PROTOCOL_ERROR", "PROTOCOL_VERSION"].contains(&e.code()));
                }
            } else {
                let mut b = vec![0xD5, PROTOCOL_VERSION];
                b.extend(random);
                let _ = Frame::decode(&b);
            }
            Ok(())
        })
        .unwrap();
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn interrupted_initial_sync_resumes_without_duplicates() {
    let room = db();
    insert_many(&room, "r", 250);
    let client = db();
    let mut received = 0usize;
    let mut totals = Vec::new();
    // Cut the connection after a few chunks, three times, then let it finish.
    for attempt in 0..4 {
        let mut link = Link::open(&client, "room", 64);
        link.deliver_up(&room, ServerOptions::default());
        let mut chunks = 0;
        loop {
            if attempt < 3 && chunks == 2 {
                break; // frames in flight are lost with the connection
            }
            let n = link.deliver_down(&client);
            received += n;
            if n > 0 {
                chunks += 1;
            }
            if link.client.caught_up() {
                break;
            }
            while !link.up.is_empty() {
                link.deliver_up(&room, ServerOptions::default());
            }
            if link.idle() {
                break;
            }
        }
        if attempt == 0 {
            // 250 rows x 2 columns.
            assert_eq!(link.client.progress().1, 500);
        }
        totals.push(link.client.progress());
    }
    // Each attempt announced exactly what was left: nothing was received twice.
    assert_eq!(received, 500, "totals per attempt: {totals:?}");
    assert_eq!(totals[0].1, 500);
    assert_eq!(totals[1].1, 500 - 128);
    assert_eq!(totals[3], (500 - 3 * 128, 500 - 3 * 128));
    assert_eq!(rows(&client), rows(&room));
    assert_eq!(
        client
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn schema_mismatch_is_refused_with_both_versions() {
    let room = db();
    let client = Connection::open_in_memory().unwrap();
    let mut client = client;
    crdt::init(&mut client).unwrap();
    apply_schema(
        &client,
        "test",
        "CREATE TABLE IF NOT EXISTS other (id TEXT PRIMARY KEY NOT NULL);",
        SchemaMode::Strict,
    )
    .unwrap();
    let mut session = ClientSession::new(ClientConfig::new("room"));
    let hello = hello_of(&session.hello(&client).unwrap());
    let rejection = ServerSession::accept(&room, &hello, ServerOptions::default()).unwrap_err();
    assert_eq!(rejection.error.code(), "SCHEMA_MISMATCH");
    match Frame::decode(&rejection.frame).unwrap() {
        Frame::Error(e) => {
            assert_eq!(e.code, "SCHEMA_MISMATCH");
            let keys: Vec<&str> = e.details.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["server_schema", "client_schema"]);
            assert_ne!(e.details[0].1, e.details[1].1);
        }
        f => panic!("{f:?}"),
    }
    // The client surfaces the server's code.
    session.hello(&client).unwrap();
    let err = session.handle(&client, &rejection.frame).unwrap_err();
    assert_eq!(err.code(), "SCHEMA_MISMATCH");
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn bad_changes_write_nothing() {
    let room = db();
    let client = db();
    insert_many(&client, "c", 3);
    let mut link = Link::open(&client, "room", 1024);
    link.deliver_up(&room, ServerOptions::default());
    while !link.down.is_empty() {
        link.deliver_down(&client);
    }
    let mut page = crdt::changes_page(&client, Cursor::START, 100, crdt::SiteFilter::All).unwrap();
    page.changes[1].table = "nope".into();
    let bad = Frame::Changes(Changes {
        rows: page.changes,
        last: page.next,
    })
    .encode();
    let err = link
        .server
        .as_mut()
        .unwrap()
        .handle(&room, &bad)
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_CHANGE");
    assert!(rows(&room).is_empty());
    assert_eq!(
        crdt::peer_cursor(&room, &crdt::site_id(&client).unwrap()).unwrap(),
        None
    );
    // A Hello after joining is a protocol error.
    let again = link.client.hello(&client).unwrap();
    let err = link
        .server
        .as_mut()
        .unwrap()
        .handle(&room, &again)
        .unwrap_err();
    assert_eq!(err.code(), "PROTOCOL_ERROR");
}

#[derive(Debug, Clone)]
enum Op {
    /// Client writes (upsert of key, value), possibly several in one transaction.
    Write(Index, Vec<(u8, i64, bool)>),
    Delete(Index, u8),
    Connect(Index),
    Disconnect(Index),
    /// Deliver up to n frames on a link, in a random direction.
    Step(Index, u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<Index>(), prop::collection::vec((0u8..12, -3i64..50, any::<bool>()), 1..6))
            .prop_map(|(c, w)| Op::Write(c, w)),
        1 => (any::<Index>(), 0u8..12).prop_map(|(c, k)| Op::Delete(c, k)),
        1 => any::<Index>().prop_map(Op::Connect),
        1 => any::<Index>().prop_map(Op::Disconnect),
        4 => (any::<Index>(), 1u8..8, any::<bool>()).prop_map(|(c, n, up)| Op::Step(c, n, up)),
    ]
}

fn write(c: &Connection, batch: &[(u8, i64, bool)]) {
    c.execute_batch("BEGIN").unwrap();
    for (k, n, note) in batch {
        let note: Value = if *note {
            Value::Text(format!("t{n}"))
        } else {
            Value::Null
        };
        c.execute(
            "INSERT INTO items (id, n, note) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET n = excluded.n, note = excluded.note",
            params![format!("k{k}"), n, note],
        )
        .unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

fn run_case(n_clients: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let room = db();
    let clients: Vec<Connection> = (0..n_clients).map(|_| db()).collect();
    let mut links: Vec<Option<Link>> = (0..n_clients).map(|_| None).collect();
    let opts = ServerOptions {
        max_chunk: 3,
        window: 2,
        ..ServerOptions::default()
    };
    let chunk = 3;
    for op in ops {
        match op {
            Op::Write(c, batch) => {
                let i = c.index(n_clients);
                write(&clients[i], batch);
                if let Some(l) = links[i].as_mut() {
                    let frames = l.client.pump(&clients[i]).unwrap();
                    l.up.extend(frames);
                }
            }
            Op::Delete(c, k) => {
                let i = c.index(n_clients);
                clients[i]
                    .execute("DELETE FROM items WHERE id = ?1", [format!("k{k}")])
                    .unwrap();
                if let Some(l) = links[i].as_mut() {
                    let frames = l.client.pump(&clients[i]).unwrap();
                    l.up.extend(frames);
                }
            }
            Op::Connect(c) => {
                let i = c.index(n_clients);
                if links[i].is_none() {
                    links[i] = Some(Link::open(&clients[i], "room", chunk));
                }
            }
            Op::Disconnect(c) => links[c.index(n_clients)] = None,
            Op::Step(c, n, up) => {
                let i = c.index(n_clients);
                for _ in 0..*n {
                    let Some(l) = links[i].as_mut() else { break };
                    if *up {
                        if l.deliver_up(&room, opts) {
                            for (j, other) in links.iter_mut().enumerate() {
                                if j != i {
                                    if let Some(o) = other.as_mut() {
                                        o.pump_server(&room);
                                    }
                                }
                            }
                        }
                    } else {
                        l.deliver_down(&clients[i]);
                    }
                }
            }
        }
    }
    // Everyone reconnects (fresh sessions, as after a network loss) and the network drains.
    for (i, l) in links.iter_mut().enumerate() {
        *l = Some(Link::open(&clients[i], "room", chunk));
    }
    settle(&room, &clients, &mut links);
    // Changes made by clients that joined before others finished uploading are relayed by
    // later pumps; one more round of fresh sessions must have nothing left to move.
    for (i, l) in links.iter_mut().enumerate() {
        *l = Some(Link::open(&clients[i], "room", chunk));
    }
    settle(&room, &clients, &mut links);
    let expected = rows(&room);
    for (i, c) in clients.iter().enumerate() {
        prop_assert_eq!(&rows(c), &expected, "client {} differs from the room", i);
        prop_assert!(links[i].as_ref().unwrap().client.up_to_date());
    }
    Ok(())
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn random_interleavings_converge() {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(2usize..5, prop::collection::vec(op(), 1..60)),
            |(n, ops)| run_case(n, &ops),
        )
        .unwrap();
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn large_values_are_split_across_frames() {
    let room = db();
    let client = db();
    client.execute_batch("BEGIN").unwrap();
    for i in 0..10 {
        client
            .execute(
                "INSERT INTO items (id, note) VALUES (?1, zeroblob(1048576))",
                [format!("big{i}")],
            )
            .unwrap();
    }
    client.execute_batch("COMMIT").unwrap();
    let mut link = Link::open(&client, "room", 1024);
    let mut sizes = Vec::new();
    while !link.idle() {
        if let Some(f) = link.up.front() {
            if matches!(Frame::decode(f), Ok(Frame::Changes(_))) {
                sizes.push(f.len());
            }
        }
        link.deliver_up(&room, ServerOptions::default());
        link.deliver_down(&client);
    }
    // 10 MiB of values in one transaction: several frames, each within the payload budget.
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(
        sizes
            .iter()
            .all(|s| *s <= synqlite_core::sync::MAX_FRAME_PAYLOAD + (1 << 20) + 4096),
        "{sizes:?}"
    );
    assert_eq!(rows(&room), rows(&client));
    assert!(link.client.up_to_date());
}

/// Decodes the rows of a `Changes` frame.
fn changes_of(bytes: &[u8]) -> Changes {
    match Frame::decode(bytes).unwrap() {
        Frame::Changes(c) => c,
        f => panic!("expected changes, got {f:?}"),
    }
}

#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_family = "wasm"), test)]
fn a_batch_of_chunks_commits_all_or_nothing_with_the_last_cursor() {
    let room = db();
    insert_many(&room, "r", 250); // 500 change rows
    let client = db();
    let server_site = crdt::site_id(&room).unwrap();
    let opts = ServerOptions::default(); // window 4
    let mut link = Link::open(&client, "room", 64);
    link.deliver_up(&room, opts);
    // Welcome, then the window's worth of chunks.
    let welcome = link.down.pop_front().unwrap();
    link.up
        .extend(link.client.handle(&client, &welcome).unwrap().send);
    let batch: Vec<Vec<u8>> = link.down.drain(..).collect();
    assert_eq!(batch.len(), 4);
    let last = changes_of(&batch[3]).last;

    // A batch whose third chunk is bad: nothing of the batch is kept, not even the good chunks.
    let mut bad = changes_of(&batch[2]);
    bad.rows[5].table = "nope".into();
    let poisoned = [
        batch[0].as_slice(),
        batch[1].as_slice(),
        &Frame::Changes(bad).encode(),
        batch[3].as_slice(),
    ];
    let mut session = ClientSession::new(ClientConfig::new("room"));
    session.hello(&client).unwrap();
    session.handle(&client, &welcome).unwrap();
    let err = session.handle_batch(&client, &poisoned).unwrap_err();
    assert_eq!(err.code(), "INVALID_CHANGE");
    assert!(rows(&client).is_empty());
    assert_eq!(crdt::peer_cursor(&client, &server_site).unwrap(), None);

    // The good batch: every chunk applied and acknowledged, the cursor at the last one.
    let frames: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let out = link.client.handle_batch(&client, &frames).unwrap();
    assert_eq!(out.received_rows, 4 * 64);
    assert!(out.committed);
    let acks: Vec<Cursor> = out
        .send
        .iter()
        .filter_map(|f| match Frame::decode(f).unwrap() {
            Frame::Ack(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 4);
    assert_eq!(acks[3], last);
    assert_eq!(
        crdt::peer_cursor(&client, &server_site).unwrap(),
        Some(last)
    );
    assert_eq!(link.client.progress(), (4 * 64, 500));
    link.up.extend(out.send);

    // The rest arrives in batches of whatever is queued (chunks, then CaughtUp).
    loop {
        while !link.up.is_empty() {
            link.deliver_up(&room, opts);
        }
        if link.down.is_empty() {
            break;
        }
        let queued: Vec<Vec<u8>> = link.down.drain(..).collect();
        let frames: Vec<&[u8]> = queued.iter().map(Vec::as_slice).collect();
        link.up
            .extend(link.client.handle_batch(&client, &frames).unwrap().send);
    }
    assert!(link.client.up_to_date());
    assert_eq!(link.client.progress(), (500, 500));
    assert_eq!(rows(&client), rows(&room));
}
