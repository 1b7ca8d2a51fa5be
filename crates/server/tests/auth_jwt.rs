//! JWT authentication: HS256 with a shared secret, JWKS keys from a file and from a URL (a tiny
//! HTTP server on loopback), hostile tokens, and HMAC room tokens beside JWTs.
//!
//! The key pairs in `tests/data/auth/` were generated once with openssl for these tests only.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use synqlite_server::auth::{
    AnyOf, AuthErrorKind, AuthOptions, AuthSetupError, JwksSource, MAX_TOKEN_LEN,
};
use synqlite_server::{AuthError, Authenticator, Grant, HmacTokens, JwtAuth, JwtConfig, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// --- Allocation counting (this test binary only): proves hostile tokens are refused without
// allocating in proportion to their size.

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|c| c.set(c.get() + layout.size()));
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|c| c.set(c.get() + new));
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> usize {
    ALLOCATED.with(|c| c.get())
}

// --- Keys and tokens.

const SECRET: &[u8] = b"a-shared-secret-of-32-bytes-long";

fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&der(include_str!("data/auth/rsa_private.pem")))
}

fn rsa2_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&der(include_str!("data/auth/rsa2_private.pem")))
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_der(&der(include_str!("data/auth/ec_private.pem")))
}

fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_der(&der(include_str!("data/auth/ed25519_private.pem")))
}

/// The public JWK of `key`, with `kid`; `alg` names the key's algorithm unless `None`.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str, name_alg: bool) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    if !name_alg {
        jwk.common.key_algorithm = None;
    }
    jwk
}

fn jwks(keys: Vec<Jwk>) -> Vec<u8> {
    serde_json::to_vec(&JwkSet { keys }).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET).unwrap(),
        None,
        claims,
    )
}

fn room_claims(room: &str) -> Value {
    json!({ "room": room, "exp": now() + 600 })
}

/// A token with a hand-made header (for headers jsonwebtoken would not write).
fn raw_token(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// An HS256 token for `claims` signed with `key` (any bytes, e.g. a public key).
fn hs_with(key: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let msg = format!("{header}.{payload}");
    let sig = hmac_sha256(key, msg.as_bytes());
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig))
}

async fn refused(auth: &dyn Authenticator, token: &str, room: &str) -> AuthError {
    let e = auth.authenticate(Some(token), room).await.unwrap_err();
    assert!(!e.message.contains(token), "the token is echoed: {e}");
    e
}

fn secret_auth() -> JwtAuth {
    JwtAuth::with_secret(SECRET).unwrap()
}

// --- HS256.

#[tokio::test]
async fn hs256_tokens_grant_their_rooms_until_expiry() {
    let auth = secret_auth();
    let exp = now() + 600;
    let token = hs(&json!({"room": "music", "exp": exp, "sub": "alice"}));
    let grant = auth.authenticate(Some(&token), "music").await.unwrap();
    assert_eq!(
        grant,
        Grant {
            site: None,
            scope: Scope::Write,
            expires_at: Some(exp),
            subject: Some("alice".into()),
        }
    );
    let e = refused(&auth, &token, "other").await;
    assert_eq!(e.message, "the token does not grant room \"other\"");
    assert_eq!(e.kind, AuthErrorKind::Refused);

    // Expired beyond the 30 s leeway: refused; within it: accepted.
    let old = hs(&json!({"room": "music", "exp": now() - 120}));
    assert_eq!(
        refused(&auth, &old, "music").await.message,
        "the token has expired"
    );
    let just = hs(&json!({"room": "music", "exp": now() - 5}));
    assert!(auth.authenticate(Some(&just), "music").await.is_ok());
    // Not valid yet.
    let early = hs(&json!({"room": "music", "exp": now() + 600, "nbf": now() + 300}));
    assert!(refused(&auth, &early, "music")
        .await
        .message
        .contains("not valid yet"));
    // exp is required.
    let forever = hs(&json!({"room": "music"}));
    assert!(refused(&auth, &forever, "music")
        .await
        .message
        .contains("\"exp\""));
    // A room claim is required.
    let nowhere = hs(&json!({"exp": now() + 600}));
    assert!(refused(&auth, &nowhere, "music")
        .await
        .message
        .contains("grants no room"));
    // Missing token.
    let e = auth.authenticate(None, "music").await.unwrap_err();
    assert_eq!(e.kind, AuthErrorKind::Missing);
}

