//! The HTTP side: the `/sync` WebSocket endpoint, `/healthz`, the `--dev` endpoints, and
//! [`serve`] with graceful shutdown.
//!
//! - `/sync` refuses a browser page from an origin not allowed (`--allow-origin`; by default
//!   only loopback pages when anyone may join, any page when tokens are required) with `403`
//!   before the upgrade. Clients that send no `Origin` (native ones) are not browsers and are
//!   let through to the token check.
//! - `/healthz` answers `200` with JSON: `{"status":"ok","auth":"tokens"|"off",
//!   "connections":n,"banned":n,"rooms":n}` (`banned`: addresses refused for repeated faults)
//!   plus a `warning` when every room is open to anyone.
//! - The `--dev` endpoints need the same tokens as `/sync` when tokens are required
//!   (`Authorization: Bearer <token>`), and their CORS allows only the allowed origins.
//!
//! Shutdown, once the `shutdown` future given to [`serve`] resolves:
//! 1. the listener stops accepting;
//! 2. every connection is told (a `watch` channel): each finishes the frame it is handling,
//!    sends a `SHUTTING_DOWN` error frame and a close frame (1001); dev requests stop between
//!    their transactions;
//! 3. after they all ended, or after `shutdown_grace_secs` at most, every room is checkpointed
//!    and closed, and [`serve`] returns.

use crate::auth::{AllowAll, AllowAllChanges, Authenticator, ChangeFilter};
use crate::error::ServerError;
use crate::limits::Limits;
use crate::listener::{self, Conn, Connections};
use crate::rooms::{prepare_db, RoomOptions, Rooms, Synchronous};
use crate::{connection, dev};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synqlite_core::sync::{SchemaId, ServerOptions};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Everything [`serve`] needs.
pub struct Config {
    /// Folder of the room databases (`<data>/<room>.db`), created if missing.
    pub data: PathBuf,
    /// Folder of the ordered migrations (`*.sql`) applied to every room: the clients' schema.
    pub schema: PathBuf,
    /// Caps and timeouts ([`Limits`]).
    pub limits: Limits,
    /// Disk sync level of the room databases.
    pub synchronous: Synchronous,
    /// Exclusive locking of the room files (default on: other processes cannot read a room
    /// file while the server has it open).
    pub exclusive_locking: bool,
    /// Enables the dev endpoints (seed, rows, stats).
    pub dev: bool,
    /// Who may join which room.
    pub auth: Arc<dyn Authenticator>,
    /// Which uploaded change rows the app accepts.
    pub filter: Arc<dyn ChangeFilter>,
    /// Origins whose pages may open `/sync` (`*`: any). Empty: loopback pages only when
    /// anyone may join, any page when tokens are required.
    pub allow_origins: Vec<String>,
    /// Chunk size cap and window per connection.
    pub session: ServerOptions,
    /// Seconds one frame may take to write before the peer counts as gone.
    pub send_timeout_secs: u64,
    /// Seconds between pings to joined clients; one silent for two intervals is dropped (0:
    /// no pings).
    pub ping_interval_secs: u64,
    /// Seconds shutdown waits for connections and requests to finish.
    pub shutdown_grace_secs: u64,
    /// Rooms without connections are closed every this many seconds (0: never).
    pub room_idle_secs: u64,
}

impl Config {
    /// Defaults: allow-all, [`Limits::default`], `synchronous=NORMAL`, exclusive locking, no dev
    /// endpoints, 60 s per frame written, a ping every 30 s, 10 s of shutdown grace, idle rooms
    /// closed every 60 s.
    pub fn new(data: impl Into<PathBuf>, schema: impl Into<PathBuf>) -> Config {
        Config {
            data: data.into(),
            schema: schema.into(),
            limits: Limits::default(),
            synchronous: Synchronous::Normal,
            exclusive_locking: true,
            dev: false,
            auth: Arc::new(AllowAll),
            filter: Arc::new(AllowAllChanges),
            allow_origins: Vec::new(),
            session: ServerOptions::default(),
            send_timeout_secs: 60,
            ping_interval_secs: 30,
            shutdown_grace_secs: 10,
            room_idle_secs: 60,
        }
    }
}

