//! The HTTP side: the `/sync` WebSocket endpoint, `/healthz`, the `--dev` endpoints, and
//! [`serve`] with graceful shutdown.

use crate::auth::{AllowAll, Authenticator};
use crate::error::ServerError;
use crate::rooms::{Rooms, Synchronous};
use crate::{connection, dev};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use synqlite_core::sync::ServerOptions;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Everything [`serve`] needs.
pub struct Config {
    /// Folder of the room databases.
    pub data: PathBuf,
    /// Folder of the ordered migrations applied to every room.
    pub schema: PathBuf,
    /// Largest accepted WebSocket message, in bytes.
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
    /// Seconds shutdown waits for connections to finish.
    pub shutdown_grace_secs: u64,
}

impl Config {
    /// Defaults: allow-all, 16 MiB frames, `synchronous=NORMAL`, no dev endpoints.
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
            shutdown_grace_secs: 10,
        }
    }
}

/// State shared by the handlers.
pub struct AppState {
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) session: ServerOptions,
    pub(crate) hello_timeout_secs: u64,
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
        .on_upgrade(move |socket| connection::run(socket, state, peer))
}

/// Runs the server on `listener` until `shutdown` resolves, then closes every connection
/// (each finishes the frame it is handling and gets a `SHUTTING_DOWN` error frame),
/// checkpoints the rooms and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let migrations = crate::migrate::load_dir(&config.schema)?;
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
        hello_timeout_secs: config.hello_timeout_secs,
        max_frame_bytes: config.max_frame_bytes,
        stop: stop_rx,
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
    let addr = listener.local_addr().ok();
    tracing::info!(
        listen = ?addr,
        data = %config.data.display(),
        schema = %config.schema.display(),
        dev = config.dev,
        "synqlite-server listening"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: closing connections");
        let _ = stop_tx.send(true);
    })
    .await
    .map_err(|source| ServerError::Io {
        path: "listener".into(),
        source,
    })?;
    // The state (and the sender in it) lives on in the WebSocket tasks: the channel closes
    // when the last of them ends.
    drop(state);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while conn_rx.recv().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
    rooms.close_all().await;
    tracing::info!("stopped");
    Ok(())
}
