//! `synqlite-server`: command line entry point.
//!
//! - `synqlite-server [--data data] [--schema schema] [--listen 127.0.0.1:8080] [--dev]
//!   [--token-secret S] [--jwt-secret S] [--jwt-jwks FILE|URL] [--jwt-issuer I]
//!   [--jwt-audience A] [--allow-origin O] [--synchronous normal|full] [--log-format pretty|json]
//!   [limits: see `--help`]`: run the sync server (WebSocket at `/sync`) until SIGINT or
//!   SIGTERM, then shut down gracefully and exit 0;
//! - `token --room R --secret S [--ttl-secs N]`: print an HMAC room token;
//! - `seed --data D --schema S --room R --rows N [--table T]`: add generated rows to a room
//!   (with the server stopped);
//! - `migrate new <name> [--dir schema]`: create `<dir>/<unix-ts>_<name>.sql`;
//! - `migrate check [--dir schema]`: check names, order and idempotence of `<dir>/*.sql`.
//!
//! Exit status: 0 on success, 1 when `check` finds problems or an operation fails, 2 for
//! usage errors.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use synqlite_server::{migrate, Config, HmacTokens, Limits, Synchronous};

#[derive(Parser)]
#[command(
    name = "synqlite-server",
    version,
    about = "synqlite's server and schema tooling"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum SyncLevel {
    Normal,
    Full,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Folder of the room databases (one `<room>.db` each).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Folder of the ordered migrations every room gets (the clients' schema).
    #[arg(long, default_value = "schema")]
    schema: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Enable the development endpoints (seed, rows, stats) with permissive CORS.
    #[arg(long)]
    dev: bool,
    /// Require HMAC room tokens signed with this secret (see `token`).
    #[arg(long, env = "SYNQLITE_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Accept JWTs signed with this HS256 secret (claims: exp, room or rooms, optional site,
    /// scope, sub).
    #[arg(long, env = "SYNQLITE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Accept JWTs signed with the keys of this JWKS (a file or an http(s) URL; RS256, PS256,
    /// ES256, EdDSA), reloaded when a token names an unknown key and every 10 minutes.
    #[arg(long, env = "SYNQLITE_JWT_JWKS")]
    jwt_jwks: Option<String>,
    /// Required JWT issuer (repeatable: any of them).
    #[arg(long = "jwt-issuer")]
    jwt_issuers: Vec<String>,
    /// Required JWT audience (repeatable: any of them).
    #[arg(long = "jwt-audience")]
    jwt_audiences: Vec<String>,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_frame_bytes: usize,
    /// Connections open at once; at the cap the one idle the longest makes room.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections open at once from one IP address (0: no cap).
    #[arg(long, default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Faults (bad frames, refused Hellos, timeouts) from one address within a minute that get
    /// it refused for a while (0: never).
    #[arg(long, default_value_t = Limits::default().ban_after_faults)]
    ban_after: u32,
    /// Seconds the first such ban lasts; each further ban of the address doubles it (up to 15
    /// minutes).
    #[arg(long, default_value_t = Limits::default().ban.as_secs())]
    ban_secs: u64,
    /// Rooms open at once; idle rooms are closed to make room.
    #[arg(long, default_value_t = Limits::default().max_rooms_open)]
    max_rooms_open: usize,
    /// Seconds a new connection has to send its HTTP request headers.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a message may take from its first byte to its last.
    #[arg(long, default_value_t = 30)]
    message_timeout_secs: u64,
    /// Frames a client may send per second on average (faster ones are read more slowly).
    #[arg(long, default_value_t = Limits::default().frames_per_sec)]
    frames_per_sec: f64,
    /// Frames a client may send in a burst.
    #[arg(long, default_value_t = Limits::default().frame_burst)]
    frame_burst: f64,
    /// Bytes a client may send per second on average.
    #[arg(long, default_value_t = Limits::default().bytes_per_sec)]
    bytes_per_sec: f64,
    /// Origin whose pages may connect (repeatable; `*` for any). Default: loopback pages only
    /// when no tokens are required, any page when they are.
    #[arg(long = "allow-origin")]
    allow_origins: Vec<String>,
    /// Let other processes read the room files while the server runs (slower: file locks on
    /// every transaction).
    #[arg(long)]
    shared_locking: bool,
    /// How hard room databases sync to disk.
    #[arg(long, value_enum, default_value = "normal")]
    synchronous: SyncLevel,
    /// Log format (filter with RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    /// Seconds a new connection has to send its Hello frame.
    #[arg(long, default_value_t = 10)]
    hello_timeout_secs: u64,
    /// Seconds one frame may take to write before the client counts as gone.
    #[arg(long, default_value_t = 60)]
    send_timeout_secs: u64,
    /// Seconds between pings to clients; a client silent for two intervals is dropped (0: off).
    #[arg(long, default_value_t = 30)]
    ping_interval_secs: u64,
    /// Seconds shutdown waits for connections to finish before closing the rooms anyway.
    #[arg(long, default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// Rooms without connections are closed every this many seconds (0: never).
    #[arg(long, default_value_t = 60)]
    room_idle_secs: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Print an HMAC token granting one room (for servers run with --token-secret).
    Token {
        /// The room the token grants.
        #[arg(long)]
        room: String,
        /// The server's secret.
        #[arg(long, env = "SYNQLITE_TOKEN_SECRET", hide_env_values = true)]
        secret: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: u64,
    },
    /// Add generated rows to a room's table, offline: a running server holds its room files
    /// exclusively (use its `--dev` seed endpoint instead).
    Seed {
        /// Folder of the room databases.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Folder of the ordered migrations.
        #[arg(long, default_value = "schema")]
        schema: PathBuf,
        /// The room.
        #[arg(long)]
        room: String,
        /// Rows to add.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// The table (songs get plausible songs; others a value per column type).
        #[arg(long, default_value = "songs")]
        table: String,
    },
    /// Ordered schema migrations (`<unix-ts>_<name>.sql` files).
    Migrate {
        #[command(subcommand)]
        action: Migrate,
    },
}

#[derive(Subcommand)]
enum Migrate {
    /// Create `<dir>/<unix-ts>_<name>.sql`, ordered after every existing migration.
    New {
        /// What the migration does, in lowercase snake case (e.g. add_playlists).
        name: String,
        /// Folder of migration files.
        #[arg(long, default_value = "schema")]
        dir: PathBuf,
    },
    /// Check names, order and idempotence of every `.sql` file in `<dir>` (each runs twice, in
    /// order, on an in-memory database).
    Check {
        /// Folder of migration files.
        #[arg(long, default_value = "schema")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Migrate { action }) => run_migrate(action).map_err(|e| e.to_string()),
        Some(Command::Token {
            room,
            secret,
            ttl_secs,
        }) => {
            if !synqlite_server::rooms::valid_room(&room) {
                Err(synqlite_server::ServerError::InvalidRoom(room).to_string())
            } else if secret.is_empty() {
                Err(EMPTY_SECRET.to_owned())
            } else {
                println!("{}", HmacTokens::new(secret).token_for(&room, ttl_secs));
                Ok(ExitCode::SUCCESS)
            }
        }
        Some(Command::Seed {
            data,
            schema,
            room,
            rows,
            table,
        }) => runtime().and_then(|rt| {
            let r = rt.block_on(seed(data, schema, room, rows, table));
            rt.shutdown_timeout(Duration::from_secs(5));
            r
        }),
        None => runtime().and_then(|rt| {
            let r = rt.block_on(serve(cli.serve));
            // Tasks still running after the grace period are dropped, not waited for.
            rt.shutdown_timeout(Duration::from_secs(2));
            r
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

const EMPTY_SECRET: &str = "the token secret is empty: pass a long random string";

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

async fn seed(
    data: PathBuf,
    schema: PathBuf,
    room: String,
    rows: usize,
    table: String,
) -> Result<ExitCode, String> {
    let migrations = migrate::load_dir(&schema).map_err(|e| e.to_string())?;
    let rooms = synqlite_server::rooms::Rooms::new(
        data,
        migrations,
        synqlite_server::rooms::RoomOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let r = rooms.get(&room).await.map_err(|e| e.to_string())?;
    let changes = r
        .with(move |conn| synqlite_server::dev::seed_rows(conn, &table, rows))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    rooms.close_all().await;
    println!("seeded {rows} rows into room {room}; it holds {changes} change rows");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let mut config = Config::new(args.data, args.schema);
    config.dev = args.dev;
    config.limits = Limits {
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        ban_after_faults: args.ban_after,
        ban: Duration::from_secs(args.ban_secs.max(1)),
        max_rooms_open: args.max_rooms_open,
        max_frame_bytes: args.max_frame_bytes,
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        hello_timeout: Duration::from_secs(args.hello_timeout_secs.max(1)),
        message_timeout: Duration::from_secs(args.message_timeout_secs.max(1)),
        frames_per_sec: args.frames_per_sec,
        frame_burst: args.frame_burst,
        bytes_per_sec: args.bytes_per_sec,
    };
    config.allow_origins = args.allow_origins;
    config.exclusive_locking = !args.shared_locking;
    raise_fd_limit();
    config.send_timeout_secs = args.send_timeout_secs;
    config.shutdown_grace_secs = args.shutdown_grace_secs;
    config.ping_interval_secs = args.ping_interval_secs;
    config.room_idle_secs = args.room_idle_secs;
    config.synchronous = match args.synchronous {
        SyncLevel::Normal => Synchronous::Normal,
        SyncLevel::Full => Synchronous::Full,
    };
    let jwt = synqlite_server::JwtConfig {
        secret: args.jwt_secret.map(String::into_bytes),
        jwks: args
            .jwt_jwks
            .as_deref()
            .map(synqlite_server::auth::JwksSource::parse),
        issuers: args.jwt_issuers,
        audiences: args.jwt_audiences,
        ..Default::default()
    };
    config.auth = synqlite_server::auth::from_options(synqlite_server::auth::AuthOptions {
        token_secret: args.token_secret,
        jwt,
    })
    .await
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    synqlite_server::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the open-file limit to its hard limit: every connection and every open room (three
/// files) takes descriptors, and the default soft limit (1024) is far below the caps.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::warn!("cannot raise the open-file limit");
            }
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            tracing::info!(open_files = lim.rlim_cur, "open-file limit");
        }
    }
}

fn run_migrate(action: Migrate) -> Result<ExitCode, migrate::MigrateError> {
    match action {
        Migrate::New { name, dir } => {
            let path = migrate::new_migration(&dir, &name, migrate::unix_now())?;
            println!("created {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Migrate::Check { dir } => {
            let report = migrate::check_dir(&dir)?;
            if report.problems.is_empty() {
                println!(
                    "ok: {} migration(s) in {} are well named, ordered and idempotent",
                    report.files,
                    dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            for p in &report.problems {
                eprintln!("{}: {}", dir.join(&p.file).display(), p.message);
            }
            eprintln!(
                "{} problem(s) in {} file(s) of {}",
                report.problems.len(),
                report.files,
                dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
