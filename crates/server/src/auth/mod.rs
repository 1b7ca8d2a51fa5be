//! Who may join which room, and what they may do there.
//!
//! An [`Authenticator`] turns the token a client sends in its Hello into a [`Grant`] (or an
//! [`AuthError`], sent to the client as `UNAUTHORIZED`). The server ships:
//!
//! - [`AllowAll`]: everyone may join every room and write (the default; the server warns).
//! - [`HmacTokens`] (`--token-secret`): `v1.<expiry>.<room b64url>.<mac b64url>` room tokens
//!   minted by `synqlite-server token`.
//! - [`JwtAuth`] (`--jwt-secret`, `--jwt-jwks`, `--jwt-issuer`, `--jwt-audience`): JWTs signed
//!   by the app's backend (HS256 with a shared secret) or by an identity provider (RS/PS/ES/EdDSA
//!   keys from a JWKS file or URL). Claims: `exp` (required), `room` / `rooms` (exact names or
//!   prefix patterns ending in `*`), `site`, `scope` (`read` / `write`), `sub`.
//! - [`AnyOf`]: the first of several that accepts (HMAC room tokens beside JWTs).
//!
//! [`from_options`] builds the right one from the command line's options.
//!
//! Embedding apps can also refuse individual change rows with a [`ChangeFilter`].
//!
//! Every token is refused before any parsing when longer than [`MAX_TOKEN_LEN`] bytes, and no
//! error message echoes the token (room names are cut to 200 characters).

mod hmac;
mod jwks;
mod jwt;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use self::hmac::HmacTokens;
pub use self::jwks::JwksSource;
pub use self::jwt::{JwtAuth, JwtConfig};

/// Tokens longer than this (bytes) are refused before any parsing. Generous for JWTs signed
/// with 4096-bit RSA keys and a few dozen claims.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Clock skew tolerated on a token's expiry (and `nbf`), in seconds. A [`Grant`]'s
/// `expires_at` can be up to this far in the past when it is granted: enforce it with the
/// same leeway.
pub const EXPIRY_LEEWAY_SECS: u64 = 30;

/// Room names, subjects and other strings that come from a client are cut to this many
/// characters in messages and grants.
pub const MAX_SHOWN_CHARS: usize = 200;

/// What an authenticated connection may do; the session enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The site id the token binds (the connection must present this site id), if any.
    pub site: Option<[u8; 16]>,
    /// Read-only clients may not upload changes (their Changes frames get `FORBIDDEN`).
    pub scope: Scope,
    /// Unix seconds at which the grant ends (the token's expiry), if any. JWTs are accepted up
    /// to [`EXPIRY_LEEWAY_SECS`] after it: end the session at `expires_at + EXPIRY_LEEWAY_SECS`.
    pub expires_at: Option<u64>,
    /// Who (the token's `sub`), for logs; at most [`MAX_SHOWN_CHARS`] characters.
    pub subject: Option<String>,
}

impl Grant {
    /// Write access, bound to no site, never expiring, no subject ([`AllowAll`]'s grant).
    pub fn full() -> Grant {
        Grant {
            site: None,
            scope: Scope::Write,
            expires_at: None,
            subject: None,
        }
    }

    /// Whether the grant allows uploading changes.
    pub fn can_write(&self) -> bool {
        self.scope == Scope::Write
    }
}

/// Read-only or read-write access to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// May download the room's changes, not upload any.
    Read,
    /// May download and upload changes.
    Write,
}

/// How specific a refusal is: [`AnyOf`] reports the most specific of its members' refusals
/// (the variants are ordered from least to most specific).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthErrorKind {
    /// No token was given.
    Missing,
    /// The token is not in this authenticator's format (another one may accept it).
    Unrecognized,
    /// The keys needed to check the token could not be loaded (e.g. the JWKS URL is down).
    Unavailable,
    /// The token is in this authenticator's format but invalid, expired, or not for the room.
    Refused,
}

/// Why an [`Authenticator`] refused a connection. The message is sent to the client in an
/// `UNAUTHORIZED` error frame: it says what is wrong and never echoes the token or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// How specific the refusal is (see [`AnyOf`]).
    pub kind: AuthErrorKind,
    /// What is wrong, for the client.
    pub message: String,
}

impl AuthError {
    /// A refusal of a token in the authenticator's format ([`AuthErrorKind::Refused`]).
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(AuthErrorKind::Refused, message)
    }

    /// A refusal of the given kind.
    pub fn with_kind(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        AuthError {
            kind,
            message: message.into(),
        }
    }

    /// No token was given.
    pub fn missing() -> Self {
        Self::with_kind(AuthErrorKind::Missing, "a token is required")
    }

    /// What is wrong, for the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The future [`Authenticator::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Grant, AuthError>> + Send + 'a>>;

