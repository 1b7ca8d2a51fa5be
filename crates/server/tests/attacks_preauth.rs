//! Issue 11's attacks before authentication, against the real `synqlite-server` binary on
//! loopback: memory blow-up by a first frame (attack 1), silent open doors (attack 5), log and
//! parse amplification (attack 6). Each test says what the server did before the fix.

#[path = "common/binary.rs"]
mod binary;
mod common;

use binary::*;
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synqlite_core::sync::Frame;

const MIB: u64 = 1024;

/// Attack 1, memory blow-up before auth: eight connections each send, as their first and only
/// message, one unauthenticated 15 MiB `Changes` frame whose dictionary holds a 1 KiB table
/// name and whose ~1.7M 9-byte rows all name it. Each must get an error frame or a close, and
/// the server's peak memory (VmHWM) must stay under its baseline + 200 MiB; it keeps serving.
///
/// Before the fix the server read any first frame whole and decoded it, copying the table name
/// into every row: one such frame took it from 235 MiB to 2.3 GiB, eight killed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_bomb_is_refused_without_memory() {
    let bin = Bin::start(&[]).await;
    let base = bin.mem();
    let bomb = Arc::new(changes_bomb(15 << 20));
    assert!(bomb.len() > 15 * 1024 * 1024 - 16, "{}", bomb.len());
    let started = Instant::now();
    let attacks = (0..8)
        .map(|_| {
            let bomb = bomb.clone();
            let addr = bin.addr;
            tokio::spawn(async move {
                let Raw { mut rd, mut wr } = Raw::connect(addr, &[]).await.unwrap();
                // Writing blocks once the server stops reading: write in the background.
                let writer =
                    tokio::spawn(async move { send_ws(&mut wr, OP_BINARY, true, &bomb).await });
                let code = rd.until_closed(Duration::from_secs(60)).await;
                writer.abort();
                code
            })
        })
        .collect::<Vec<_>>();
    let mut codes = Vec::new();
    for a in attacks {
        codes.push(a.await.unwrap());
    }
    let took = started.elapsed();
    for code in &codes {
        // The error frame may be lost to the reset of a socket closed with unread data.
        assert!(
            code.is_none() || code.as_deref() == Some("FRAME_TOO_LARGE"),
            "{codes:?}"
        );
    }
    let after = bin.mem();
    eprintln!(
        "bombs: {took:?}, codes {codes:?}, VmHWM {:.0} -> {:.0} MiB (VmRSS at start {:.0} MiB)",
        Mem::mib(base.hwm_kib),
        Mem::mib(after.hwm_kib),
        Mem::mib(base.rss_kib)
    );
    assert!(
        after.hwm_kib < base.hwm_kib + 200 * MIB,
        "VmHWM {} KiB after the bombs, {} KiB before",
        after.hwm_kib,
        base.hwm_kib
    );
    // Still serving.
    let db = db_with(&bin.schema, &[("a", "1")]);
    let mut c = Client::join(&bin.url(), db, "after-bombs", None).await;
    c.until(|c| c.session.up_to_date()).await;
    assert!(bin.mem().hwm_kib < base.hwm_kib + 200 * MIB);
}

/// Attack 1, trickled: eight connections announce a 15 MiB first frame (its WebSocket header)
/// and send its bytes 1 KiB every 100 ms. The server ends them when the Hello timeout (3 s
/// here) passes, long before the frame could complete, without holding memory for the size
/// they announced.
///
/// Before the fix the server waited for the frame (no time limit on the Hello, a buffer
/// reserved for the announced size), holding the connection for as long as the peer liked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_first_frame_is_cut_at_the_hello_timeout() {
    let bin = Bin::start(&["--hello-timeout-secs", "3"]).await;
    let base = bin.mem();
    let bomb = Arc::new(changes_bomb(15 << 20));
    let started = Instant::now();
    let attacks = (0..8)
        .map(|_| {
            let bomb = bomb.clone();
            let addr = bin.addr;
            tokio::spawn(async move {
                let Raw { mut rd, mut wr } = Raw::connect(addr, &[]).await.unwrap();
                let writer = tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    wr.write_all(&ws_header(OP_BINARY, true, bomb.len() as u64))
                        .await?;
                    for chunk in bomb.chunks(1024) {
                        wr.write_all(chunk).await?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok::<_, std::io::Error>(())
                });
                let t = Instant::now();
                let code = rd.until_closed(Duration::from_secs(30)).await;
                writer.abort();
                (code, t.elapsed())
            })
        })
        .collect::<Vec<_>>();
    let mut ends = Vec::new();
    for a in attacks {
        ends.push(a.await.unwrap());
    }
    eprintln!("trickles ended after {:?}: {ends:?}", started.elapsed());
    for (code, took) in &ends {
        assert!(
            code.is_none() || code.as_deref() == Some("PROTOCOL_ERROR"),
            "{ends:?}"
        );
        assert!(*took < Duration::from_secs(15), "{ends:?}");
    }
    let after = bin.mem();
    assert!(
        after.hwm_kib < base.hwm_kib + 100 * MIB,
        "VmHWM {} KiB after the trickles, {} KiB before",
        after.hwm_kib,
        base.hwm_kib
    );
}