/// State shared by the handlers.
pub struct AppState {
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) filter: Arc<dyn ChangeFilter>,
    pub(crate) limits: Limits,
    /// The schema every room holds (and every client must hold).
    pub(crate) schema: SchemaId,
    pub(crate) send_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) origins: Origins,
    pub(crate) connections: Connections,
    /// Becomes `true` when the server shuts down.
    pub(crate) stop: watch::Receiver<bool>,
    /// Held by every live WebSocket; shutdown waits until all clones are dropped.
    pub(crate) live: mpsc::Sender<()>,
}

/// Which page origins may use the server.
#[derive(Debug, Clone)]
pub(crate) enum Origins {
    Any,
    Loopback,
    List(Vec<String>),
}

impl Origins {
    fn new(list: &[String], open: bool) -> Origins {
        if list.iter().any(|o| o == "*") {
            Origins::Any
        } else if !list.is_empty() {
            Origins::List(
                list.iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            )
        } else if open {
            Origins::Loopback
        } else {
            Origins::Any
        }
    }

    /// Whether a page of `origin` may connect.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        match self {
            Origins::Any => true,
            Origins::List(l) => l.contains(&origin),
            Origins::Loopback => {
                let Some((scheme, rest)) = origin.split_once("://") else {
                    return false;
                };
                if scheme != "http" && scheme != "https" {
                    return false;
                }
                let host = match rest.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or(""),
                    None => rest.split(':').next().unwrap_or(""),
                };
                matches!(host, "localhost" | "127.0.0.1" | "::1")
            }
        }
    }
}

fn origin_ok(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(axum::http::header::ORIGIN) {
        None => true,
        Some(o) => o.to_str().is_ok_and(|o| state.origins.allows(o)),
    }
}

fn forbidden_origin() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "code": "FORBIDDEN",
            "message": "pages of this origin may not use this sync server (see --allow-origin)"
        })),
    )
        .into_response()
}

async fn sync_ws(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<Arc<Conn>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_ok(&state, &headers) {
        tracing::info!(peer = %conn.addr, "WebSocket from a page of an origin not allowed");
        return forbidden_origin();
    }
    let max = state.limits.max_frame_bytes;
    let peer = conn.addr;
    let live = state.live.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        // Small buffers (they grow for a large message): an idle connection costs little.
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES)
        .on_failed_upgrade(move |e| tracing::debug!(%peer, error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            connection::run(socket, state, conn).await;
            drop(live);
        })
}

/// Initial read buffer, and the write buffer flushed once this full, of a WebSocket.
const WS_BUFFER_BYTES: usize = 8 * 1024;

const OPEN_WARNING: &str = "authentication is off: anyone who can reach this server can read \
                            and write every room (start it with --jwt-secret, --jwt-jwks or \
                            --token-secret)";

async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let open = state.auth.is_open();
    let mut body = serde_json::json!({
        "status": "ok",
        "auth": if open { "off" } else { "tokens" },
        "connections": listener::count(&state.connections),
        "banned": listener::banned(&state.connections),
        "rooms": state.rooms.open_count(),
    });
    if open {
        body["warning"] = OPEN_WARNING.into();
    }
    Json(body)
}