/// Decides whether a connection may join a room, and with which [`Grant`].
pub trait Authenticator: Send + Sync + 'static {
    /// Decides whether `token` may join `room`. Called once per connection after the room name
    /// was validated and before the room is opened. An error is sent to the client
    /// (`UNAUTHORIZED` with the error's message) before the connection closes.
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a>;

    /// Whether this authenticator lets anyone in without a token ([`AllowAll`]: true), so the
    /// server can warn loudly.
    fn is_open(&self) -> bool {
        false
    }
}

/// Lets everyone into every room with write access (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate<'a>(&'a self, _token: Option<&'a str>, _room: &'a str) -> AuthFuture<'a> {
        Box::pin(std::future::ready(Ok(Grant::full())))
    }

    fn is_open(&self) -> bool {
        true
    }
}

/// Tries several authenticators in order; the first that accepts wins. When all refuse, the
/// most specific refusal is reported (see [`AuthErrorKind`]; the first among equals), so a
/// JWT that is expired says "the token has expired", not "not a room token".
#[derive(Clone, Default)]
pub struct AnyOf(pub Vec<Arc<dyn Authenticator>>);

impl AnyOf {
    /// Accepts what any of `authenticators` accepts.
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        AnyOf(authenticators)
    }
}

impl std::fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyOf({} authenticators)", self.0.len())
    }
}

impl Authenticator for AnyOf {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, room: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            let mut best: Option<AuthError> = None;
            for auth in &self.0 {
                match auth.authenticate(token, room).await {
                    Ok(grant) => return Ok(grant),
                    Err(e) => {
                        if best.as_ref().is_none_or(|b| e.kind > b.kind) {
                            best = Some(e);
                        }
                    }
                }
            }
            Err(best.unwrap_or_else(|| AuthError::new("no authentication method is configured")))
        })
    }

    fn is_open(&self) -> bool {
        self.0.iter().any(|a| a.is_open())
    }
}

/// A check an embedding app runs on every change row a client uploads, after authentication.
///
/// The server calls [`check`](ChangeFilter::check) for each row of an uploaded chunk before the
/// chunk goes to the room; the first `Err` refuses the whole chunk (nothing of it is applied)
/// and the client gets a `FORBIDDEN` error with the message, then the connection closes. Keep it
/// fast and free of I/O: it runs on the server's async workers.
///
/// ```
/// use synqlite_server::auth::{ChangeFilter, Grant};
/// use synqlite_core::crdt::Change;
///
/// /// Only the `admin` subject may touch the `settings` table; nobody may write `audit`.
/// struct AdminTables;
///
/// impl ChangeFilter for AdminTables {
///     fn check(&self, _room: &str, grant: &Grant, change: &Change) -> Result<(), String> {
///         match &*change.table {
///             "audit" => Err("the audit table is read-only".into()),
///             "settings" if grant.subject.as_deref() != Some("admin") => {
///                 Err("only admin may change settings".into())
///             }
///             _ => Ok(()),
///         }
///     }
/// }
/// ```
pub trait ChangeFilter: Send + Sync + 'static {
    /// `Ok(())` lets `change` (uploaded to `room` by a client holding `grant`) through; an
    /// `Err(message)` refuses the chunk it came in with `FORBIDDEN` and `message`.
    fn check(
        &self,
        room: &str,
        grant: &Grant,
        change: &synqlite_core::crdt::Change,
    ) -> Result<(), String>;
}

/// Lets every change through (the default).
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

/// A configuration the authenticators cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// A secret is empty.
    #[error("the {0} is empty")]
    EmptySecret(&'static str),
    /// The JWKS could not be loaded at startup.
    #[error("cannot load the JWKS from {source_name}: {reason}")]
    Jwks {
        /// The file or URL.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// `JwtAuth` was given neither a secret nor a JWKS.
    #[error("JWT authentication needs a shared secret (--jwt-secret) or a JWKS (--jwt-jwks)")]
    NoJwtKey,
}

/// The command line's authentication options, for [`from_options`].
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// `--token-secret`: accept HMAC room tokens signed with it.
    pub token_secret: Option<String>,
    /// `--jwt-secret`, `--jwt-jwks`, `--jwt-issuer`, `--jwt-audience`: accept JWTs. Used when
    /// it has a secret or a JWKS.
    pub jwt: JwtConfig,
}

