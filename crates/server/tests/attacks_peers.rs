//! Issue 11's attacks by joined peers, against the real `synqlite-server` binary on loopback:
//! version poisoning (attack 2), site-id spoofing and cursor rewinds (attack 3), token and
//! grant enforcement (attack 8). Each test says what the server did before the fix.
//!
//! Attackers speak raw frames ([`Raw`]): a Hello made by a real client session for their own
//! database (then tampered with), then hand-made `Changes` frames.

#[path = "common/binary.rs"]
mod binary;
mod common;

use binary::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use synqlite_core::crdt::{self, Cursor};
use synqlite_core::sync::MAX_VERSION;

const WAIT: Duration = Duration::from_secs(30);

/// The versions the core accepts from a peer leave this much headroom under `MAX_VERSION`.
const HEADROOM: i64 = 1 << 40;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Attack 2, version poisoning: a joined client uploads a row of the cell another client wrote
/// with `db_version`, `col_version` or `cl` at 2^53-1 (`MAX_VERSION`, the largest the frame
/// format carries), or all three: each upload is refused with `INVALID_CHANGE` and nothing of
/// it is written; afterwards the honest writer updates that cell and writes a new row, and a
/// client joining later syncs everything, every frame it receives decoding (no version beyond
/// `MAX_VERSION`, none within the headroom in the room file).
///
/// Before the fix the server merged such rows: the next write of the cell made its
/// `col_version` 2^53, past what the frame format carries, and every later joiner's decoder
/// refused the frame with the room's rows (`PROTOCOL_ERROR`), so nobody could sync the room
/// again.
///
/// Observed on this branch (the core's version headroom, commit 90067ce on `core-frames`, not
/// merged yet): every one of these uploads is acknowledged. With `db_version` at the limit the
/// room's db_version became 2^53 at the next write and a later joiner failed with
/// `PROTOCOL_ERROR: malformed frame: cursor db_version out of range`; with `col_version` at the
/// limit the attacker's value beat every later write of the cell; with `cl` at the limit the
/// row's causal length was pinned there. With 90067ce cherry-picked, this test passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_limit_versions_are_refused_and_the_room_stays_syncable() {
    let bin = Bin::start(&[]).await;
    let url = bin.url();
    let schema = bin.schema.clone();
    let mut honest =
        Client::join(&url, db_with(&schema, &[("shared", "a1")]), "poison", None).await;
    honest.until(|c| c.session.up_to_date()).await;

    type Tamper = fn(&mut crdt::Change);
    let cases: [(&str, Tamper); 4] = [
        ("db_version", |r| r.db_version = MAX_VERSION),
        ("col_version", |r| r.col_version = MAX_VERSION),
        ("cl", |r| r.cl = MAX_VERSION),
        ("all", |r| {
            r.db_version = MAX_VERSION;
            r.col_version = MAX_VERSION;
            r.cl = MAX_VERSION;
        }),
    ];
    for (what, tamper) in cases {
        let evil = db_with(&schema, &[("shared", "evil")]);
        let mut rows = all_rows(&evil);
        assert!(!rows.is_empty());
        rows.iter_mut().for_each(tamper);
        let last = rows.iter().map(Cursor::after).max().unwrap();
        let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
        raw.join(&hello_bytes(&evil, "poison", None, |_| {})).await;
        raw.send(&changes_frame(rows, last)).await.unwrap();
        let code = raw.rd.until_closed(Duration::from_secs(20)).await;
        assert_eq!(code.as_deref(), Some("INVALID_CHANGE"), "{what}");
    }

    // The honest writer goes on: it updates the cell the attacker aimed at, and adds a row.
    honest
        .db
        .execute("UPDATE items SET v = 'a2' WHERE id = 'shared'", [])
        .unwrap();
    insert(&honest.db, "after", 0, 1);
    honest.push().await;
    honest.until(|c| c.session.up_to_date()).await;
    // A later joiner decodes every frame (its session refuses any out-of-range version).
    let mut later = Client::join(&url, client_db(&schema), "poison", None).await;
    later.until(|c| c.session.up_to_date()).await;
    assert_eq!(
        items(&later.db),
        vec![
            ("after-0000".to_owned(), Some("value 0".to_owned())),
            ("shared".to_owned(), Some("a2".to_owned())),
        ]
    );
    // And it hears the next write live.
    insert(&honest.db, "live", 0, 1);
    honest.push().await;
    later.until(|c| items(&c.db).len() == 3).await;
    drop((honest, later));

    let stopped = bin.stop().await;
    let room = stopped.room_db("poison");
    for r in all_rows(&room) {
        for (name, v) in [
            ("db_version", r.db_version),
            ("col_version", r.col_version),
            ("cl", r.cl),
            ("seq", r.seq),
        ] {
            assert!(v < MAX_VERSION - HEADROOM, "{name} {v} in the room: {r:?}");
        }
    }
    for (site, c) in crdt::peer_cursors(&room).unwrap() {
        assert!(
            c.db_version < MAX_VERSION - HEADROOM,
            "{}: {c:?}",
            hex(&site)
        );
    }
}

