//! JSON Web Tokens ([`JwtAuth`]): HS256 with a shared secret (`--jwt-secret`) and/or
//! RS/PS/ES/EdDSA signatures checked with the public keys of a JWKS (`--jwt-jwks FILE|URL`).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::jwks::{JwksLimits, JwksSource, Key, KeyStore};
use super::{
    check_len, clip, clip_to, AuthError, AuthErrorKind, AuthFuture, AuthSetupError, Authenticator,
    Grant, Scope, EXPIRY_LEEWAY_SECS,
};

/// How [`JwtAuth`] checks tokens. `Default` checks nothing yet: set a secret and/or a JWKS.
#[derive(Clone)]
pub struct JwtConfig {
    /// `--jwt-secret`: accept HS256 (and HS384/HS512) tokens signed with this secret.
    pub secret: Option<Vec<u8>>,
    /// `--jwt-jwks FILE|URL`: accept RS/PS/ES/EdDSA tokens signed by one of these keys.
    pub jwks: Option<JwksSource>,
    /// `--jwt-issuer`: when not empty, the token's `iss` must be one of these.
    pub issuers: Vec<String>,
    /// `--jwt-audience`: when not empty, the token's `aud` must name one of these. When empty,
    /// `aud` is not checked.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf` (30 s).
    pub leeway: Duration,
    /// How often a JWKS URL is fetched again (10 min).
    pub jwks_refresh: Duration,
    /// At most one re-load per this long for tokens naming an unknown key id (30 s).
    pub jwks_min_reload: Duration,
    /// Timeout of one JWKS fetch (10 s).
    pub jwks_timeout: Duration,
    /// Largest JWKS accepted, file or response (1 MiB).
    pub jwks_max_bytes: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: None,
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(EXPIRY_LEEWAY_SECS),
            jwks_refresh: Duration::from_secs(600),
            jwks_min_reload: Duration::from_secs(30),
            jwks_timeout: Duration::from_secs(10),
            jwks_max_bytes: 1 << 20,
        }
    }
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("jwks", &self.jwks)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("jwks_refresh", &self.jwks_refresh)
            .field("jwks_min_reload", &self.jwks_min_reload)
            .field("jwks_timeout", &self.jwks_timeout)
            .field("jwks_max_bytes", &self.jwks_max_bytes)
            .finish()
    }
}

