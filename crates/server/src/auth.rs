//! Who may join which room: the [`Authenticator`] hook, allow-all by default, and HMAC-signed
//! room tokens ([`HmacTokens`], enabled by `--token-secret`).
//!
//! A token is `v1.<expiry unix seconds>.<room, base64url>.<HMAC-SHA256, base64url>`, the MAC
//! taken with the server's secret over `v1.<expiry>.<room>`. Mint one with
//! `synqlite-server token --room <room> --secret <secret>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why an [`Authenticator`] refused a connection. The message is sent to the client in an
/// `UNAUTHORIZED` error frame: say what is wrong, never echo secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

impl AuthError {
    /// A refusal explained by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        AuthError(message.into())
    }
}

/// Read-only or read-write access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Receive changes only.
    Read,
    /// Receive and upload changes.
    Write,
}

/// What an authenticated connection may do; the session enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The site id the token binds, if any.
    pub site: Option<[u8; 16]>,
    /// Read-only clients may not upload changes.
    pub scope: Scope,
    /// Unix seconds at which the grant ends, if any.
    pub expires_at: Option<u64>,
    /// Who, for logs.
    pub subject: Option<String>,
}

impl Grant {
    /// Read-write, any site, no expiry.
    pub fn full() -> Grant {
        Grant {
            site: None,
            scope: Scope::Write,
            expires_at: None,
            subject: None,
        }
    }
}

/// The future an [`Authenticator`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Grant, AuthError>> + Send + 'a>>;

/// Decides whether a connection may join a room. Called once per connection, after the room
/// name was validated and before the room is opened.
pub trait Authenticator: Send + Sync + 'static {
    /// The grant of the client with `token` in `room`; an error is sent to it
    /// (`UNAUTHORIZED` with the error's message) before the connection closes.
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a>;
    /// Whether anyone gets in without a token.
    fn is_open(&self) -> bool {
        false
    }
}

/// Lets everyone into every room (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate<'a>(&'a self, _token: Option<&'a str>, _room: &'a str) -> AuthFuture<'a> {
        Box::pin(async { Ok(Grant::full()) })
    }
    fn is_open(&self) -> bool {
        true
    }
}

/// Lets an embedding app refuse individual incoming change rows.
pub trait ChangeFilter: Send + Sync + 'static {
    /// `Err(why)` refuses the whole chunk holding `change` with `FORBIDDEN`.
    fn check(
        &self,
        room: &str,
        grant: &Grant,
        change: &synqlite_core::crdt::Change,
    ) -> Result<(), String>;
}

/// Accepts every change (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAllChanges;

impl ChangeFilter for AllowAllChanges {
    fn check(
        &self,
        _room: &str,
        _grant: &Grant,
        _change: &synqlite_core::crdt::Change,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Room tokens signed with a shared secret.
#[derive(Clone)]
pub struct HmacTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for HmacTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacTokens { secret: <hidden> }")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl HmacTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        HmacTokens {
            secret: secret.into(),
        }
    }

    fn mac(&self, expiry: u64, room: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("v1.{expiry}.{room}").as_bytes());
        mac
    }

    /// A token for `room` valid until `expiry` (unix seconds).
    pub fn token(&self, room: &str, expiry: u64) -> String {
        let sig = self.mac(expiry, room).finalize().into_bytes();
        format!("v1.{expiry}.{}.{}", B64.encode(room), B64.encode(sig))
    }

    /// A token for `room` valid for `ttl_secs` from now.
    pub fn token_for(&self, room: &str, ttl_secs: u64) -> String {
        self.token(room, now().saturating_add(ttl_secs))
    }
}

impl Authenticator for HmacTokens {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a> {
        Box::pin(async move { self.check(token, room).map(|()| Grant::full()) })
    }
}

impl HmacTokens {
    fn check(&self, token: Option<&str>, room: &str) -> Result<(), AuthError> {
        let bad = |why: &str| AuthError(format!("room {room:?}: {why}"));
        let token = token.ok_or_else(|| bad("a token is required"))?;
        let parts: Vec<&str> = token.split('.').collect();
        let [version, expiry, token_room, sig] = parts[..] else {
            return Err(bad("malformed token"));
        };
        if version != "v1" {
            return Err(bad("unknown token version"));
        }
        let expiry: u64 = expiry.parse().map_err(|_| bad("malformed token"))?;
        let token_room = B64
            .decode(token_room)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("malformed token"))?;
        let sig = B64.decode(sig).map_err(|_| bad("malformed token"))?;
        // Check the signature (constant time) before saying anything about its content.
        self.mac(expiry, &token_room)
            .verify_slice(&sig)
            .map_err(|_| bad("invalid token signature"))?;
        if token_room != room {
            return Err(bad("the token is for another room"));
        }
        if expiry <= now() {
            return Err(bad("the token has expired"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_their_room_until_expiry() {
        let t = HmacTokens::new("s3cret");
        let ok = t.token_for("music", 60);
        assert!(t.check(Some(&ok), "music").is_ok());
        let why = |r: Result<(), AuthError>| r.unwrap_err().0;
        assert!(why(t.check(Some(&ok), "other")).contains("another room"));
        assert!(why(t.check(None, "music")).contains("required"));
        assert!(why(t.check(Some("v1.x"), "music")).contains("malformed"));
        assert!(why(t.check(Some("v2.1.bXVzaWM.AA"), "music")).contains("version"));
        let expired = t.token("music", 1);
        assert!(why(t.check(Some(&expired), "music")).contains("expired"));
        let forged = HmacTokens::new("other").token_for("music", 60);
        assert!(why(t.check(Some(&forged), "music")).contains("signature"));
        // A valid token with a byte changed anywhere is refused.
        for i in 0..ok.len() {
            let mut b = ok.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(tampered) = String::from_utf8(b) else {
                continue;
            };
            if tampered != ok {
                assert!(t.check(Some(&tampered), "music").is_err(), "{tampered}");
            }
        }
    }
}