/// Attack 5, silent open doors, on a server run without any token flag: `/healthz` says
/// `"auth":"off"` with a `warning`, so does the log at startup (a `WARN` line); a page of another origin
/// (`https://evil.example`) gets `403` on `/sync` while a loopback page and a native client
/// (no `Origin`) may join; the `--dev` endpoints answer a CORS preflight from that origin
/// without `access-control-allow-origin` and refuse its requests.
///
/// Before the fix nothing said that every room was open to anyone, and any web page a user
/// visited could open `/sync` (and the dev endpoints, with `access-control-allow-origin: *`)
/// and read or write every room through the user's browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_says_so_and_refuses_foreign_pages() {
    let bin = Bin::start(&["--dev"]).await;
    let health = bin.health().await;
    assert_eq!(health["auth"], "off", "{health}");
    assert!(
        health["warning"]
            .as_str()
            .is_some_and(|w| w.contains("anyone")),
        "{health}"
    );
    assert!(
        bin.log_contains("authentication is off", Duration::from_secs(5))
            .await,
        "{}",
        bin.log()
    );
    let warn_line = bin
        .log()
        .lines()
        .find(|l| l.contains("authentication is off"))
        .unwrap()
        .to_owned();
    assert!(warn_line.contains("WARN"), "{warn_line}");

    match Raw::connect(bin.addr, &["Origin: https://evil.example"]).await {
        Err((status, _)) => assert_eq!(status, 403),
        Ok(_) => panic!("a page of https://evil.example was let in"),
    }
    let db = client_db(&bin.schema);
    for headers in [&["Origin: http://localhost:5173"][..], &[]] {
        let mut raw = Raw::connect(bin.addr, headers)
            .await
            .unwrap_or_else(|e| panic!("{headers:?}: {e:?}"));
        raw.join(&hello_bytes(&db, "open", None, |_| {})).await;
    }

    let http = bin.http();
    let preflight = |origin: &'static str| {
        let headers = [
            origin,
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: authorization",
        ];
        async move {
            http.request_full("OPTIONS", "/rooms/open/seed?rows=1", &headers)
                .await
        }
    };
    let (_, head, _) = preflight("Origin: https://evil.example").await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (_, head, _) = preflight("Origin: http://localhost:5173").await;
    assert!(
        head.contains("access-control-allow-origin: http://localhost:5173"),
        "{head}"
    );
    let (status, body) = http
        .request(
            "POST",
            "/rooms/open/seed?rows=1",
            &["Origin: https://evil.example"],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = http.get("/rooms/open/stats").await;
    assert_eq!(status, 200, "{body}");
}