/// Accepts JWTs.
///
/// Claims read:
///
/// | claim | meaning |
/// | --- | --- |
/// | `exp` | required: unix seconds after which the token is refused (30 s leeway) |
/// | `nbf` | optional: not valid before |
/// | `room` | a room name, or a prefix pattern ending in `*` (`team-42-*`; `*` is every room) |
/// | `rooms` | a list of such names or patterns; the room joined must match `room` or one of these |
/// | `site` | optional: the only site id the connection may use (32 hex digits, or base64url of 16 bytes) |
/// | `scope` | optional: `"read"` (download only) or `"write"` (the default); a space-separated list naming one of them also works |
/// | `sub` | optional: who, for logs |
/// | `iss`, `aud` | checked when `--jwt-issuer` / `--jwt-audience` are set (then required) |
///
/// The header's `alg` picks the key: HS256/384/512 only ever use the shared secret, the others
/// only the JWKS keys whose type (and `alg`, when the key names one) allow that algorithm, chosen
/// by `kid`. `alg: none` and unknown algorithms are refused, so are HMAC tokens "signed" with a
/// public key.
pub struct JwtAuth {
    secret: Option<DecodingKey>,
    store: Option<Arc<KeyStore>>,
    jwks: Option<JwksSource>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl JwtAuth {
    /// Checks tokens as `config` says. Loads the JWKS, failing when it cannot be loaded or has
    /// no usable key; for a URL, starts a task refreshing it (so call it inside the tokio
    /// runtime) that ends when the `JwtAuth` is dropped.
    pub async fn new(config: JwtConfig) -> Result<JwtAuth, AuthSetupError> {
        let secret = match &config.secret {
            None => None,
            Some(s) if s.is_empty() => return Err(AuthSetupError::EmptySecret("JWT secret")),
            Some(s) => Some(
                DecodingKey::from_secret(s)
                    .map_err(|_| AuthSetupError::EmptySecret("JWT secret"))?,
            ),
        };
        if config.secret.as_ref().is_some_and(|s| s.len() < 32) {
            tracing::warn!("the JWT secret is short: use at least 32 random bytes for HS256");
        }
        let store = match &config.jwks {
            None => None,
            Some(source) => {
                let limits = JwksLimits {
                    refresh_every: config.jwks_refresh,
                    min_reload: config.jwks_min_reload,
                    timeout: config.jwks_timeout,
                    max_bytes: config.jwks_max_bytes,
                };
                Some(KeyStore::open(source.clone(), limits).await?)
            }
        };
        if secret.is_none() && store.is_none() {
            return Err(AuthSetupError::NoJwtKey);
        }
        Ok(JwtAuth {
            secret,
            store,
            jwks: config.jwks,
            issuers: config.issuers,
            audiences: config.audiences,
            leeway: config.leeway.as_secs(),
        })
    }

    /// HS256 tokens signed with `secret`, no issuer or audience check (no I/O, no runtime
    /// needed).
    pub fn with_secret(secret: impl Into<Vec<u8>>) -> Result<JwtAuth, AuthSetupError> {
        let secret = secret.into();
        if secret.is_empty() {
            return Err(AuthSetupError::EmptySecret("JWT secret"));
        }
        let key = DecodingKey::from_secret(&secret)
            .map_err(|_| AuthSetupError::EmptySecret("JWT secret"))?;
        Ok(JwtAuth {
            secret: Some(key),
            store: None,
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: EXPIRY_LEEWAY_SECS,
        })
    }

    /// One line for the startup log: what is accepted.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.secret.is_some() {
            what.push("HS256 (shared secret)".to_owned());
        }
        if let Some(source) = &self.jwks {
            let n = self.store.as_ref().map_or(0, |s| s.keys().len());
            what.push(format!("JWKS {source} ({n} keys)"));
        }
        let mut s = format!("JWTs accepted: {}", what.join(", "));
        if !self.issuers.is_empty() {
            s.push_str(&format!("; issuer {}", self.issuers.join(" or ")));
        }
        if !self.audiences.is_empty() {
            s.push_str(&format!("; audience {}", self.audiences.join(" or ")));
        }
        s
    }

    /// How many times the JWKS was read or fetched (0 without one): startup, refreshes and
    /// reloads for unknown key ids.
    pub fn jwks_loads(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.loads())
    }

    /// The checks `decode` makes for `alg`.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        v.validate_aud = !self.audiences.is_empty();
        if !self.audiences.is_empty() {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Checks `token` for `room`.
    pub async fn verify(&self, token: Option<&str>, room: &str) -> Result<Grant, AuthError> {
        let token = token.ok_or_else(AuthError::missing)?;
        check_len(token)?;
        let header = peek_header(token)?;
        let alg = header.alg;
        let claims = if is_hmac(alg) {
            let Some(secret) = &self.secret else {
                return Err(AuthError::new(format!(
                    "{alg:?} tokens are not accepted here (no shared secret is configured)"
                )));
            };
            self.decode(token, alg, secret)
                .map_err(|e| AuthError::new(describe_error(&e)))?
        } else {
            let Some(store) = &self.store else {
                return Err(AuthError::new(format!(
                    "{alg:?} tokens are not accepted here (no key set is configured)"
                )));
            };
            let mut keys = store.keys();
            if let Some(kid) = &header.kid {
                if !keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                    keys = store.reload_for_unknown_kid(kid).await?;
                }
            }
            let candidates: Vec<&Key> = keys
                .iter()
                .filter(|k| header.kid.is_none() || k.kid == header.kid)
                .collect();
            if candidates.is_empty() {
                return Err(AuthError::new("unknown key id"));
            }
            let usable: Vec<&Key> = candidates
                .into_iter()
                .filter(|k| k.algs.contains(&alg))
                .collect();
            if usable.is_empty() {
                return Err(AuthError::new(format!(
                    "algorithm {alg:?} is not allowed for the token's key"
                )));
            }
            // With a kid, one key; without, every key allowing the algorithm, until one
            // verifies the signature (a bad signature or an unusable key: try the next).
            let mut last = None;
            let mut claims = None;
            for key in usable {
                match self.decode(token, alg, &key.key) {
                    Ok(c) => {
                        claims = Some(c);
                        break;
                    }
                    Err(e) if is_key_mismatch(&e) => last = Some(e),
                    Err(e) => return Err(AuthError::new(describe_error(&e))),
                }
            }
            match (claims, last) {
                (Some(c), _) => c,
                (None, Some(e)) => return Err(AuthError::new(describe_error(&e))),
                (None, None) => return Err(AuthError::new(BAD_SIGNATURE)),
            }
        };
        grant(claims, room)
    }

    fn decode(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, key, &self.validation(alg)).map(|data| data.claims)
    }
}

