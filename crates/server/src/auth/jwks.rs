//! The public keys [`JwtAuth`](super::JwtAuth) checks signatures with: a JWKS (RFC 7517 key set)
//! read from a file or fetched over HTTP(S), cached in memory.
//!
//! - A file is read at startup and re-read when a token names an unknown key id.
//! - A URL is fetched at startup, refreshed periodically, and re-fetched when a token names an
//!   unknown key id.
//!
//! Re-loads for unknown key ids happen at most once per `min_reload` (tokens with made-up key
//! ids cannot make the server hammer the identity provider), each fetch has a timeout, and a
//! key set larger than `max_bytes` is refused. A failed refresh keeps the keys already loaded.
//!
//! Only signing keys are kept: RSA (RS256/384/512, PS256/384/512), EC P-256 (ES256) and P-384
//! (ES384), Ed25519 (EdDSA). A key's `alg`, when given, is the only algorithm it accepts.
//! Symmetric (`oct`) keys, encryption keys (`"use": "enc"`) and other kinds are ignored.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

use super::{clip_to, AuthError, AuthErrorKind, AuthSetupError};

/// Where a JWKS comes from (the `--jwt-jwks` argument). A file is read at startup and re-read
/// when a token names an unknown key id; a URL is fetched at startup, every
/// [`JwtConfig::jwks_refresh`](super::JwtConfig::jwks_refresh), and when a token names an unknown
/// key id (at most once per [`JwtConfig::jwks_min_reload`](super::JwtConfig::jwks_min_reload)).
/// Only signing keys are used: RSA (RS/PS 256/384/512), EC P-256 (ES256) and P-384 (ES384),
/// Ed25519 (EdDSA), each limited to its `alg` when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JSON file (`{"keys": [...]}`).
    File(PathBuf),
    /// An `http://` or `https://` URL serving the JSON.
    Url(String),
}

impl JwksSource {
    /// `http://…` and `https://…` are URLs, anything else a file path.
    pub fn parse(arg: &str) -> JwksSource {
        let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            JwksSource::Url(arg.to_owned())
        } else {
            JwksSource::File(PathBuf::from(arg))
        }
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(p) => write!(f, "{}", p.display()),
            JwksSource::Url(u) => f.write_str(u),
        }
    }
}

/// How a [`KeyStore`] loads and refreshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksLimits {
    pub refresh_every: Duration,
    pub min_reload: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

/// One usable verification key.
pub(crate) struct Key {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The algorithms this key may verify (never empty, never HS*).
    pub algs: Vec<Algorithm>,
}

/// The cached keys of one JWKS source.
pub(crate) struct KeyStore {
    source: JwksSource,
    limits: JwksLimits,
    client: Option<reqwest::Client>,
    keys: RwLock<Arc<Vec<Key>>>,
    /// Serializes loads; holds when the last on-demand (unknown key id) reload started.
    reload: tokio::sync::Mutex<Option<Instant>>,
    loads: AtomicU64,
}

impl KeyStore {
    /// Loads `source` (failing when that fails or yields no usable key) and, for a URL, starts
    /// a task refreshing it every `limits.refresh_every` until the store is dropped.
    pub(crate) async fn open(
        source: JwksSource,
        limits: JwksLimits,
    ) -> Result<Arc<KeyStore>, AuthSetupError> {
        let setup = |reason: String| AuthSetupError::Jwks {
            source_name: source.to_string(),
            reason,
        };
        let client = match &source {
            JwksSource::File(_) => None,
            JwksSource::Url(_) => Some(http_client(limits).map_err(setup)?),
        };
        let store = Arc::new(KeyStore {
            source: source.clone(),
            limits,
            client,
            keys: RwLock::new(Arc::new(Vec::new())),
            reload: tokio::sync::Mutex::new(None),
            loads: AtomicU64::new(0),
        });
        let keys = store.load().await.map_err(setup)?;
        store.replace(keys);
        if matches!(source, JwksSource::Url(_)) {
            tokio::spawn(refresh_periodically(Arc::downgrade(&store)));
        }
        Ok(store)
    }

    /// The keys now.
    pub(crate) fn keys(&self) -> Arc<Vec<Key>> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many times the source was read or fetched (successfully or not).
    pub(crate) fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn replace(&self, keys: Vec<Key>) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The keys after re-loading the source because no key has id `kid`, unless another task
    /// just did (then its keys) or the last such reload was less than `min_reload` ago (then the
    /// keys as they are).
    pub(crate) async fn reload_for_unknown_kid(
        &self,
        kid: &str,
    ) -> Result<Arc<Vec<Key>>, AuthError> {
        let mut last = self.reload.lock().await;
        let keys = self.keys();
        if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
            return Ok(keys);
        }
        if last.is_some_and(|t| t.elapsed() < self.limits.min_reload) {
            return Ok(keys);
        }
        *last = Some(Instant::now());
        match self.load().await {
            Ok(new) => {
                tracing::info!(source = %self.source, keys = new.len(), "JWKS reloaded for an unknown key id");
                self.replace(new);
                Ok(self.keys())
            }
            Err(reason) => {
                tracing::warn!(source = %self.source, %reason, "cannot reload the JWKS");
                Err(AuthError::with_kind(
                    AuthErrorKind::Unavailable,
                    "unknown key id (the server could not reload its keys)",
                ))
            }
        }
    }

    async fn refresh(&self) {
        let _serialized = self.reload.lock().await;
        match self.load().await {
            Ok(new) => {
                tracing::debug!(source = %self.source, keys = new.len(), "JWKS refreshed");
                self.replace(new);
            }
            Err(reason) => {
                tracing::warn!(source = %self.source, %reason, "cannot refresh the JWKS; keeping the keys loaded before");
            }
        }
    }

    /// Reads or fetches the source and parses its usable keys (at least one).
    async fn load(&self) -> Result<Vec<Key>, String> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let max = self.limits.max_bytes;
        let body = match (&self.source, &self.client) {
            (JwksSource::Url(url), Some(client)) => fetch(client, url, self.limits).await?,
            (JwksSource::File(path), _) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_capped(&path, max))
                    .await
                    .map_err(|e| format!("reading the file failed: {e}"))??
            }
            (JwksSource::Url(_), None) => return Err("no HTTP client".into()),
        };
        let keys = parse_jwks(&body)?;
        if keys.is_empty() {
            return Err("the key set has no usable signing key".into());
        }
        Ok(keys)
    }
}