#[tokio::test]
async fn room_patterns_and_room_lists() {
    let auth = secret_auth();
    let prefix = hs(&room_claims("team-42-*"));
    for ok in ["team-42-notes", "team-42-"] {
        assert!(auth.authenticate(Some(&prefix), ok).await.is_ok(), "{ok}");
    }
    for no in ["team-43-notes", "team-4", "team-420"] {
        refused(&auth, &prefix, no).await;
    }
    let list = hs(&json!({"rooms": ["a", "b-*"], "exp": now() + 600}));
    for ok in ["a", "b-1", "b-"] {
        assert!(auth.authenticate(Some(&list), ok).await.is_ok(), "{ok}");
    }
    for no in ["c", "ab", "b"] {
        refused(&auth, &list, no).await;
    }
    // `room` and `rooms` together: either grants.
    let both = hs(&json!({"room": "x", "rooms": ["y"], "exp": now() + 600}));
    assert!(auth.authenticate(Some(&both), "x").await.is_ok());
    assert!(auth.authenticate(Some(&both), "y").await.is_ok());
    // Wrong claim types are malformed, not a crash.
    let typed = hs(&json!({"rooms": "x", "exp": now() + 600}));
    assert!(refused(&auth, &typed, "x")
        .await
        .message
        .contains("malformed"));
    // A long room is cut in the message.
    let long = "r".repeat(1000);
    let e = refused(&auth, &prefix, &long).await;
    assert!(e.message.len() < 260, "{}", e.message);
}

#[tokio::test]
async fn site_scope_and_subject_claims() {
    let auth = secret_auth();
    let site: [u8; 16] = *b"0123456789abcdef";
    let hex: String = site.iter().map(|b| format!("{b:02x}")).collect();
    let exp = now() + 600;
    for s in [hex.clone(), URL_SAFE_NO_PAD.encode(site)] {
        let t = hs(&json!({"room": "m", "exp": exp, "site": s, "scope": "read"}));
        let g = auth.authenticate(Some(&t), "m").await.unwrap();
        assert_eq!(g.site, Some(site));
        assert_eq!(g.scope, Scope::Read);
        assert!(!g.can_write());
    }
    let bad_site = hs(&json!({"room": "m", "exp": exp, "site": "0123"}));
    assert!(refused(&auth, &bad_site, "m")
        .await
        .message
        .contains("site"));
    let w = hs(&json!({"room": "m", "exp": exp, "scope": "write"}));
    assert_eq!(
        auth.authenticate(Some(&w), "m").await.unwrap().scope,
        Scope::Write
    );
    let odd = hs(&json!({"room": "m", "exp": exp, "scope": "admin"}));
    assert!(refused(&auth, &odd, "m").await.message.contains("scope"));
    let long_sub = hs(&json!({"room": "m", "exp": exp, "sub": "s".repeat(1000)}));
    let g = auth.authenticate(Some(&long_sub), "m").await.unwrap();
    assert!(g.subject.unwrap().chars().count() <= 201);
}

