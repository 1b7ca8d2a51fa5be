//! `synqlite-loadtest`: a load generator for `synqlite-server` speaking the real sync protocol.
//!
//! Every simulated client is a WebSocket with a random site id and no database: it joins a room
//! (`Hello`, `Welcome`, backlog, `CaughtUp`), acknowledges every `Changes` frame, and, in the
//! `relay` scenario, writes one column of its own `songs` row every period, the value holding
//! the send time, so every client that receives it measures the relay latency.
//!
//! Scenarios (`--scenario`): `relay` (default), `idle`, `joins`, `burst`, `hostile`; see
//! `bench/README.md` ("Server load") and `--help`.
//!
//! Modules: `proto` (every frame built or read: the only code that knows the protocol's types),
//! `client` (one simulated client), `hostile`, `scenario` (orchestration and figures), `spawn`
//! (`--spawn`), `sys` (rlimit, /proc sampling), `report` (summary and JSON).

mod client;
mod hostile;
mod proto;
mod report;
mod scenario;
mod spawn;
mod sys;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// N clients in R rooms each write one change per period; relay latency, deliveries, server
    /// CPU and RSS.
    Relay,
    /// N joined connections doing nothing; server RSS per 1k connections, whether all stayed open.
    Idle,
    /// N clients join (pre-seeded) rooms within --ramp-secs; join-to-CaughtUp time.
    Joins,
    /// One room of N clients; one sends a 10,000-row transaction; time until every other client
    /// has it, server peak RSS.
    Burst,
    /// `relay` plus --hostile K misbehaving connections; honest latency, hostile connections
    /// the server closed.
    Hostile,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "synqlite-loadtest",
    version,
    about = "Load generator for synqlite-server: simulated clients speaking the real sync protocol"
)]
pub struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "relay")]
    pub scenario: Scenario,
    /// The server's sync endpoint (ignored with --spawn).
    #[arg(long, default_value = "ws://127.0.0.1:8080/sync")]
    pub url: String,
    /// Simulated clients.
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Rooms (`<room-prefix><r>`); client i joins room i % rooms (burst: always 1).
    #[arg(long, default_value_t = 2)]
    pub rooms: u32,
    /// Milliseconds between two writes of one client (relay, hostile).
    #[arg(long, default_value_t = 500)]
    pub period_ms: u64,
    /// Seconds measured (relay, hostile: writing; idle: holding the connections).
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
    /// Seconds of writing after the ramp, before measuring (relay, hostile).
    #[arg(long, default_value_t = 5)]
    pub warmup_secs: u64,
    /// Seconds over which the clients' joins are spread.
    #[arg(long, default_value_t = 5.0)]
    pub ramp_secs: f64,
    /// Seconds to wait, after the measured window, for writes still in flight.
    #[arg(long, default_value_t = 5)]
    pub drain_secs: u64,
    /// Token sent in every Hello (see also --token-secret).
    #[arg(long)]
    pub token: Option<String>,
    /// With --spawn: start the server with this token secret and mint a token per room with
    /// `synqlite-server token`.
    #[arg(long)]
    pub token_secret: Option<String>,
    /// The server's migrations folder (the clients present its schema id).
    #[arg(long, default_value = "schema")]
    pub schema: PathBuf,
    /// Room name prefix.
    #[arg(long, default_value = "load-")]
    pub room_prefix: String,
    /// Sample this process's CPU and RSS (/proc) during the measured window.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Start this synqlite-server binary on a free loopback port over a temporary data folder
    /// (stopped with SIGTERM at the end); implies --server-pid.
    #[arg(long)]
    pub spawn: Option<PathBuf>,
    /// Extra argument for the spawned server (repeat for several), e.g. --spawn-arg=--synchronous=full.
    #[arg(long, allow_hyphen_values = true)]
    pub spawn_arg: Vec<String>,
    /// With --spawn: seed every room with this many `songs` rows first (`synqlite-server seed`).
    #[arg(long, default_value_t = 0)]
    pub seed_rows: usize,
    /// Hostile connections (hostile scenario).
    #[arg(long, default_value_t = 50)]
    pub hostile: u32,
    /// Size of the hostile oversized frame (the server's default limit is 16 MiB).
    #[arg(long, default_value_t = 15 << 20)]
    pub hostile_frame_bytes: usize,
    /// Worker threads of the load generator's runtime (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Workload name in the results (default: derived from the scenario and its parameters).
    #[arg(long)]
    pub name: Option<String>,
    /// Merge result rows (`bench/results/latest.json` shape) into this JSON array file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge the full result record (every figure) into this JSON array file.
    #[arg(long)]
    pub out_detail: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match scenario::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synqlite-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
