//! Authentication through the real server: HMAC room tokens and JWTs side by side (an
//! [`AnyOf`] as `from_options` builds it); refused clients get `UNAUTHORIZED` with a message
//! that says why and does not echo their token.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use synqlite_core::sync::Frame;
use synqlite_server::auth::{from_options, AuthOptions};
use synqlite_server::{Authenticator, HmacTokens, JwtConfig};

const JWT_SECRET: &[u8] = b"jwt-secret-jwt-secret-jwt-secret";
const ROOM_SECRET: &str = "room-secret-room-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET).unwrap(),
    )
    .unwrap()
}

/// The error frame the server answers a join with: (code, message).
async fn refusal(server: &Server, room: &str, token: Option<String>) -> (String, String) {
    let db = client_db(&server.schema);
    let mut c = Client::join(&server.url(), db, room, token).await;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), next_frame(&mut c.ws))
            .await
            .expect("no answer")
            .expect("closed without an error frame");
        if let Ok(Frame::Error(e)) = Frame::decode(&frame) {
            return (e.code, e.message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_and_room_tokens_join_through_the_server() {
    let auth: Arc<dyn Authenticator> = from_options(AuthOptions {
        token_secret: Some(ROOM_SECRET.into()),
        jwt: JwtConfig {
            secret: Some(JWT_SECRET.to_vec()),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let server = Server::start(ITEMS, move |c| c.auth = auth).await;
    let url = server.url();

    // A JWT for a prefix of rooms, and a room token: both sync.
    let team = jwt(json!({"room": "team-7-*", "exp": now() + 600, "sub": "ann"}));
    let mut a = Client::join(
        &url,
        client_db(&server.schema),
        "team-7-notes",
        Some(team.clone()),
    )
    .await;
    insert(&a.db, "a", 0, 5);
    a.push().await;
    a.until(|c| c.session.up_to_date()).await;
    let room_token = HmacTokens::new(ROOM_SECRET).token_for("team-7-notes", 60);
    let mut b = Client::join(
        &url,
        client_db(&server.schema),
        "team-7-notes",
        Some(room_token),
    )
    .await;
    b.until(|c| items(&c.db).len() == 5).await;

    // Refusals say why, with UNAUTHORIZED, and never echo the token.
    let expired = jwt(json!({"room": "team-7-*", "exp": now() - 600}));
    let cases = [
        (None, "team-7-notes", "a token is required"),
        (
            Some(team.clone()),
            "team-8-notes",
            "does not grant room \"team-8-notes\"",
        ),
        (Some(expired), "team-7-notes", "the token has expired"),
        (Some("x".repeat(5000)), "team-7-notes", "too long"),
        (
            Some(HmacTokens::new(ROOM_SECRET).token("team-7-notes", 1)),
            "team-7-notes",
            "room \"team-7-notes\": the token has expired",
        ),
    ];
    for (token, room, why) in cases {
        let (code, message) = refusal(&server, room, token.clone()).await;
        assert_eq!(code, "UNAUTHORIZED", "{message}");
        assert!(message.contains(why), "{message:?} lacks {why:?}");
        if let Some(t) = token {
            assert!(!message.contains(&t[..t.len().min(40)]), "{message}");
        }
    }
    server.stop().await;
}