/// Attack 3a, site-id spoofing while the victim is connected: the attacker joins the victim's
/// room presenting the victim's site id. The server waits ~2 s for the victim's connection to
/// end (a reconnecting client's old socket may linger), then refuses with `SITE_IN_USE`; the
/// victim keeps syncing.
///
/// Before the fix the server accepted a second session for the same site id: the attacker could
/// upload rows in the victim's name and acknowledge (so skip) the victim's downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_site_id_cannot_be_joined_twice() {
    let bin = Bin::start(&[]).await;
    let schema = bin.schema.clone();
    let mut victim = Client::join(&bin.url(), db_with(&schema, &[("v", "1")]), "sites", None).await;
    victim.until(|c| c.session.up_to_date()).await;
    let victim_site = crdt::site_id(&victim.db).unwrap();

    let attacker = client_db(&schema);
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    let t = Instant::now();
    raw.send(&hello_bytes(&attacker, "sites", None, |h| {
        h.site_id = victim_site
    }))
    .await
    .unwrap();
    // The victim keeps reading meanwhile (and answering pings).
    let code = tokio::select! {
        code = raw.rd.until_closed(WAIT) => code,
        _ = async { loop { let _ = victim.step(Duration::from_millis(100)).await; } } => unreachable!(),
    };
    let took = t.elapsed();
    assert_eq!(code.as_deref(), Some("SITE_IN_USE"));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "{took:?}"
    );
    insert(&victim.db, "v", 1, 2);
    victim.push().await;
    victim.until(|c| c.session.up_to_date()).await;
    let mut other = Client::join(&bin.url(), client_db(&schema), "sites", None).await;
    other.until(|c| items(&c.db).len() == 3).await;
}

