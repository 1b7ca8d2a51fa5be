//! HMAC-signed room tokens ([`HmacTokens`], enabled by `--token-secret`).
//!
//! A token is `v1.<expiry unix seconds>.<room, base64url>.<HMAC-SHA256, base64url>`, the MAC
//! taken with the server's secret over `v1.<expiry>.<room>`. Mint one with
//! `synqlite-server token --room <room> --secret <secret>`.

use super::{check_len, clip, now, AuthError, AuthErrorKind, AuthFuture, Authenticator, Grant};
use ::hmac::{Hmac, Mac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::Sha256;

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

impl HmacTokens {
    /// Checks `token` for `room` now (what [`Authenticator::authenticate`] does, synchronously).
    /// A valid token grants write access until its expiry, bound to no site.
    pub fn verify(&self, token: Option<&str>, room: &str) -> Result<Grant, AuthError> {
        let shown = clip(room);
        let err = |kind, why: &str| AuthError::with_kind(kind, format!("room {shown:?}: {why}"));
        let bad = |why: &str| err(AuthErrorKind::Refused, why);
        let token = token.ok_or_else(|| err(AuthErrorKind::Missing, "a token is required"))?;
        check_len(token)?;
        // Bounded split: at most 5 pieces whatever the token holds.
        let mut parts = token.splitn(5, '.');
        let version = parts.next().unwrap_or_default();
        let is_version = version.len() > 1
            && version.starts_with('v')
            && version[1..].bytes().all(|b| b.is_ascii_digit());
        if !is_version {
            return Err(err(AuthErrorKind::Unrecognized, "not a room token"));
        }
        if version != "v1" {
            return Err(bad("unknown token version"));
        }
        let (Some(expiry), Some(token_room), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed token"));
        };
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
        Ok(Grant {
            expires_at: Some(expiry),
            ..Grant::full()
        })
    }
}

impl Authenticator for HmacTokens {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a> {
        Box::pin(std::future::ready(self.verify(token, room)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_their_room_until_expiry() {
        let t = HmacTokens::new("s3cret");
        let ok = t.token_for("music", 60);
        let grant = t.verify(Some(&ok), "music").unwrap();
        assert_eq!(grant.scope, super::super::Scope::Write);
        assert!(grant.expires_at.is_some_and(|e| e > now()));
        assert_eq!((grant.site, grant.subject), (None, None));
        let why = |r: Result<Grant, AuthError>| r.unwrap_err().message;
        assert!(why(t.verify(Some(&ok), "other")).contains("another room"));
        assert!(why(t.verify(None, "music")).contains("required"));
        assert!(why(t.verify(Some("v1.x"), "music")).contains("malformed"));
        assert!(why(t.verify(Some("v2.1.bXVzaWM.AA"), "music")).contains("version"));
        let expired = t.token("music", 1);
        assert!(why(t.verify(Some(&expired), "music")).contains("expired"));
        let forged = HmacTokens::new("other").token_for("music", 60);
        assert!(why(t.verify(Some(&forged), "music")).contains("signature"));
        // A valid token with a byte changed anywhere is refused.
        for i in 0..ok.len() {
            let mut b = ok.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(tampered) = String::from_utf8(b) else {
                continue;
            };
            if tampered != ok {
                assert!(t.verify(Some(&tampered), "music").is_err(), "{tampered}");
            }
        }
    }

    #[test]
    fn hostile_tokens_are_refused_cheaply_without_echo() {
        let t = HmacTokens::new("s3cret");
        // 16 MiB of dots: refused by length before any split.
        let dots = ".".repeat(16 << 20);
        let started = std::time::Instant::now();
        let e = t.verify(Some(&dots), "music").unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert!(e.message.contains("too long"), "{e}");
        assert!(e.message.len() < 100);
        // Just under the cap, many dots: a bounded split, "malformed".
        let many = format!("v1{}", ".".repeat(super::super::MAX_TOKEN_LEN - 2));
        assert!(t
            .verify(Some(&many), "music")
            .unwrap_err()
            .message
            .contains("malformed"));
        // Not this format: "unrecognized", so a JWT authenticator's refusal wins in AnyOf.
        for other in ["eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "", "v.1.2.3", "token"] {
            let e = t.verify(Some(other), "music").unwrap_err();
            assert_eq!(e.kind, AuthErrorKind::Unrecognized, "{other}");
        }
        // A long room is cut in the message; the token never appears.
        let room = "r".repeat(5000);
        let secret_token = t.token_for("music", 60);
        let e = t.verify(Some(&secret_token), &room).unwrap_err();
        assert!(e.message.len() < 260, "{}", e.message.len());
        assert!(!e.message.contains(&secret_token));
    }
}