impl Authenticator for JwtAuth {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a> {
        Box::pin(self.verify(token, room))
    }
}

const BAD_SIGNATURE: &str = "invalid token signature";

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Whether `e` says "not this key" (so another key may verify the token).
fn is_key_mismatch(e: &jsonwebtoken::errors::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat
    )
}

fn describe_error(e: &jsonwebtoken::errors::Error) -> String {
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidSignature => BAD_SIGNATURE.into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".into(),
        ErrorKind::MissingRequiredClaim(c) => {
            format!("the token has no {:?} claim", clip_to(c, 20))
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's algorithm is not allowed".into()
        }
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::Utf8(_) => {
            format!("the token's claims are malformed: {}", clip(&e.to_string()))
        }
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey => {
            "the token's key is unusable".into()
        }
        _ => "malformed token".into(),
    }
}

/// What the header says, read before any key is chosen.
struct PeekedHeader {
    alg: Algorithm,
    kid: Option<String>,
}

/// The header of a compact JWT (three base64url parts), without verifying anything. A token
/// that is not JWT-shaped is [`AuthErrorKind::Unrecognized`] (another authenticator may take
/// it); a JWT with `alg: none` or an unknown algorithm is refused.
fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        alg: Option<serde_json::Value>,
        kid: Option<serde_json::Value>,
    }
    let not_jwt = || AuthError::with_kind(AuthErrorKind::Unrecognized, "not a JWT");
    // Bounded: at most 4 pieces, and the token is at most MAX_TOKEN_LEN bytes.
    let mut parts = token.splitn(4, '.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt());
    };
    let json = URL_SAFE_NO_PAD.decode(head).map_err(|_| not_jwt())?;
    let raw: Raw = serde_json::from_slice(&json).map_err(|_| not_jwt())?;
    let alg = match raw.alg {
        Some(serde_json::Value::String(s)) => s,
        Some(_) | None => return Err(AuthError::new("the token's header has no algorithm (alg)")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::new("unsigned tokens (alg \"none\") are refused"));
    }
    let alg: Algorithm = alg.parse().map_err(|_| {
        AuthError::new(format!(
            "unsupported token algorithm {:?}",
            clip_to(&alg, 16)
        ))
    })?;
    let kid = match raw.kid {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => return Err(AuthError::new("the token's key id (kid) is not a string")),
    };
    Ok(PeekedHeader { alg, kid })
}

#[derive(serde::Deserialize)]
struct Claims {
    // Optional here so that a missing `exp` is reported by the validation ("no \"exp\"
    // claim"), which requires it.
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

/// Whether `pattern` (a room name, or a prefix ending in `*`) covers `room`.
pub(crate) fn room_matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

/// A site id claim: 32 hex digits, or base64url (padded or not) of 16 bytes.
pub(crate) fn parse_site(s: &str) -> Option<[u8; 16]> {
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(out);
    }
    if s.len() > 24 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .ok()?;
    bytes.try_into().ok()
}

fn parse_scope(s: &str) -> Result<Scope, AuthError> {
    match s {
        "write" => return Ok(Scope::Write),
        "read" => return Ok(Scope::Read),
        _ => {}
    }
    // An OAuth-style list ("openid read"): write wins over read.
    let words: Vec<&str> = s.split_ascii_whitespace().take(64).collect();
    if words.contains(&"write") {
        Ok(Scope::Write)
    } else if words.contains(&"read") {
        Ok(Scope::Read)
    } else {
        Err(AuthError::new(format!(
            "the token's scope {:?} grants neither \"read\" nor \"write\"",
            clip_to(s, 60)
        )))
    }
}