/// Attack 3b, cursor rewind by claim: a client that uploaded three rows sends an empty
/// `Changes` frame whose `last` cursor is (2^53-1, 2^40). The cursor the server stores for its
/// site (`crsql_tracked_peers` in the room file, and `Welcome.your_cursor` when it rejoins)
/// stays the one of the rows it received; so do everybody else's.
///
/// Before the fix the server stored the frame's claimed cursor: the client's next session
/// started uploading after (2^53-1, 2^40), so its later writes never reached the room (and a
/// spoofer could do that to anyone's site).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_changes_frame_cannot_move_a_cursor() {
    let bin = Bin::start(&[]).await;
    let schema = bin.schema.clone();
    let mut victim =
        Client::join(&bin.url(), db_with(&schema, &[("v", "1")]), "cursors", None).await;
    victim.until(|c| c.session.up_to_date()).await;
    let victim_site = crdt::site_id(&victim.db).unwrap();
    let victim_rows = all_rows(&victim.db);
    let victim_cursor = victim_rows.iter().map(Cursor::after).max().unwrap();

    let attacker = db_with(&schema, &[("a", "1"), ("b", "2"), ("c", "3")]);
    let site = crdt::site_id(&attacker).unwrap();
    let rows = all_rows(&attacker);
    let received = rows.iter().map(Cursor::after).max().unwrap();
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    let w = raw
        .join(&hello_bytes(&attacker, "cursors", None, |_| {}))
        .await;
    assert_eq!(w.your_cursor, Cursor::START);
    raw.send(&changes_frame(rows, received)).await.unwrap();
    raw.send(&empty_changes(FAR)).await.unwrap();
    raw.send(&empty_changes(Cursor {
        db_version: MAX_VERSION,
        seq: i64::MAX,
    }))
    .await
    .unwrap();
    // Three acks (one per frame), whatever else comes.
    let mut acks = 0;
    while acks < 3 {
        let f = raw.rd.binary(WAIT).await.expect("acks, not a close");
        if let synqlite_core::sync::Frame::Ack(_) = synqlite_core::sync::Frame::decode(&f).unwrap()
        {
            acks += 1;
        }
    }
    drop(raw);
    // Rejoin (the server may take a moment to see the old socket closed): told the cursor of
    // the rows it sent.
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    let w = raw
        .join(&hello_bytes(&attacker, "cursors", None, |_| {}))
        .await;
    assert_eq!(w.your_cursor, received);
    drop(raw);
    drop(victim);

    let stopped = bin.stop().await;
    let room = stopped.room_db("cursors");
    assert_eq!(crdt::peer_cursor(&room, &site).unwrap(), Some(received));
    assert_eq!(
        crdt::peer_cursor(&room, &victim_site).unwrap(),
        Some(victim_cursor)
    );
    assert_eq!(count(&room, "items"), 4);
}

/// Attack 3c, rows in another's name: a joined client (its own site id) uploads rows carrying
/// the victim's site id: refused with `INVALID_CHANGE`, and nothing is written (no row, no
/// cursor for either site).
///
/// Before the fix the server merged them: anyone could write rows attributed to another
/// device, and move that device's stored cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_another_site_are_refused() {
    let bin = Bin::start(&[]).await;
    let schema = bin.schema.clone();
    let mut victim = Client::join(&bin.url(), db_with(&schema, &[("v", "1")]), "names", None).await;
    victim.until(|c| c.session.up_to_date()).await;
    let victim_site = crdt::site_id(&victim.db).unwrap();
    let victim_cursor = all_rows(&victim.db).iter().map(Cursor::after).max();

    let attacker = db_with(&schema, &[("forged", "x"), ("v", "overwritten")]);
    let site = crdt::site_id(&attacker).unwrap();
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.join(&hello_bytes(&attacker, "names", None, |_| {}))
        .await;
    // All rows forged, then one forged row among the attacker's own.
    let mut forged = all_rows(&attacker);
    for r in &mut forged {
        r.site_id = victim_site.to_vec().into();
        r.db_version += 10;
    }
    let last = forged.iter().map(Cursor::after).max().unwrap();
    raw.send(&changes_frame(forged, last)).await.unwrap();
    assert_eq!(
        raw.rd.until_closed(WAIT).await.as_deref(),
        Some("INVALID_CHANGE")
    );
    let mut mixed = all_rows(&attacker);
    mixed.last_mut().unwrap().site_id = victim_site.to_vec().into();
    let last = mixed.iter().map(Cursor::after).max().unwrap();
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.join(&hello_bytes(&attacker, "names", None, |_| {}))
        .await;
    raw.send(&changes_frame(mixed, last)).await.unwrap();
    assert_eq!(
        raw.rd.until_closed(WAIT).await.as_deref(),
        Some("INVALID_CHANGE")
    );
    victim.step(Duration::from_millis(200)).await.unwrap();
    assert_eq!(items(&victim.db), vec![("v".into(), Some("1".into()))]);
    drop(victim);

    let stopped = bin.stop().await;
    let room = stopped.room_db("names");
    assert_eq!(items(&room), vec![("v".into(), Some("1".into()))]);
    assert_eq!(crdt::peer_cursor(&room, &site).unwrap(), None);
    assert_eq!(
        crdt::peer_cursor(&room, &victim_site).unwrap(),
        victim_cursor
    );
}