#[tokio::test]
async fn forged_unsigned_and_confused_tokens_are_refused() {
    let auth = secret_auth();
    let claims = room_claims("music");
    // Another secret.
    let other = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret!!!").unwrap(),
        None,
        &claims,
    );
    assert_eq!(
        refused(&auth, &other, "music").await.message,
        "invalid token signature"
    );
    // A valid token whose payload was swapped for another room's.
    let good = hs(&claims);
    let mut parts: Vec<&str> = good.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(room_claims("secret-room").to_string());
    parts[1] = &payload;
    let swapped = parts.join(".");
    assert_eq!(
        refused(&auth, &swapped, "secret-room").await.message,
        "invalid token signature"
    );
    // alg none, with and without a signature part.
    for sig in [&b""[..], b"x"] {
        let none = raw_token(&json!({"alg": "none"}), &claims, sig);
        let e = refused(&auth, &none, "music").await;
        assert!(e.message.contains("none"), "{e}");
        assert_eq!(e.kind, AuthErrorKind::Refused);
    }
    // An RS256 token presented where only a secret is configured.
    let rs = sign(Algorithm::RS256, &rsa_key(), None, &claims);
    assert!(refused(&auth, &rs, "music")
        .await
        .message
        .contains("not accepted"));
}

#[tokio::test]
async fn hmac_tokens_signed_with_the_public_key_are_refused() {
    // The classic confusion: the attacker signs HS256 with the server's RSA public key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let public = jwk(&rsa_key(), Algorithm::RS256, "k1", false);
    std::fs::write(&path, jwks(vec![public.clone()])).unwrap();
    let pem = include_str!("data/auth/rsa_public.pem");
    let n = match &public.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(p) => URL_SAFE_NO_PAD.decode(&p.n).unwrap(),
        _ => unreachable!(),
    };
    let claims = room_claims("music");
    let forged: Vec<String> = [pem.as_bytes().to_vec(), der(pem), n]
        .iter()
        .map(|k| hs_with(k, &claims))
        .collect();
    // JWKS only: HS tokens are not accepted at all.
    let jwks_only = JwtAuth::new(JwtConfig {
        jwks: Some(JwksSource::File(path.clone())),
        ..Default::default()
    })
    .await
    .unwrap();
    for t in &forged {
        assert!(refused(&jwks_only, t, "music")
            .await
            .message
            .contains("HS256 tokens are not accepted"));
    }
    // JWKS and a secret: HS tokens are checked with the secret only.
    let both = JwtAuth::new(JwtConfig {
        secret: Some(SECRET.to_vec()),
        jwks: Some(JwksSource::File(path)),
        ..Default::default()
    })
    .await
    .unwrap();
    for t in &forged {
        assert_eq!(
            refused(&both, t, "music").await.message,
            "invalid token signature"
        );
    }
    assert!(both.authenticate(Some(&hs(&claims)), "music").await.is_ok());
    let rs = sign(Algorithm::RS256, &rsa_key(), Some("k1"), &claims);
    assert!(both.authenticate(Some(&rs), "music").await.is_ok());
}