/// Checks a dev request's origin and, when tokens are required, its bearer token for `room`.
pub(crate) async fn authorize_dev(
    state: &AppState,
    headers: &HeaderMap,
    room: &str,
) -> Result<(), ServerError> {
    if !origin_ok(state, headers) {
        return Err(ServerError::Forbidden(
            "pages of this origin may not use this server".into(),
        ));
    }
    if state.auth.is_open() {
        return Ok(());
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    state.auth.authenticate(token, room).await?;
    Ok(())
}

/// Loads the migrations of `schema` and applies them to an in-memory database, so a broken
/// schema folder stops the server at startup rather than at the first join; returns them and
/// the schema id every room will hold.
fn load_schema(
    schema: &std::path::Path,
) -> Result<(Vec<synqlite_core::schema::Migration>, SchemaId), ServerError> {
    let migrations = crate::migrate::load_dir(schema)?;
    let mut conn = synqlite_core::rusqlite::Connection::open_in_memory()
        .map_err(synqlite_core::Error::from)?;
    prepare_db(&mut conn, &migrations)?;
    let id = synqlite_core::sync::schema_id(&conn)?;
    Ok((migrations, id))
}

/// Runs the server on `listener` until `shutdown` resolves, then shuts down gracefully (see the
/// module docs) and returns. Fails at startup when the data folder cannot be created or the
/// schema folder does not load and apply.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    crate::rooms::store::tune_sqlite();
    let (migrations, schema) = load_schema(&config.schema)?;
    let n_migrations = migrations.len();
    let rooms = Arc::new(Rooms::new(
        config.data.clone(),
        migrations,
        RoomOptions {
            synchronous: config.synchronous,
            exclusive: config.exclusive_locking,
            max_open: config.limits.max_rooms_open,
            session: config.session,
        },
    )?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (live_tx, mut live_rx) = mpsc::channel::<()>(1);
    let connections: Connections = Arc::new(Mutex::new(listener::Table::new(&config.limits)));
    let open = config.auth.is_open();
    let state = Arc::new(AppState {
        rooms: rooms.clone(),
        auth: config.auth.clone(),
        filter: config.filter.clone(),
        limits: config.limits.clone(),
        schema,
        send_timeout: Duration::from_secs(config.send_timeout_secs.max(1)),
        ping_interval: (config.ping_interval_secs > 0)
            .then(|| Duration::from_secs(config.ping_interval_secs)),
        origins: Origins::new(&config.allow_origins, open),
        connections: connections.clone(),
        stop: stop_rx.clone(),
        live: live_tx,
    });
    let mut app = Router::new()
        .route("/sync", get(sync_ws))
        .route("/healthz", get(healthz));
    if config.dev {
        let origins = state.origins.clone();
        let cors = tower_http::cors::CorsLayer::new()
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any)
            .allow_origin(tower_http::cors::AllowOrigin::predicate(
                move |o: &HeaderValue, _| o.to_str().is_ok_and(|o| origins.allows(o)),
            ));
        app = app
            .route("/rooms/{room}/seed", post(dev::seed))
            .route("/rooms/{room}/rows/{table}", get(dev::rows))
            .route("/rooms/{room}/stats", get(dev::stats))
            .layer(cors);
    }
    let app = app.with_state(state.clone());
    if config.room_idle_secs > 0 {
        let (rooms, mut stop) = (rooms.clone(), stop_rx.clone());
        let every = Duration::from_secs(config.room_idle_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let closed = rooms.close_idle().await;
                        if closed > 0 {
                            tracing::debug!(closed, open = rooms.open_count(), "idle rooms closed");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        });
    }
    let addr = listener
        .local_addr()
        .map_or_else(|e| format!("? ({e})"), |a| a.to_string());
    tracing::info!(
        listen = %addr,
        data = %config.data.display(),
        schema = %config.schema.display(),
        migrations = n_migrations,
        dev = config.dev,
        max_connections = config.limits.max_connections,
        max_connections_per_ip = config.limits.max_connections_per_ip,
        max_rooms_open = config.limits.max_rooms_open,
        "synqlite-server listening"
    );
    if open {
        tracing::warn!("{OPEN_WARNING}");
    }
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
    let notify_stop = async move {
        shutdown.await;
        tracing::info!("shutting down: closing connections");
        let _ = deadline_tx.send(Instant::now() + grace);
        let _ = stop_tx.send(true);
    };
    listener::accept_loop(
        listener,
        app,
        config.limits.clone(),
        connections,
        stop_rx.clone(),
        notify_stop,
    )
    .await;
    let deadline = deadline_rx.await.unwrap_or_else(|_| Instant::now() + grace);
    // The state (and the sender in it) lives on in the WebSocket tasks and dev requests: the
    // channel closes when the last of them ends.
    drop(state);
    if tokio::time::timeout_at(deadline, async { while live_rx.recv().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
    rooms.close_all().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_only_by_default_when_open() {
        let o = Origins::new(&[], true);
        for ok in [
            "http://localhost:5173",
            "http://127.0.0.1",
            "https://localhost",
            "http://[::1]:8080",
        ] {
            assert!(o.allows(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(!o.allows(bad), "{bad}");
        }
        assert!(Origins::new(&[], false).allows("https://app.example"));
        let l = Origins::new(&["https://app.example/".into()], true);
        assert!(l.allows("https://APP.example") && !l.allows("https://other.example"));
        assert!(Origins::new(&["*".into()], true).allows("https://x.example"));
    }
}