/// Attack 3d, spoofing a departed site (an open server cannot tell who owns a site id): after
/// the victim disconnected, a spoofer joins with its site id and uploads an empty `Changes`
/// frame claiming (2^53-1, 2^40), then one row in the victim's name claiming the same. The
/// victim's stored cursor ends at that row's `(db_version, seq)`, the greatest of the rows
/// received, never at the claims; the victim, back, is told that cursor.
///
/// Before the fix the stored cursor was the frame's claim: one empty frame made the server
/// believe it held everything the victim would ever write, so the victim's later writes were
/// never uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofer_cannot_push_a_cursor_past_the_rows_it_sent() {
    let bin = Bin::start(&[]).await;
    let schema = bin.schema.clone();
    let mut victim = Client::join(
        &bin.url(),
        db_with(&schema, &[("v", "1"), ("w", "2")]),
        "ghost",
        None,
    )
    .await;
    victim.until(|c| c.session.up_to_date()).await;
    let victim_site = crdt::site_id(&victim.db).unwrap();
    let victim_cursor = all_rows(&victim.db)
        .iter()
        .map(Cursor::after)
        .max()
        .unwrap();
    // The victim leaves (its socket closes; its database stays).
    let Client {
        db: victim_db, ws, ..
    } = victim;
    drop(ws);

    let spoofer = db_with(&schema, &[("spoofed", "x")]);
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    // (Announcing a head below the stored cursor would only make the room forget it: the
    // victim would upload everything again, which merging absorbs.)
    let hello = hello_bytes(&spoofer, "ghost", None, |h| {
        h.site_id = victim_site;
        h.head = victim_cursor.db_version;
    });
    let w = raw.join(&hello).await;
    assert_eq!(w.your_cursor, victim_cursor);
    raw.send(&empty_changes(FAR)).await.unwrap();
    let mut row = all_rows(&spoofer).pop().unwrap();
    row.site_id = victim_site.to_vec().into();
    row.db_version = victim_cursor.db_version + 1;
    row.seq = 0;
    let sent = Cursor::after(&row);
    raw.send(&changes_frame(vec![row], FAR)).await.unwrap();
    let mut acks = 0;
    while acks < 2 {
        let f = raw.rd.binary(WAIT).await.expect("acks, not a close");
        if let synqlite_core::sync::Frame::Ack(_) = synqlite_core::sync::Frame::decode(&f).unwrap()
        {
            acks += 1;
        }
    }
    drop(raw);
    // The room holds the cursor of the row received, never the claims.
    let mut probe = Raw::connect(bin.addr, &[]).await.unwrap();
    let w = probe
        .join(&hello_bytes(&victim_db, "ghost", None, |h| {
            h.head = sent.db_version
        }))
        .await;
    assert_eq!(w.your_cursor, sent);
    drop(probe);
    // The victim, back with its real head (below the spoofed row's version), is told to upload
    // everything again: the room forgets a cursor beyond what the site itself announces.
    let mut back = Raw::connect(bin.addr, &[]).await.unwrap();
    let w = back
        .join(&hello_bytes(&victim_db, "ghost", None, |_| {}))
        .await;
    assert_eq!(w.your_cursor, Cursor::START);
    drop(back);

    let stopped = bin.stop().await;
    let room = stopped.room_db("ghost");
    assert_eq!(crdt::peer_cursor(&room, &victim_site).unwrap(), None);
}

const JWT_SECRET: &str = "jwt-secret-jwt-secret-jwt-secret!";