/// Attack 5, the startup warning of an open server goes to stderr, where operators (and
/// service managers that keep only stderr) look for warnings; stdout may be a pipe nobody
/// reads.
///
/// Observed: the server logs everything, warnings included, to stdout
/// (`tracing_subscriber::fmt()`'s default writer); its stderr is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_server_warning_reaches_stderr() {
    let bin = Bin::start(&[]).await;
    assert!(bin.log_contains("listening", Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = bin.stderr();
    let line = err
        .lines()
        .find(|l| l.contains("authentication is off"))
        .unwrap_or_else(|| panic!("no warning on stderr: {err:?}"));
    assert!(line.contains("WARN"), "{line}");
}

const TOKEN_SECRET: &str = "a-long-random-room-token-secret-for-tests";

/// An HMAC room token minted by the binary's `token` subcommand.
fn mint(room: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args(["token", "--room", room, "--secret", TOKEN_SECRET])
        .env_remove("SYNQLITE_TOKEN_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Attack 5 with tokens (`--token-secret`, `--dev`): `/healthz` says `"auth":"tokens"` without
/// a warning; any page may open `/sync` but must bring a token (`UNAUTHORIZED` without); the
/// dev endpoints answer `401` without `Authorization: Bearer <token>` (or with another room's
/// token) and `200` with one. With `--allow-origin https://app.example` added, only that page
/// may connect (`403` for others) and only it gets CORS headers.
///
/// Before the fix the dev endpoints ignored the tokens: anyone could read any room's rows and
/// seed rows into it, from any page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_every_door_asks_for_one() {
    let bin = Bin::start(&["--dev", "--token-secret", TOKEN_SECRET]).await;
    let health = bin.health().await;
    assert_eq!(health["auth"], "tokens", "{health}");
    assert!(health.get("warning").is_none(), "{health}");
    assert!(bin.log_contains("listening", Duration::from_secs(5)).await);
    assert!(!bin.log().contains("authentication is off"));

    let db = client_db(&bin.schema);
    let mut raw = Raw::connect(bin.addr, &["Origin: https://evil.example"])
        .await
        .expect("any origin may connect when tokens are required");
    raw.send(&hello_bytes(&db, "vault", None, |_| {}))
        .await
        .unwrap();
    let code = raw.rd.until_closed(Duration::from_secs(20)).await;
    assert_eq!(code.as_deref(), Some("UNAUTHORIZED"));
    let token = mint("vault");
    let mut raw = Raw::connect(bin.addr, &["Origin: https://evil.example"])
        .await
        .unwrap();
    raw.join(&hello_bytes(&db, "vault", Some(token.clone()), |_| {}))
        .await;

    let http = bin.http();
    let bearer = format!("Authorization: Bearer {token}");
    let other = format!("Authorization: Bearer {}", mint("other"));
    for path in ["/rooms/vault/stats", "/rooms/vault/rows/items"] {
        let (status, body) = http.request("GET", path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = http.request("GET", path, &[&other]).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = http
            .request("GET", path, &["Authorization: Bearer x.y"])
            .await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = http.request("GET", path, &[&bearer]).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = http.post("/rooms/vault/seed?rows=1&table=items").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http
        .request("POST", "/rooms/vault/seed?rows=1&table=items", &[&bearer])
        .await;
    assert_eq!(status, 200, "{body}");
    drop(bin);

    let bin = Bin::start(&[
        "--dev",
        "--token-secret",
        TOKEN_SECRET,
        "--allow-origin",
        "https://app.example",
    ])
    .await;
    match Raw::connect(bin.addr, &["Origin: https://evil.example"]).await {
        Err((status, _)) => assert_eq!(status, 403),
        Ok(_) => panic!("a page of https://evil.example was let in"),
    }
    let mut raw = Raw::connect(bin.addr, &["Origin: https://app.example"])
        .await
        .unwrap();
    raw.join(&hello_bytes(&db, "vault", Some(token.clone()), |_| {}))
        .await;
    let http = bin.http();
    for (origin, allowed) in [
        ("Origin: https://evil.example", false),
        ("Origin: https://app.example", true),
    ] {
        let (_, head, _) = http
            .request_full(
                "OPTIONS",
                "/rooms/vault/stats",
                &[origin, "Access-Control-Request-Method: GET"],
            )
            .await;
        assert_eq!(
            head.contains("access-control-allow-origin"),
            allowed,
            "{origin}: {head}"
        );
    }
}

/// Attack 6, parse amplification by the token: a Hello carrying a 16 MiB token of dots (the
/// server allows 32 MiB frames here so the frame size cap is not what stops it), then tokens
/// of 4 KiB and just over: each is refused within seconds (`FRAME_TOO_LARGE` or a close for
/// the first, as the pre-auth read budget may stop it before it is whole; `UNAUTHORIZED` for
/// the others), the server's peak memory grows by less than 100 MiB, and no log line carries
/// more than a few hundred characters of a token.
///
/// Before the fix the server read the whole Hello, then split the token on its dots (16 M
/// pieces, a quarter GiB of slices) and retried the split per key; a 4 KiB token of dots cost
/// milliseconds of CPU per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_dotted_tokens_are_refused_small_and_fast() {
    let bin = Bin::start(&[
        "--token-secret",
        TOKEN_SECRET,
        "--jwt-secret",
        "a-jwt-secret-of-at-least-32-bytes!!",
        "--max-frame-bytes",
        "33554432",
    ])
    .await;
    let base = bin.mem();
    let db = client_db(&bin.schema);
    let hello = hello_bytes(&db, "vault", Some(".".repeat(16 << 20)), |_| {});
    let started = Instant::now();
    let Raw { mut rd, mut wr } = Raw::connect(bin.addr, &[]).await.unwrap();
    let writer = tokio::spawn(async move { send_ws(&mut wr, OP_BINARY, true, &hello).await });
    let code = rd.until_closed(Duration::from_secs(30)).await;
    writer.abort();
    let took = started.elapsed();
    let after = bin.mem();
    eprintln!(
        "16 MiB token: {code:?} after {took:?}; VmHWM {:.0} -> {:.0} MiB",
        Mem::mib(base.hwm_kib),
        Mem::mib(after.hwm_kib)
    );
    assert!(
        matches!(
            code.as_deref(),
            None | Some("FRAME_TOO_LARGE") | Some("UNAUTHORIZED")
        ),
        "{code:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        after.hwm_kib < base.hwm_kib + 100 * MIB,
        "VmHWM {} KiB after a 16 MiB token, {} KiB before",
        after.hwm_kib,
        base.hwm_kib
    );

    for len in [4096, 4097, 4095] {
        for token in [".".repeat(len), format!("a.{}.b", ".".repeat(len - 4))] {
            let t = Instant::now();
            let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
            raw.send(&hello_bytes(&db, "vault", Some(token), |_| {}))
                .await
                .unwrap();
            let code = raw.rd.until_closed(Duration::from_secs(20)).await;
            let took = t.elapsed();
            assert_eq!(code.as_deref(), Some("UNAUTHORIZED"), "{len}");
            assert!(took < Duration::from_secs(5), "{len}: {took:?}");
        }
    }
    assert!(bin.mem().hwm_kib < base.hwm_kib + 100 * MIB);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = bin.log();
    assert!(
        longest_run(&log, '.') <= 300,
        "{}",
        &log[..log.len().min(2000)]
    );
}

/// Attack 6, log amplification by the room name: a Hello for a room named with 10 KiB of `q`
/// gets `PROTOCOL_ERROR` (names are at most 512 bytes on the wire), one of 500 `q`s (a valid
/// frame, an invalid room) gets `INVALID_ROOM`, and neither the error frames' messages nor the
/// server's log carry more than ~300 characters of the names.
///
/// Before the fix the whole name went into the error frame and into every log line about the
/// connection: a few connections a second filled the disk with attacker-chosen text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_kib_room_name_is_clipped_in_errors_and_logs() {
    let bin = Bin::start(&[]).await;
    let db = client_db(&bin.schema);
    let cases = [
        ("q".repeat(10 * 1024), None, "PROTOCOL_ERROR"),
        (
            "q".repeat(10 * 1024),
            Some("t".repeat(64)),
            "PROTOCOL_ERROR",
        ),
        ("q".repeat(500), None, "INVALID_ROOM"),
        ("q".repeat(500), Some("t".repeat(64)), "INVALID_ROOM"),
    ];
    for (name, token, code) in cases {
        let mut raw = Raw::connect(bin.addr, &[]).await.unwrap();
        raw.send(&hello_bytes(&db, &name, token, |_| {}))
            .await
            .unwrap();
        let frame = raw
            .rd
            .binary(Duration::from_secs(20))
            .await
            .expect("an error frame");
        let Frame::Error(e) = Frame::decode(&frame).unwrap() else {
            panic!("expected an error frame");
        };
        assert_eq!(e.code, code);
        assert!(longest_run(&e.message, 'q') <= 300, "{}", e.message.len());
        assert!(e.message.len() < 1000, "{}", e.message.len());
        assert_eq!(raw.rd.until_closed(Duration::from_secs(20)).await, None);
    }
    assert!(
        bin.log_contains("INVALID_ROOM", Duration::from_secs(5))
            .await,
        "{}",
        bin.log()
    );
    let log = bin.log();
    for line in log.lines() {
        assert!(
            longest_run(line, 'q') <= 300,
            "{} chars: {line:.400}",
            line.len()
        );
    }
}
