//! The HTTP side: the `/sync` WebSocket endpoint, `/healthz`, the `--dev` endpoints, and
//! [`serve`] with graceful shutdown.
//!
//! Shutdown, once the `shutdown` future given to [`serve`] resolves:
//! 1. the listener stops accepting;
//! 2. every connection is told (a `watch` channel): each finishes the frame it is handling
//!    (its transaction commits), sends a `SHUTTING_DOWN` error frame and a close frame (1001);
//!    dev requests stop between their transactions;
//! 3. after they all ended, or after `shutdown_grace_secs` at most, every room is checkpointed
//!    and closed, and [`serve`] returns.

use crate::auth::{AllowAll, Authenticator};
use crate::error::ServerError;
use crate::rooms::{prepare_db, Rooms, Synchronous};
use crate::{connection, dev};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use synqlite_core::sync::ServerOptions;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Everything [`serve`] needs.
pub struct Config {
    /// Folder of the room databases (`<data>/<room>.db`), created if missing.
    pub data: PathBuf,
    /// Folder of the ordered migrations (`*.sql`) applied to every room: the clients' schema.
    pub schema: PathBuf,
    /// Largest accepted WebSocket message (and frame), in bytes.
    pub max_frame_bytes: usize,
    /// Disk sync level of the room databases.
    pub synchronous: Synchronous,
    /// Enables the dev endpoints (seed, rows, stats) and permissive CORS.
    pub dev: bool,
    /// Who may join which room.
    pub auth: Arc<dyn Authenticator>,
    /// Chunk size cap and window per connection.
    pub session: ServerOptions,
    /// Seconds a new connection has to send its Hello.
    pub hello_timeout_secs: u64,
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
    /// Defaults: allow-all, 16 MiB frames, `synchronous=NORMAL`, no dev endpoints, 10 s to
    /// say Hello, 60 s per frame written, a ping every 30 s, 10 s of shutdown grace, idle rooms
    /// closed every 60 s.
    pub fn new(data: impl Into<PathBuf>, schema: impl Into<PathBuf>) -> Config {
        Config {
            data: data.into(),
            schema: schema.into(),
            max_frame_bytes: 16 << 20,
            synchronous: Synchronous::Normal,
            dev: false,
            auth: Arc::new(AllowAll),
            session: ServerOptions::default(),
            hello_timeout_secs: 10,
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
    pub(crate) session: ServerOptions,
    pub(crate) hello_timeout: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) max_frame_bytes: usize,
    /// Becomes `true` when the server shuts down.
    pub(crate) stop: watch::Receiver<bool>,
    /// Held by every live connection; shutdown waits until all clones are dropped.
    pub(crate) _connections: mpsc::Sender<()>,
}

async fn sync_ws(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    let max = state.max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(move |e| tracing::warn!(%peer, error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| connection::run(socket, state, peer))
}

/// Loads the migrations of `schema` and applies them to an in-memory database, so a broken
/// schema folder stops the server at startup rather than at the first join.
fn load_schema(
    schema: &std::path::Path,
) -> Result<Vec<synqlite_core::schema::Migration>, ServerError> {
    let migrations = crate::migrate::load_dir(schema)?;
    let mut conn = synqlite_core::rusqlite::Connection::open_in_memory()
        .map_err(synqlite_core::Error::from)?;
    prepare_db(&mut conn, &migrations)?;
    Ok(migrations)
}

/// Runs the server on `listener` until `shutdown` resolves, then shuts down gracefully (see the
/// module docs) and returns. Fails at startup when the data folder cannot be created or the
/// schema folder does not load and apply.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let migrations = load_schema(&config.schema)?;
    let n_migrations = migrations.len();
    let rooms = Arc::new(Rooms::new(
        config.data.clone(),
        migrations,
        config.synchronous,
    )?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    let state = Arc::new(AppState {
        rooms: rooms.clone(),
        auth: config.auth.clone(),
        session: config.session,
        hello_timeout: Duration::from_secs(config.hello_timeout_secs),
        send_timeout: Duration::from_secs(config.send_timeout_secs.max(1)),
        ping_interval: (config.ping_interval_secs > 0)
            .then(|| Duration::from_secs(config.ping_interval_secs)),
        max_frame_bytes: config.max_frame_bytes,
        stop: stop_rx.clone(),
        _connections: conn_tx,
    });
    let mut app = Router::new()
        .route("/sync", get(sync_ws))
        .route("/healthz", get(|| async { "ok" }));
    if config.dev {
        app = app
            .route("/rooms/{room}/seed", post(dev::seed))
            .route("/rooms/{room}/rows/{table}", get(dev::rows))
            .route("/rooms/{room}/stats", get(dev::stats))
            .layer(tower_http::cors::CorsLayer::permissive());
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
        "synqlite-server listening"
    );
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
    let http = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: closing connections");
        let _ = deadline_tx.send(Instant::now() + grace);
        let _ = stop_tx.send(true);
    })
    .into_future();
    // HTTP requests in flight (a long seed) get the grace period too, not more.
    let mut deadline_rx = deadline_rx;
    let mut deadline = None;
    tokio::pin!(http);
    let served = tokio::select! {
        r = &mut http => r,
        d = &mut deadline_rx => {
            let d = d.unwrap_or_else(|_| Instant::now() + grace);
            deadline = Some(d);
            match tokio::time::timeout_at(d, &mut http).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("HTTP requests still running after the grace period");
                    Ok(())
                }
            }
        }
    };
    served.map_err(|source| ServerError::Io {
        path: "listener".into(),
        source,
    })?;
    let deadline = deadline
        .or_else(|| deadline_rx.try_recv().ok())
        .unwrap_or_else(|| Instant::now() + grace);
    // The state (and the sender in it) lives on in the WebSocket tasks: the channel closes
    // when the last of them ends.
    drop(state);
    if tokio::time::timeout_at(deadline, async { while conn_rx.recv().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
    rooms.close_all().await;
    tracing::info!("stopped");
    Ok(())
}