fn jwt(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn exp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

/// Attack 8, a read-only grant uploading (`--jwt-secret`): a client whose JWT says
/// `scope: "read"` joins and downloads, but its upload is refused with `FORBIDDEN` and nothing
/// of it is written (no row, no cursor).
///
/// Before the fix tokens were HMAC room tokens without a scope: every token that opened a room
/// could write to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_cannot_upload() {
    let bin = Bin::start(&["--jwt-secret", JWT_SECRET]).await;
    let schema = bin.schema.clone();
    let writer_token = jwt(json!({"room": "team-1", "exp": exp()}));
    let reader_token = jwt(json!({"room": "team-1", "exp": exp(), "scope": "read"}));
    let mut writer = Client::join(
        &bin.url(),
        db_with(&schema, &[("w", "1")]),
        "team-1",
        Some(writer_token),
    )
    .await;
    writer.until(|c| c.session.up_to_date()).await;

    let reader = db_with(&schema, &[("r", "1")]);
    let reader_site = crdt::site_id(&reader).unwrap();
    let rows = all_rows(&reader);
    let last = rows.iter().map(Cursor::after).max().unwrap();
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.join(&hello_bytes(
        &reader,
        "team-1",
        Some(reader_token.clone()),
        |_| {},
    ))
    .await;
    raw.send(&changes_frame(rows, last)).await.unwrap();
    assert_eq!(
        raw.rd.until_closed(WAIT).await.as_deref(),
        Some("FORBIDDEN")
    );
    // Reading is fine.
    let mut r = Client::join(&bin.url(), client_db(&schema), "team-1", Some(reader_token)).await;
    r.until(|c| c.session.up_to_date() && items(&c.db).len() == 1)
        .await;
    drop((writer, r));

    let stopped = bin.stop().await;
    let room = stopped.room_db("team-1");
    assert_eq!(items(&room), vec![("w".into(), Some("1".into()))]);
    assert_eq!(crdt::peer_cursor(&room, &reader_site).unwrap(), None);
}

/// Attack 8, a site-bound token used for another site: a JWT whose `site` claim is X, with a
/// Hello presenting site Y, is refused with `UNAUTHORIZED`; the same token with site X joins.
///
/// Before the fix tokens could not bind a site id: a leaked token let its holder speak for any
/// device of the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_bound_token_only_serves_its_site() {
    let bin = Bin::start(&["--jwt-secret", JWT_SECRET]).await;
    let schema = bin.schema.clone();
    let x = client_db(&schema);
    let y = client_db(&schema);
    let site_x = crdt::site_id(&x).unwrap();
    let token = jwt(json!({"room": "team-1", "exp": exp(), "site": hex(&site_x)}));
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.send(&hello_bytes(&y, "team-1", Some(token.clone()), |_| {}))
        .await
        .unwrap();
    assert_eq!(
        raw.rd.until_closed(WAIT).await.as_deref(),
        Some("UNAUTHORIZED")
    );
    // The token's own site joins.
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.join(&hello_bytes(&x, "team-1", Some(token), |_| {}))
        .await;
}

/// Attack 8, a room pattern: a JWT granting `team-*` opens `team-1` but not `other` (nor
/// `team`, `tea` or `teams-1`); every refusal is `UNAUTHORIZED` and creates no room file.
///
/// Before the fix a token named exactly one room; a pattern grant must not widen to rooms that
/// merely share letters with it, and a refused join must not leave a file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_pattern_grants_only_its_rooms() {
    let bin = Bin::start(&["--jwt-secret", JWT_SECRET]).await;
    let db = client_db(&bin.schema);
    let token = jwt(json!({"room": "team-*", "exp": exp()}));
    let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
    raw.join(&hello_bytes(&db, "team-1", Some(token.clone()), |_| {}))
        .await;
    drop(raw);
    for room in ["other", "team", "tea", "teams-1"] {
        let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
        raw.send(&hello_bytes(&db, room, Some(token.clone()), |_| {}))
            .await
            .unwrap();
        assert_eq!(
            raw.rd.until_closed(WAIT).await.as_deref(),
            Some("UNAUTHORIZED"),
            "{room}"
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(&bin.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db"))
        .collect();
    files.sort();
    assert_eq!(files, vec!["team-1.db".to_owned()]);
}