fn grant(claims: Claims, room: &str) -> Result<Grant, AuthError> {
    let patterns: Vec<&str> = claims
        .room
        .iter()
        .chain(claims.rooms.iter().flatten())
        .map(String::as_str)
        .collect();
    if patterns.is_empty() {
        return Err(AuthError::new(
            "the token grants no room (it has no \"room\" or \"rooms\" claim)",
        ));
    }
    if !patterns.iter().any(|p| room_matches(p, room)) {
        return Err(AuthError::new(format!(
            "the token does not grant room {:?}",
            clip(room)
        )));
    }
    let site = match &claims.site {
        None => None,
        Some(s) => Some(parse_site(s).ok_or_else(|| {
            AuthError::new(
                "the token's site claim is not a site id (32 hex digits or base64url of 16 bytes)",
            )
        })?),
    };
    let scope = match &claims.scope {
        None => Scope::Write,
        Some(s) => parse_scope(s)?,
    };
    let expires_at = claims
        .exp
        .filter(|e| e.is_finite() && *e > 0.0)
        .map(|e| e as u64);
    Ok(Grant {
        site,
        scope,
        expires_at,
        subject: claims.sub.as_deref().map(clip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_patterns() {
        assert!(room_matches("music", "music"));
        assert!(!room_matches("music", "music2"));
        assert!(room_matches("team-42-*", "team-42-notes"));
        assert!(room_matches("team-42-*", "team-42-"));
        assert!(!room_matches("team-42-*", "team-4"));
        assert!(!room_matches("team-42-*", "team-420"));
        assert!(room_matches("*", "anything"));
        assert!(!room_matches("", "x"));
        assert!(!room_matches("te*m", "team"));
    }

    #[test]
    fn site_claims() {
        let want: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_site(&hex), Some(want));
        assert_eq!(parse_site(&hex.to_uppercase()), Some(want));
        assert_eq!(parse_site(&URL_SAFE_NO_PAD.encode(want)), Some(want));
        assert_eq!(parse_site(&URL_SAFE.encode(want)), Some(want));
        assert_eq!(parse_site(&hex[..30]), None);
        assert_eq!(parse_site(&URL_SAFE_NO_PAD.encode([1u8; 15])), None);
        assert_eq!(parse_site("zz"), None);
        assert_eq!(parse_site(&"a".repeat(5000)), None);
    }

    #[test]
    fn scopes() {
        assert_eq!(parse_scope("read").unwrap(), Scope::Read);
        assert_eq!(parse_scope("write").unwrap(), Scope::Write);
        assert_eq!(parse_scope("openid read").unwrap(), Scope::Read);
        assert_eq!(parse_scope("read write").unwrap(), Scope::Write);
        assert!(parse_scope("admin")
            .unwrap_err()
            .message
            .contains("neither"));
        assert!(parse_scope("").is_err());
    }

    #[test]
    fn headers_are_peeked_safely() {
        let enc = |json: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(json));
        let h = peek_header(&enc(r#"{"alg":"RS256","kid":"k1"}"#)).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::RS256, Some("k1")));
        let refused = |t: &str| peek_header(t).err().map(|e| (e.kind, e.message));
        let none = refused(&enc(r#"{"alg":"none"}"#)).unwrap();
        assert_eq!(none.0, AuthErrorKind::Refused);
        assert!(none.1.contains("none"));
        assert!(refused(&enc(r#"{"alg":"NONE"}"#))
            .unwrap()
            .1
            .contains("none"));
        assert!(refused(&enc(r#"{"alg":"XY999"}"#))
            .unwrap()
            .1
            .contains("unsupported"));
        assert!(refused(&enc(r#"{"typ":"JWT"}"#))
            .unwrap()
            .1
            .contains("no algorithm"));
        assert!(refused(&enc(r#"{"alg":"HS256","kid":5}"#))
            .unwrap()
            .1
            .contains("kid"));
        for not_jwt in ["v1.1.bXVzaWM.AA", "a.b", "a.b.c.d", "", "...", "e30.e30"] {
            assert_eq!(
                refused(not_jwt).unwrap().0,
                AuthErrorKind::Unrecognized,
                "{not_jwt}"
            );
        }
    }
}