#[test]
fn oversized_tokens_are_refused_fast_without_allocating() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let jwt = secret_auth();
    let hmac = HmacTokens::new("s3cret-s3cret-s3cret");
    let any = AnyOf::new(vec![
        Arc::new(HmacTokens::new("s")),
        Arc::new(secret_auth()),
    ]);
    // The counter counts.
    let before = allocated();
    drop(Vec::<u8>::with_capacity(1 << 20));
    assert!(allocated() - before >= 1 << 20);
    let dots = ".".repeat(16 << 20);
    let just_too_long = "a".repeat(MAX_TOKEN_LEN + 1);
    for token in [&dots, &just_too_long] {
        for auth in [&jwt as &dyn Authenticator, &hmac, &any] {
            let before = allocated();
            let started = Instant::now();
            let e = rt
                .block_on(auth.authenticate(Some(token), "music"))
                .unwrap_err();
            let took = started.elapsed();
            let used = allocated() - before;
            assert!(e.message.contains("too long"), "{e}");
            assert!(e.message.len() < 200);
            assert!(used < 16 * 1024, "{used} bytes allocated");
            assert!(took < Duration::from_millis(100), "{took:?}");
        }
    }
    // At the cap, dots everywhere: bounded splits, refused as malformed, little allocated.
    let capped = ".".repeat(MAX_TOKEN_LEN);
    for auth in [&jwt as &dyn Authenticator, &hmac, &any] {
        let before = allocated();
        assert!(rt.block_on(auth.authenticate(Some(&capped), "m")).is_err());
        assert!(allocated() - before < 64 * 1024);
    }
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let auth = JwtAuth::new(JwtConfig {
        secret: Some(SECRET.to_vec()),
        issuers: vec!["https://idp.test/".into()],
        audiences: vec!["synqlite".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let exp = now() + 600;
    let ok = hs(&json!({"room": "m", "exp": exp, "iss": "https://idp.test/", "aud": "synqlite"}));
    assert!(auth.authenticate(Some(&ok), "m").await.is_ok());
    let aud_list =
        hs(&json!({"room": "m", "exp": exp, "iss": "https://idp.test/", "aud": ["x", "synqlite"]}));
    assert!(auth.authenticate(Some(&aud_list), "m").await.is_ok());
    let cases = [
        (
            json!({"room": "m", "exp": exp, "aud": "synqlite"}),
            "\"iss\"",
        ),
        (
            json!({"room": "m", "exp": exp, "iss": "https://idp.test/"}),
            "\"aud\"",
        ),
        (
            json!({"room": "m", "exp": exp, "iss": "https://evil.test/", "aud": "synqlite"}),
            "issuer",
        ),
        (
            json!({"room": "m", "exp": exp, "iss": "https://idp.test/", "aud": "other"}),
            "audience",
        ),
    ];
    for (claims, why) in cases {
        let e = refused(&auth, &hs(&claims), "m").await;
        assert!(e.message.contains(why), "{claims}: {e}");
    }
    // Without an audience configured, tokens carrying one are accepted (aud is not checked).
    let lax = secret_auth();
    let with_aud = hs(&json!({"room": "m", "exp": exp, "aud": "anything"}));
    assert!(lax.authenticate(Some(&with_aud), "m").await.is_ok());
}

// --- JWKS from a file.

#[tokio::test]
async fn jwks_file_keys_rsa_ec_eddsa_and_one_reload_for_an_unknown_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        jwks(vec![
            // A broken key without a kid first: kid-less tokens move on to the next key.
            serde_json::from_value(json!({"kty": "RSA", "n": "sXch", "e": "AQAB"})).unwrap(),
            jwk(&rsa_key(), Algorithm::RS256, "rsa1", true),
            jwk(&ec_key(), Algorithm::ES256, "ec1", false),
            jwk(&ed_key(), Algorithm::EdDSA, "ed1", true),
        ]),
    )
    .unwrap();
    let auth = JwtAuth::new(JwtConfig {
        jwks: Some(JwksSource::parse(path.to_str().unwrap())),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(auth.jwks_loads(), 1);
    let claims = json!({"room": "music", "exp": now() + 600, "scope": "read", "sub": "bob"});
    for (alg, key, kid) in [
        (Algorithm::RS256, rsa_key(), "rsa1"),
        (Algorithm::ES256, ec_key(), "ec1"),
        (Algorithm::EdDSA, ed_key(), "ed1"),
    ] {
        let t = sign(alg, &key, Some(kid), &claims);
        let g = auth.authenticate(Some(&t), "music").await.unwrap();
        assert_eq!((g.scope, g.subject.as_deref()), (Scope::Read, Some("bob")));
        // Without a kid: the keys that allow the algorithm are tried.
        let t = sign(alg, &key, None, &claims);
        assert!(
            auth.authenticate(Some(&t), "music").await.is_ok(),
            "{alg:?}"
        );
    }
    // Signed by a key not in the set but naming a known kid: bad signature.
    let impostor = sign(Algorithm::RS256, &rsa2_key(), Some("rsa1"), &claims);
    assert_eq!(
        refused(&auth, &impostor, "music").await.message,
        "invalid token signature"
    );
    // The key names RS256: RS384 with it is refused; an RSA key cannot do ES256.
    let rs384 = sign(Algorithm::RS384, &rsa_key(), Some("rsa1"), &claims);
    assert!(refused(&auth, &rs384, "music")
        .await
        .message
        .contains("not allowed"));
    let wrong_family = sign(Algorithm::ES256, &ec_key(), Some("rsa1"), &claims);
    assert!(refused(&auth, &wrong_family, "music")
        .await
        .message
        .contains("not allowed"));
    assert_eq!(auth.jwks_loads(), 1, "known kids never reload");

    // Rotation: a new key appears in the file; its first token reloads once.
    std::fs::write(
        &path,
        jwks(vec![
            jwk(&rsa_key(), Algorithm::RS256, "rsa1", true),
            jwk(&rsa2_key(), Algorithm::RS256, "rsa2", true),
        ]),
    )
    .unwrap();
    let rotated = sign(Algorithm::RS256, &rsa2_key(), Some("rsa2"), &claims);
    assert!(auth.authenticate(Some(&rotated), "music").await.is_ok());
    assert_eq!(auth.jwks_loads(), 2);
    assert!(auth.authenticate(Some(&rotated), "music").await.is_ok());
    assert_eq!(auth.jwks_loads(), 2);
    // Another unknown kid within 30 s: no reload, refused.
    let unknown = sign(Algorithm::RS256, &rsa2_key(), Some("rsa3"), &claims);
    for _ in 0..5 {
        assert_eq!(
            refused(&auth, &unknown, "music").await.message,
            "unknown key id"
        );
    }
    assert_eq!(auth.jwks_loads(), 2);
}

#[tokio::test]
async fn jwks_files_that_cannot_be_used_fail_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let start = |path: std::path::PathBuf, max: usize| {
        JwtAuth::new(JwtConfig {
            jwks: Some(JwksSource::File(path)),
            jwks_max_bytes: max,
            ..Default::default()
        })
    };
    let missing = start(dir.path().join("none.json"), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(missing, AuthSetupError::Jwks { .. }), "{missing}");
    let only_secret = dir.path().join("oct.json");
    std::fs::write(&only_secret, br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let e = start(only_secret, 1 << 20).await.unwrap_err();
    assert!(e.to_string().contains("no usable"), "{e}");
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        jwks(vec![jwk(&rsa_key(), Algorithm::RS256, "k", true)]),
    )
    .unwrap();
    let e = start(big, 100).await.unwrap_err();
    assert!(e.to_string().contains("larger"), "{e}");
    let e = JwtAuth::new(JwtConfig::default()).await.unwrap_err();
    assert!(matches!(e, AuthSetupError::NoJwtKey));
}

// --- JWKS from a URL: a tiny HTTP/1.1 server on loopback.

/// Waits (at most 10 s) until `done` holds.
async fn eventually(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// Send a Content-Length (else the body ends when the connection closes).
    length: bool,
    /// Accept, read the request, never answer.
    hang: bool,
}

struct JwksServer {
    url: String,
    reply: Arc<Mutex<Reply>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(body: Vec<u8>) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let reply = Arc::new(Mutex::new(Reply {
            status: 200,
            body,
            length: true,
            hang: false,
        }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (r, h) = (reply.clone(), hits.clone());
        let task = tokio::spawn(async move {
            // Bounded: a test makes a handful of requests.
            for _ in 0..100 {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let reply = r.lock().unwrap().clone();
                h.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    if reply.hang {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\nconnection: close\r\n",
                        reply.status
                    );
                    if reply.length {
                        head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
                    }
                    head.push_str("\r\n");
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&reply.body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        JwksServer {
            url,
            reply,
            hits,
            task,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Reply)) {
        f(&mut self.reply.lock().unwrap());
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn config(&self) -> JwtConfig {
        JwtConfig {
            jwks: Some(JwksSource::parse(&self.url)),
            jwks_timeout: Duration::from_millis(500),
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn jwks_url_is_fetched_at_startup_and_again_for_an_unknown_kid() {
    let server = JwksServer::start(jwks(vec![jwk(&rsa_key(), Algorithm::RS256, "k1", true)])).await;
    let auth = JwtAuth::new(server.config()).await.unwrap();
    assert_eq!(server.hits(), 1);
    assert!(auth.describe().contains("1 keys"), "{}", auth.describe());
    let claims = room_claims("music");
    let t1 = sign(Algorithm::RS256, &rsa_key(), Some("k1"), &claims);
    for _ in 0..3 {
        assert!(auth.authenticate(Some(&t1), "music").await.is_ok());
    }
    assert_eq!(server.hits(), 1, "cached");

    // The provider rotates to k2: the first k2 token triggers one fetch.
    server.set(|r| {
        r.body = jwks(vec![
            jwk(&rsa_key(), Algorithm::RS256, "k1", true),
            jwk(&ec_key(), Algorithm::ES256, "k2", true),
        ])
    });
    let t2 = sign(Algorithm::ES256, &ec_key(), Some("k2"), &claims);
    assert!(auth.authenticate(Some(&t2), "music").await.is_ok());
    assert_eq!(server.hits(), 2);
    // Made-up kids, many at once: no further fetch within 30 s.
    let fake = sign(Algorithm::RS256, &rsa_key(), Some("k9"), &claims);
    let all =
        futures_util::future::join_all((0..20).map(|_| auth.authenticate(Some(&fake), "music")))
            .await;
    for r in all {
        assert_eq!(r.unwrap_err().message, "unknown key id");
    }
    assert_eq!(server.hits(), 2);
    assert_eq!(auth.jwks_loads(), 2);
}

#[tokio::test]
async fn jwks_url_is_refreshed_periodically_and_keeps_keys_when_the_provider_fails() {
    let server = JwksServer::start(jwks(vec![jwk(&rsa_key(), Algorithm::RS256, "k1", true)])).await;
    let mut config = server.config();
    config.jwks_refresh = Duration::from_millis(150);
    let auth = JwtAuth::new(config).await.unwrap();
    let claims = room_claims("music");
    let t1 = sign(Algorithm::RS256, &rsa_key(), Some("k1"), &claims);
    let t2 = sign(Algorithm::RS256, &rsa2_key(), Some("k2"), &claims);
    assert!(auth.authenticate(Some(&t1), "music").await.is_ok());
    // An unknown kid uses up the on-demand reload for 30 s: what changes below comes from the
    // periodic refresh.
    let fake = sign(Algorithm::RS256, &rsa_key(), Some("k9"), &claims);
    refused(&auth, &fake, "music").await;

    // The provider fails for a while: the keys loaded before stay.
    server.set(|r| r.status = 500);
    let failing_since = server.hits();
    eventually(|| server.hits() >= failing_since + 2).await;
    assert!(auth.authenticate(Some(&t1), "music").await.is_ok());

    // It comes back with k2 only: a refresh (not a token) picks it up, and k1 is gone.
    server.set(|r| {
        r.status = 200;
        r.body = jwks(vec![jwk(&rsa2_key(), Algorithm::RS256, "k2", true)]);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while auth.authenticate(Some(&t2), "music").await.is_err() {
        assert!(Instant::now() < deadline, "k2 never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused(&auth, &t1, "music")
        .await
        .message
        .contains("unknown key id"));

    // Dropping the authenticator stops the refreshes.
    drop(auth);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = server.hits();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.hits(), after);
}

#[tokio::test]
async fn jwks_url_size_cap_timeout_and_errors() {
    let key = jwk(&rsa_key(), Algorithm::RS256, "k1", true);
    let mut padded = serde_json::to_value(JwkSet { keys: vec![key] }).unwrap();
    padded["padding"] = json!("x".repeat(8000));
    let body = serde_json::to_vec(&padded).unwrap();
    let server = JwksServer::start(body).await;
    // Fits under 64 KiB.
    let mut config = server.config();
    config.jwks_max_bytes = 64 * 1024;
    assert!(JwtAuth::new(config.clone()).await.is_ok());
    // Over a 4 KiB cap: refused by Content-Length, and again while streaming without one.
    config.jwks_max_bytes = 4096;
    for length in [true, false] {
        server.set(|r| r.length = length);
        let e = JwtAuth::new(config.clone()).await.unwrap_err();
        assert!(e.to_string().contains("larger than 4096 bytes"), "{e}");
    }
    // HTTP errors.
    server.set(|r| r.status = 404);
    let e = JwtAuth::new(server.config()).await.unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    // Not JSON.
    server.set(|r| {
        r.status = 200;
        r.body = b"<html>".to_vec();
    });
    let e = JwtAuth::new(server.config()).await.unwrap_err();
    assert!(e.to_string().contains("not a JWKS"), "{e}");
    // A server that never answers: the fetch times out.
    server.set(|r| r.hang = true);
    let started = Instant::now();
    let e = JwtAuth::new(server.config()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, AuthSetupError::Jwks { .. }), "{e}");
    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks", l.local_addr().unwrap())
    };
    let e = JwtAuth::new(JwtConfig {
        jwks: Some(JwksSource::parse(&closed)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(e, AuthSetupError::Jwks { .. }), "{e}");
}

// --- HMAC room tokens beside JWTs.

#[tokio::test]
async fn any_of_hmac_and_jwt() {
    let hmac = HmacTokens::new("hmac-secret-hmac-secret");
    let auth = synqlite_server::auth::from_options(AuthOptions {
        token_secret: Some("hmac-secret-hmac-secret".into()),
        jwt: JwtConfig {
            secret: Some(SECRET.to_vec()),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    assert!(!auth.is_open());
    let room_token = hmac.token_for("music", 60);
    let g = auth.authenticate(Some(&room_token), "music").await.unwrap();
    assert_eq!((g.scope, g.site), (Scope::Write, None));
    let jwt = hs(&json!({"room": "music", "exp": now() + 60, "scope": "read"}));
    assert_eq!(
        auth.authenticate(Some(&jwt), "music").await.unwrap().scope,
        Scope::Read
    );
    // Refusals come from the authenticator whose format the token has.
    let expired_jwt = hs(&json!({"room": "music", "exp": now() - 600}));
    assert_eq!(
        refused(&*auth, &expired_jwt, "music").await.message,
        "the token has expired"
    );
    let expired_room_token = hmac.token("music", 1);
    assert_eq!(
        refused(&*auth, &expired_room_token, "music").await.message,
        "room \"music\": the token has expired"
    );
    let wrong_room = refused(&*auth, &jwt, "other").await;
    assert!(
        wrong_room.message.contains("does not grant room"),
        "{wrong_room}"
    );
    let garbage = refused(&*auth, "garbage", "music").await;
    assert_eq!(garbage.kind, AuthErrorKind::Unrecognized);
    let none = auth.authenticate(None, "music").await.unwrap_err();
    assert_eq!(none.kind, AuthErrorKind::Missing);
    assert!(none.message.contains("required"));

    // The AnyOf type directly, in the other order.
    let any = AnyOf::new(vec![Arc::new(secret_auth()), Arc::new(hmac.clone())]);
    assert!(any.authenticate(Some(&room_token), "music").await.is_ok());
    assert!(any.authenticate(Some(&jwt), "music").await.is_ok());
    assert_eq!(
        refused(&any, &expired_jwt, "music").await.message,
        "the token has expired"
    );
}