async fn refresh_periodically(store: Weak<KeyStore>) {
    let every = match store.upgrade() {
        Some(s) => s.limits.refresh_every.max(Duration::from_millis(100)),
        None => return,
    };
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else {
            return;
        };
        store.refresh().await;
    }
}

/// An HTTP(S) client over rustls with the ring provider (installed as the process default if
/// none is; reqwest needs one), no proxy, with the fetch timeout.
fn http_client(limits: JwksLimits) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only when another thread installed one meanwhile: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("synqlite-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

async fn fetch(client: &reqwest::Client, url: &str, limits: JwksLimits) -> Result<Vec<u8>, String> {
    let max = limits.max_bytes;
    let too_big = || format!("the key set is larger than {max} bytes");
    let get = async {
        let mut resp = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?
        {
            if body.len() + chunk.len() > max {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    // reqwest's timeout covers the body too; this one is a second guard.
    tokio::time::timeout(limits.timeout + Duration::from_secs(1), get)
        .await
        .map_err(|_| format!("timed out after {} s", limits.timeout.as_secs_f32()))?
}

fn read_capped(path: &std::path::Path, max: usize) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    if body.len() > max {
        return Err(format!("the key set is larger than {max} bytes"));
    }
    Ok(body)
}

/// The usable signing keys of a JWKS document. Keys that do not parse or are not for signing
/// are skipped (logged), so one odd key does not hide the others.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|e| format!("not a JWKS (a JSON object with a \"keys\" list): {e}"))?;
    let mut keys = Vec::new();
    for (i, value) in set.keys.into_iter().enumerate() {
        match key_from_jwk(value) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(why) => tracing::warn!(index = i, %why, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

fn key_from_jwk(value: serde_json::Value) -> Result<Option<Key>, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| clip_to(&e.to_string(), 200))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("unsupported EC curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return Err("unsupported OKP curve".into()),
        },
        // Never HMAC keys from a key set: a JWKS is public material.
        AlgorithmParameters::OctetKey(_) => return Err("symmetric (oct) keys are ignored".into()),
        _ => return Err("unsupported key type".into()),
    };
    let algs = match jwk.common.key_algorithm {
        None => family,
        Some(alg) => {
            let alg = Algorithm::try_from(alg).map_err(|_| "unsupported alg".to_owned())?;
            if !family.contains(&alg) {
                return Err(format!("alg {alg:?} does not fit the key type"));
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad key: {e}"))?;
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        key,
        algs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_files() {
        assert_eq!(
            JwksSource::parse("https://idp.example/jwks.json"),
            JwksSource::Url("https://idp.example/jwks.json".into())
        );
        assert_eq!(
            JwksSource::parse("HTTP://127.0.0.1:9/k"),
            JwksSource::Url("HTTP://127.0.0.1:9/k".into())
        );
        assert_eq!(
            JwksSource::parse("keys/jwks.json"),
            JwksSource::File("keys/jwks.json".into())
        );
        assert_eq!(JwksSource::parse("h"), JwksSource::File("h".into()));
    }

    #[test]
    fn only_signing_keys_are_kept() {
        let doc = br#"{"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rsa"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rs384", "alg": "RS384"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "wrong", "alg": "ES256"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "ed"},
            {"kty": "XYZ", "kid": "odd"},
            {"kty": "RSA", "kid": "no-n"},
            "not an object"
        ]}"#;
        let keys = parse_jwks(doc).unwrap();
        let got: Vec<(&str, &[Algorithm])> = keys
            .iter()
            .map(|k| (k.kid.as_deref().unwrap_or(""), k.algs.as_slice()))
            .collect();
        assert_eq!(
            got.len(),
            4,
            "{:?}",
            got.iter().map(|g| g.0).collect::<Vec<_>>()
        );
        assert_eq!(got[0].0, "rsa");
        assert_eq!(got[0].1.len(), 6);
        assert_eq!(got[1], ("rs384", &[Algorithm::RS384][..]));
        assert_eq!(got[2], ("ec", &[Algorithm::ES256][..]));
        assert_eq!(got[3], ("ed", &[Algorithm::EdDSA][..]));
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"{\"keys\": 3}").is_err());
    }

    #[test]
    fn files_over_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, vec![b' '; 2048]).unwrap();
        assert!(read_capped(&path, 2047).unwrap_err().contains("larger"));
        assert_eq!(read_capped(&path, 2048).unwrap().len(), 2048);
        assert!(read_capped(&dir.path().join("none"), 10).is_err());
    }
}