/// Builds the server's authenticator from the command line's options: [`AllowAll`] when none
/// is set (check [`Authenticator::is_open`] to warn), else [`HmacTokens`] and/or [`JwtAuth`]
/// (in an [`AnyOf`] when both). Loads the JWKS (fails when it cannot be loaded) and, for a
/// URL, starts refreshing it in the background: call it inside the tokio runtime.
pub async fn from_options(options: AuthOptions) -> Result<Arc<dyn Authenticator>, AuthSetupError> {
    let mut all: Vec<Arc<dyn Authenticator>> = Vec::new();
    if let Some(secret) = options.token_secret {
        if secret.is_empty() {
            return Err(AuthSetupError::EmptySecret("token secret"));
        }
        if secret.len() < 16 {
            tracing::warn!("the token secret is short: use at least 16 random bytes");
        }
        all.push(Arc::new(HmacTokens::new(secret)));
        tracing::info!("room tokens accepted (HMAC-SHA256)");
    }
    if options.jwt.secret.is_some() || options.jwt.jwks.is_some() {
        let jwt = JwtAuth::new(options.jwt).await?;
        tracing::info!("{}", jwt.describe());
        all.push(Arc::new(jwt));
    }
    Ok(match all.len() {
        0 => Arc::new(AllowAll),
        1 => all.remove(0),
        _ => Arc::new(AnyOf::new(all)),
    })
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `s` cut to [`MAX_SHOWN_CHARS`] characters (with `…` when cut).
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, MAX_SHOWN_CHARS)
}

/// `s` cut to `max` characters (with `…` when cut).
pub(crate) fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Refuses tokens over [`MAX_TOKEN_LEN`] bytes (before anything looks inside).
pub(crate) fn check_len(token: &str) -> Result<(), AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::new(format!(
            "the token is too long ({} bytes; at most {MAX_TOKEN_LEN})",
            token.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Grant, AuthError>);
    impl Authenticator for Fixed {
        fn authenticate<'a>(&'a self, _t: Option<&'a str>, _r: &'a str) -> AuthFuture<'a> {
            Box::pin(std::future::ready(self.0.clone()))
        }
    }

    fn block<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn any_of_takes_the_first_grant_or_the_most_specific_refusal() {
        let unrec = || {
            Arc::new(Fixed(Err(AuthError::with_kind(
                AuthErrorKind::Unrecognized,
                "a",
            ))))
        };
        let refused = |m: &str| Arc::new(Fixed(Err(AuthError::new(m))));
        let read = Grant {
            scope: Scope::Read,
            ..Grant::full()
        };
        let any = AnyOf::new(vec![
            unrec(),
            Arc::new(Fixed(Ok(read.clone()))),
            refused("x"),
        ]);
        assert_eq!(block(any.authenticate(Some("t"), "r")), Ok(read));
        assert!(!any.is_open());
        let any = AnyOf::new(vec![unrec(), refused("first"), refused("second"), unrec()]);
        assert_eq!(
            block(any.authenticate(Some("t"), "r")).unwrap_err().message,
            "first"
        );
        let any = AnyOf::new(vec![]);
        assert!(block(any.authenticate(None, "r")).is_err());
        let any = AnyOf::new(vec![unrec(), Arc::new(AllowAll)]);
        assert!(any.is_open());
        assert_eq!(block(any.authenticate(None, "r")), Ok(Grant::full()));
    }

    #[test]
    fn clip_cuts_long_strings_on_char_boundaries() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(300);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(c.ends_with('…'));
        assert!(check_len(&"a".repeat(MAX_TOKEN_LEN)).is_ok());
        assert!(check_len(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn from_options_picks_allow_all_hmac_jwt_or_both() {
        block(async {
            let open = from_options(AuthOptions::default()).await.unwrap();
            assert!(open.is_open());
            let empty = AuthOptions {
                token_secret: Some(String::new()),
                ..Default::default()
            };
            assert!(matches!(
                from_options(empty).await,
                Err(AuthSetupError::EmptySecret(_))
            ));
            let hmac = HmacTokens::new("0123456789abcdef");
            let opts = AuthOptions {
                token_secret: Some("0123456789abcdef".into()),
                jwt: JwtConfig {
                    secret: Some(b"jwt-secret-jwt-secret".to_vec()),
                    ..Default::default()
                },
            };
            let both = from_options(opts).await.unwrap();
            assert!(!both.is_open());
            let grant = both
                .authenticate(Some(&hmac.token_for("music", 60)), "music")
                .await
                .unwrap();
            assert_eq!(grant.scope, Scope::Write);
            assert_eq!(
                both.authenticate(None, "music").await.unwrap_err().kind,
                AuthErrorKind::Missing
            );
        });
    }
}
