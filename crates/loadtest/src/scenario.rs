//! Orchestration of the scenarios: server (given or spawned), clients over a timeline, the
//! measured window, and the figures.

use crate::client::{self, ClientReport, Ctx, Live, Role, BURST_ROWS};
use crate::hostile::{self, HostileStats, Target};
use crate::proto::{self, Schema};
use crate::report::{self, f, num, opt, pct, period_name, Outcome};
use crate::spawn::{self, Spawned};
use crate::sys::{self, Rng, Sampler, Usage, Window};
use crate::{Args, Scenario};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs the scenario of `args`: prints the summary, writes the JSON files.
pub fn main(args: Args) -> Result<(), String> {
    let limit = sys::raise_nofile_limit();
    let hostiles = if args.scenario == Scenario::Hostile {
        u64::from(args.hostile)
    } else {
        0
    };
    let needed = u64::from(args.clients) + hostiles + 64;
    if needed > limit {
        eprintln!(
            "warning: {needed} open files needed (clients + hostile + 64) but the limit is {limit} \
             (hard limit); raise it (ulimit -Hn) or expect connection failures"
        );
    }
    let schema = proto::schema_of_dir(&args.schema)?;
    let n_rooms = if args.scenario == Scenario::Burst {
        1
    } else {
        args.rooms.max(1)
    };
    let rooms: Vec<String> = (0..n_rooms)
        .map(|r| format!("{}{r}", args.room_prefix))
        .collect();

    // The server.
    let (url, pid, spawned) = match &args.spawn {
        Some(bin) => {
            let dir = spawn::temp_dir()?;
            if args.seed_rows > 0 {
                let t = Instant::now();
                eprintln!(
                    "seeding {} room(s) with {} songs rows each",
                    rooms.len(),
                    args.seed_rows
                );
                spawn::seed(bin, &dir.join("data"), &args.schema, &rooms, args.seed_rows)?;
                eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
            }
            let s = Spawned::start(
                bin,
                dir,
                &args.schema,
                &args.spawn_arg,
                args.token_secret.as_deref(),
            )?;
            eprintln!(
                "spawned {} (pid {}) on {} in {:.2} s",
                bin.display(),
                s.pid(),
                s.addr,
                s.startup_secs
            );
            (format!("ws://{}/sync", s.addr), Some(s.pid()), Some(s))
        }
        None => {
            if args.seed_rows > 0 {
                eprintln!("warning: --seed-rows needs --spawn (the rooms of a running server are not seeded)");
            }
            (args.url.clone(), args.server_pid, None)
        }
    };
    let tokens: Vec<Option<String>> = match (&args.token_secret, &args.spawn) {
        (Some(secret), Some(bin)) => rooms
            .iter()
            .map(|r| spawn::token(bin, r, secret).map(Some))
            .collect::<Result<_, _>>()?,
        _ => vec![args.token.clone(); rooms.len()],
    };
    let sampler = pid.map(|p| Sampler::start(p, Duration::from_millis(250)));

    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let setup = Setup {
        url,
        schema,
        rooms,
        tokens,
    };
    let result = rt.block_on(run(&args, setup, sampler.as_ref()));
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(sampler);

    let mut outcome = match result {
        Ok(o) => o,
        Err(e) => {
            if let Some(s) = &spawned {
                eprintln!("server log (last lines):\n{}", s.log_tail(20));
            }
            return Err(e);
        }
    };
    if let Some(s) = spawned {
        let log = s.log_tail(5);
        let (secs, status) = s.stop();
        outcome.set("server_shutdown_secs", num(secs));
        outcome.line(format!(
            "server stopped with SIGTERM in {secs:.2} s ({status})"
        ));
        if !log.is_empty() && std::env::var_os("LOADTEST_VERBOSE").is_some() {
            outcome.line(format!("server log tail:\n{log}"));
        }
    }
    println!("{}", outcome.name);
    for l in &outcome.summary {
        println!("  {l}");
    }
    if let Some(out) = &args.out {
        report::merge_into(out, "workload", &outcome.flat_rows())?;
        println!("  rows merged into {}", out.display());
    }
    if let Some(out) = &args.out_detail {
        report::merge_into(out, "name", &[serde_json::Value::Object(outcome.record)])?;
        println!("  record merged into {}", out.display());
    }
    Ok(())
}

struct Setup {
    url: String,
    schema: Schema,
    rooms: Vec<String>,
    tokens: Vec<Option<String>>,
}

/// The clients of a run and their controls.
struct Fleet {
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
    go: watch::Sender<bool>,
    handles: Vec<JoinHandle<ClientReport>>,
    /// When the first client starts.
    t0: tokio::time::Instant,
    room_sizes: Vec<u64>,
}

/// Instants of a writing run.
struct Timeline {
    /// Measured window (writes sent in it count).
    from: tokio::time::Instant,
    to: tokio::time::Instant,
}

fn to_unix(at: tokio::time::Instant) -> u128 {
    let now = tokio::time::Instant::now();
    let unix = sys::unix_nanos();
    if at >= now {
        unix + (at - now).as_nanos()
    } else {
        unix.saturating_sub((now - at).as_nanos())
    }
}

/// Starts `n` clients, client `i` in room `i % rooms` with `role(i)`, their joins spread over
/// `ramp`; `timeline` (writing scenarios) sets the measured window.
fn launch(
    args: &Args,
    setup: &Setup,
    n: u32,
    role: impl Fn(u32) -> Role,
    timeline: Option<&Timeline>,
    t0: tokio::time::Instant,
) -> Fleet {
    let (stop_tx, stop) = watch::channel(false);
    let (go_tx, go) = watch::channel(false);
    let r = setup.rooms.len() as u32;
    let mut room_sizes = vec![0u64; r as usize];
    for i in 0..n {
        room_sizes[(i % r) as usize] += 1;
    }
    let (from, to, until) = match timeline {
        Some(t) => (to_unix(t.from), to_unix(t.to), t.to.into_std()),
        None => (0, 0, Instant::now()),
    };
    let mut rng = Rng::new();
    let ctx = Arc::new(Ctx {
        url: setup.url.clone(),
        schema: setup.schema.clone(),
        rooms: setup.rooms.clone(),
        tokens: setup.tokens.clone(),
        period: Duration::from_millis(args.period_ms.max(1)),
        measure_from: from,
        measure_to: to,
        writes_until: until,
        stop,
        burst_go: go,
        live: Live::default(),
        run_id: format!("{:08x}", rng.next_u64() as u32),
        burst: Mutex::new((None, None)),
    });
    let ramp = Duration::from_secs_f64(args.ramp_secs.max(0.0));
    let handles = (0..n)
        .map(|i| {
            let room = (i % r) as usize;
            let start = t0 + ramp.mul_f64(f64::from(i) / f64::from(n.max(1)));
            let member = client::Member {
                idx: i,
                room,
                room_size: room_sizes[room],
                site: rng.site(),
                role: role(i),
                start_at: start,
                phase: rng.unit(),
            };
            tokio::spawn(client::run(ctx.clone(), member))
        })
        .collect();
    Fleet {
        ctx,
        stop: stop_tx,
        go: go_tx,
        handles,
        t0,
        room_sizes,
    }
}

impl Fleet {
    fn live(&self) -> &Live {
        &self.ctx.live
    }

    fn progress(&self, what: &str) {
        let l = self.live();
        eprintln!(
            "  [{:>6.1} s] {what}: joined {}, caught up {}, failed {}, deliveries {}/{}",
            self.t0.elapsed().as_secs_f64(),
            l.joined.load(Ordering::Relaxed),
            l.caught_up.load(Ordering::Relaxed),
            l.failed.load(Ordering::Relaxed),
            l.received.load(Ordering::Relaxed),
            l.expected.load(Ordering::Relaxed),
        );
    }

    /// Sleeps until `deadline` or until `done` holds, printing progress every 5 s.
    async fn wait(&self, what: &str, deadline: tokio::time::Instant, done: impl Fn(&Live) -> bool) {
        let mut last = tokio::time::Instant::now();
        while tokio::time::Instant::now() < deadline && !done(self.live()) {
            tokio::time::sleep(
                Duration::from_millis(50).min(deadline - tokio::time::Instant::now()),
            )
            .await;
            if last.elapsed() >= Duration::from_secs(5) {
                self.progress(what);
                last = tokio::time::Instant::now();
            }
        }
    }

    async fn finish(self) -> (Arc<Ctx>, Vec<ClientReport>, Vec<u64>) {
        let _ = self.stop.send(true);
        let mut reports = Vec::with_capacity(self.handles.len());
        for h in self.handles {
            if let Ok(r) = h.await {
                reports.push(r);
            }
        }
        (self.ctx, reports, self.room_sizes)
    }
}

async fn run(args: &Args, setup: Setup, sampler: Option<&Sampler>) -> Result<Outcome, String> {
    match args.scenario {
        Scenario::Relay | Scenario::Hostile => relay(args, &setup, sampler).await,
        Scenario::Idle => idle(args, &setup, sampler).await,
        Scenario::Joins => joins(args, &setup, sampler).await,
        Scenario::Burst => burst(args, &setup, sampler).await,
    }
}

fn base(args: &Args, name: String, scenario: &str, setup: &Setup) -> Outcome {
    let mut o = Outcome::new(args.name.clone().unwrap_or(name), scenario);
    o.set("clients", args.clients);
    o.set("rooms", setup.rooms.len());
    o.set("schema", setup.schema.to_string());
    o.set("load_threads", args.threads);
    o.set("spawned", args.spawn.is_some());
    if !args.spawn_arg.is_empty() {
        o.set("spawn_args", args.spawn_arg.clone());
    }
    o
}

fn usage_into(o: &mut Outcome, u: &Usage) {
    o.set("window_secs", num(u.wall_secs));
    o.set("cpu_cores", opt(u.server_cpu_cores));
    o.set("rss_start_mib", opt(u.server_rss_start_mib));
    o.set("rss_end_mib", opt(u.server_rss_end_mib));
    o.set("rss_mib", opt(u.server_rss_peak_mib));
    o.set("server_threads", u.server_threads);
    o.set("load_cpu_cores", num(u.load_cpu_cores));
    let load = sys::loadavg_1m();
    o.set("machine_loadavg_1m", opt(load));
    o.line(format!(
        "server: {} CPU cores over {:.1} s, RSS {} MiB at start, {} MiB peak, {} MiB at end ({} threads); \
         load generator: {:.2} CPU cores; machine load average {}",
        f(u.server_cpu_cores, 2),
        u.wall_secs,
        f(u.server_rss_start_mib, 1),
        f(u.server_rss_peak_mib, 1),
        f(u.server_rss_end_mib, 1),
        u.server_threads.map_or("-".into(), |t| t.to_string()),
        u.load_cpu_cores,
        f(load, 1),
    ));
}

/// Error texts of the clients that ended early, counted.
fn errors(reports: &[ClientReport]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in reports {
        if let Some(e) = &r.error {
            let key: String = e.chars().take(80).collect();
            *m.entry(key).or_insert(0) += 1;
        }
    }
    m
}

fn errors_into(o: &mut Outcome, reports: &[ClientReport]) {
    let e = errors(reports);
    if !e.is_empty() {
        o.line(format!("clients that ended early: {e:?}"));
    }
    o.set("client_errors", json!(e));
}

async fn relay(args: &Args, setup: &Setup, sampler: Option<&Sampler>) -> Result<Outcome, String> {
    let hostile_mode = args.scenario == Scenario::Hostile;
    let n = args.clients;
    let period = period_name(args.period_ms);
    let name = if hostile_mode {
        format!(
            "hostile: relay {n} clients / {} rooms, 1 write/{period}, + {} hostile connections",
            setup.rooms.len(),
            args.hostile
        )
    } else {
        format!(
            "relay {n} clients / {} rooms, 1 write/{period}",
            setup.rooms.len()
        )
    };
    let mut o = base(
        args,
        name,
        if hostile_mode { "hostile" } else { "relay" },
        setup,
    );
    o.set("period_ms", args.period_ms);
    o.set("duration_secs", args.duration_secs);
    o.set("warmup_secs", args.warmup_secs);
    o.set("ramp_secs", args.ramp_secs);

    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let ramp = Duration::from_secs_f64(args.ramp_secs.max(0.0));
    let from = t0 + ramp + Duration::from_secs(args.warmup_secs);
    let to = from + Duration::from_secs(args.duration_secs.max(1));
    let timeline = Timeline { from, to };
    let fleet = launch(args, setup, n, |_| Role::Writer, Some(&timeline), t0);

    // Hostile connections from the end of the ramp to the end of the window, on their own
    // thread and runtime.
    let hostile_run: Option<(watch::Sender<bool>, std::thread::JoinHandle<HostileStats>)> =
        if hostile_mode && args.hostile > 0 {
            let addr = url_addr(&setup.url)?;
            let target = Arc::new(Target {
                url: setup.url.clone(),
                addr,
                schema: setup.schema.clone(),
                rooms: setup.rooms.clone(),
                tokens: setup.tokens.clone(),
                frame_bytes: args.hostile_frame_bytes,
            });
            let (tx, rx) = watch::channel(false);
            let k = args.hostile as usize;
            if k < hostile::MODES.len() {
                eprintln!(
                    "warning: {k} hostile connections cover only the first {k} of the {} misbehaviours",
                    hostile::MODES.len()
                );
            }
            let start_in = (t0 + ramp).saturating_duration_since(tokio::time::Instant::now());
            let th = std::thread::spawn(move || {
                std::thread::sleep(start_in);
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("hostile runtime")
                    .block_on(hostile::run(target, k, rx))
            });
            Some((tx, th))
        } else {
            None
        };

    let total = u64::from(n);
    fleet
        .wait("joining", t0 + ramp + Duration::from_secs(30), |l| {
            l.joined.load(Ordering::Relaxed) + l.failed.load(Ordering::Relaxed) >= total
        })
        .await;
    let joined_after_ramp = fleet.live().joined.load(Ordering::Relaxed);
    if joined_after_ramp < total {
        eprintln!("warning: only {joined_after_ramp} of {total} clients joined");
    }
    fleet.wait("warming up", from, |_| false).await;
    let window = Window::start(sampler);
    fleet.progress("measuring");
    fleet.wait("measuring", to, |_| false).await;
    let usage = window.end(sampler);
    if let Some((tx, _)) = &hostile_run {
        let _ = tx.send(true);
    }
    // Drain: writes of the window still in flight.
    fleet
        .wait(
            "draining",
            tokio::time::Instant::now() + Duration::from_secs(args.drain_secs),
            |l| l.received.load(Ordering::Relaxed) >= l.expected.load(Ordering::Relaxed),
        )
        .await;
    let (_ctx, reports, _sizes) = fleet.finish().await;
    let hostile_stats = match hostile_run {
        Some((_, th)) => Some(th.join().map_err(|_| "the hostile thread panicked")?),
        None => None,
    };

    // Figures.
    let joined = reports.iter().filter(|r| r.welcome_secs.is_some()).count();
    let writes: u64 = reports.iter().map(|r| r.writes_measured).sum();
    let skipped: u64 = reports.iter().map(|r| r.writes_skipped).sum();
    let late: u64 = reports.iter().map(|r| r.late).sum();
    let superseded: u64 = reports.iter().map(|r| r.superseded).sum();
    let expected = _ctx.live.expected.load(Ordering::Relaxed);
    let mut lat: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let received = lat.len() as u64;
    let ms = |p: f64| pct(&lat, p).map(|us| us / 1000.0);
    let (p50, p95, p99, max) = (ms(50.0), ms(95.0), ms(99.0), ms(100.0));
    let wall = usage.wall_secs;
    o.set("joined", joined);
    o.set("writes", writes);
    o.set("writes_per_s", num(writes as f64 / wall));
    o.set("writes_skipped_window_full", skipped);
    o.set("deliveries_expected", expected);
    o.set("deliveries_received", received);
    o.set("deliveries_late", late);
    o.set("deliveries_superseded", superseded);
    o.set("deliveries_per_s", num(received as f64 / wall));
    o.set("p50_ms", opt(p50));
    o.set("p95_ms", opt(p95));
    o.set("p99_ms", opt(p99));
    o.set("max_ms", opt(max));
    let received_pct = if expected > 0 {
        Some(100.0 * received as f64 / expected as f64)
    } else {
        None
    };
    o.set("deliveries_received_pct", opt(received_pct));
    o.line(format!(
        "{joined}/{n} joined; {writes} writes in {wall:.1} s ({:.1}/s), {received}/{expected} deliveries \
         ({:.1}/s, {} %), late (>1 s) {late}, superseded before relay {superseded}, writes skipped (window full) {skipped}",
        writes as f64 / wall,
        received as f64 / wall,
        f(received_pct, 2),
    ));
    o.line(format!(
        "relay latency ms: p50 {} p95 {} p99 {} max {}",
        f(p50, 2),
        f(p95, 2),
        f(p99, 2),
        f(max, 2)
    ));
    usage_into(&mut o, &usage);
    errors_into(&mut o, &reports);
    o.row("relay latency p50", "ms", p50);
    o.row("relay latency p99", "ms", p99);
    o.row("deliveries received", "%", received_pct);
    o.row("server CPU", "cores", usage.server_cpu_cores);
    o.row("server RSS peak", "MiB", usage.server_rss_peak_mib);
    if let Some(stats) = hostile_stats {
        let st = stats.lock().unwrap();
        let (mut conns, mut closed, mut ours, mut failed) = (0, 0, 0, 0);
        let mut modes = serde_json::Map::new();
        for (mode, m) in st.iter() {
            conns += m.connections;
            closed += m.closed_by_server;
            ours += m.ended_by_us;
            failed += m.connect_failed;
            modes.insert(
                (*mode).to_owned(),
                json!({
                    "connections": m.connections,
                    "closed_by_server": m.closed_by_server,
                    "ended_by_us": m.ended_by_us,
                    "connect_failed": m.connect_failed,
                    "frames_sent": m.frames_sent,
                    "error_codes": m.codes,
                }),
            );
            o.line(format!(
                "  hostile {mode}: {} connections, {} closed by the server, {} ended by us, {} could not connect, codes {:?}",
                m.connections, m.closed_by_server, m.ended_by_us, m.connect_failed, m.codes
            ));
        }
        o.set("hostile", args.hostile);
        o.set("hostile_frame_bytes", args.hostile_frame_bytes);
        o.set("hostile_connections", conns);
        o.set("hostile_closed_by_server", closed);
        o.set("hostile_ended_by_us", ours);
        o.set("hostile_connect_failed", failed);
        o.set("hostile_modes", serde_json::Value::Object(modes));
        o.line(format!(
            "hostile: {conns} connections, {closed} closed by the server, {ours} ended by us (time limit \
             or end of run), {failed} could not connect"
        ));
        o.row(
            "hostile connections closed by the server",
            "count",
            Some(closed as f64),
        );
    }
    Ok(o)
}

fn url_addr(url: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: hostile connections need a ws:// URL"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))
}

async fn idle(args: &Args, setup: &Setup, sampler: Option<&Sampler>) -> Result<Outcome, String> {
    let n = args.clients;
    let mut o = base(args, format!("idle {n} connections"), "idle", setup);
    o.set("duration_secs", args.duration_secs);
    o.set("ramp_secs", args.ramp_secs);
    let base_rss = sampler
        .and_then(Sampler::now)
        .map(|s| s.rss_kib as f64 / 1024.0);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let ramp = Duration::from_secs_f64(args.ramp_secs.max(0.0));
    let fleet = launch(args, setup, n, |_| Role::Listener, None, t0);
    let total = u64::from(n);
    fleet
        .wait("joining", t0 + ramp + Duration::from_secs(60), |l| {
            l.joined.load(Ordering::Relaxed) + l.failed.load(Ordering::Relaxed) >= total
        })
        .await;
    let join_secs = fleet.t0.elapsed().as_secs_f64();
    let joined = fleet.live().joined.load(Ordering::Relaxed);
    let window = Window::start(sampler);
    fleet.progress("holding");
    fleet
        .wait(
            "holding",
            tokio::time::Instant::now() + Duration::from_secs(args.duration_secs.max(1)),
            |_| false,
        )
        .await;
    let usage = window.end(sampler);
    let failed_during = fleet.live().failed.load(Ordering::Relaxed);
    let (_ctx, reports, _) = fleet.finish().await;
    let open_at_end = reports
        .iter()
        .filter(|r| r.welcome_secs.is_some() && r.error.is_none())
        .count() as u64;
    let per_1k = match (base_rss, usage.server_rss_end_mib) {
        (Some(b), Some(e)) if joined > 0 => Some((e - b) / joined as f64 * 1000.0),
        _ => None,
    };
    let open_pct = Some(100.0 * open_at_end as f64 / total.max(1) as f64);
    o.set("joined", joined);
    o.set("join_all_secs", num(join_secs));
    o.set("open_at_end", open_at_end);
    o.set(
        "all_stayed_open",
        open_at_end == total && failed_during == 0,
    );
    o.set("rss_before_mib", opt(base_rss));
    o.set("rss_per_1k_connections_mib", opt(per_1k));
    o.line(format!(
        "{joined}/{n} joined in {join_secs:.1} s; {open_at_end}/{n} still open after {:.0} s idle",
        usage.wall_secs
    ));
    o.line(format!(
        "server RSS: {} MiB before, {} MiB with the connections: {} MiB per 1k connections",
        f(base_rss, 1),
        f(usage.server_rss_end_mib, 1),
        f(per_1k, 2)
    ));
    usage_into(&mut o, &usage);
    errors_into(&mut o, &reports);
    o.row("server RSS per 1k idle connections", "MiB", per_1k);
    o.row("connections still open at the end", "%", open_pct);
    o.row("server CPU while idle", "cores", usage.server_cpu_cores);
    Ok(o)
}

async fn joins(args: &Args, setup: &Setup, sampler: Option<&Sampler>) -> Result<Outcome, String> {
    let n = args.clients;
    let mut o = base(
        args,
        format!(
            "joins {n} clients in {} s / {} rooms of {} rows",
            args.ramp_secs,
            setup.rooms.len(),
            args.seed_rows
        ),
        "joins",
        setup,
    );
    o.set("ramp_secs", args.ramp_secs);
    o.set("seed_rows", args.seed_rows);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let ramp = Duration::from_secs_f64(args.ramp_secs.max(0.0));
    let fleet = launch(args, setup, n, |_| Role::Listener, None, t0);
    let total = u64::from(n);
    fleet.wait("before the first join", t0, |_| false).await;
    let window = Window::start(sampler);
    fleet
        .wait("joining", t0 + ramp + Duration::from_secs(180), |l| {
            l.caught_up.load(Ordering::Relaxed) + l.failed.load(Ordering::Relaxed) >= total
        })
        .await;
    let usage = window.end(sampler);
    let (_ctx, reports, _) = fleet.finish().await;
    let mut cu: Vec<f64> = reports.iter().filter_map(|r| r.caught_up_secs).collect();
    cu.sort_by(f64::total_cmp);
    let mut wel: Vec<f64> = reports.iter().filter_map(|r| r.welcome_secs).collect();
    wel.sort_by(f64::total_cmp);
    let first = reports.iter().filter_map(|r| r.connect_at).min();
    let last = reports
        .iter()
        .filter_map(|r| Some(r.connect_at? + Duration::from_secs_f64(r.caught_up_secs?)))
        .max();
    let total_secs = match (first, last) {
        (Some(a), Some(b)) => Some(b.duration_since(a).as_secs_f64()),
        _ => None,
    };
    let ms = |v: &[f64], p| pct(v, p).map(|s| s * 1000.0);
    let backlog: Vec<u64> = reports.iter().map(|r| r.backlog).collect();
    let incomplete = reports
        .iter()
        .filter(|r| r.caught_up_secs.is_some() && r.rows < r.backlog)
        .count();
    let rows: u64 = reports.iter().map(|r| r.rows).sum();
    o.set("caught_up", cu.len());
    o.set(
        "backlog_rows_per_client",
        backlog.iter().max().copied().unwrap_or(0),
    );
    o.set("rows_received", rows);
    o.set("clients_missing_rows", incomplete);
    o.set("welcome_p50_ms", opt(ms(&wel, 50.0)));
    o.set("welcome_p99_ms", opt(ms(&wel, 99.0)));
    o.set("p50_ms", opt(ms(&cu, 50.0)));
    o.set("p99_ms", opt(ms(&cu, 99.0)));
    o.set("max_ms", opt(ms(&cu, 100.0)));
    o.set("total_ms", opt(total_secs.map(|s| s * 1000.0)));
    o.set("rows_per_s", num(rows as f64 / usage.wall_secs));
    o.line(format!(
        "{}/{n} caught up ({} change rows each at join, {rows} received, {incomplete} clients short of their backlog)",
        cu.len(),
        backlog.iter().max().copied().unwrap_or(0),
    ));
    o.line(format!(
        "join -> Welcome ms: p50 {} p99 {}; join -> CaughtUp ms: p50 {} p99 {} max {}; first join to last CaughtUp {} s",
        f(ms(&wel, 50.0), 1),
        f(ms(&wel, 99.0), 1),
        f(ms(&cu, 50.0), 1),
        f(ms(&cu, 99.0), 1),
        f(ms(&cu, 100.0), 1),
        f(total_secs, 2),
    ));
    usage_into(&mut o, &usage);
    errors_into(&mut o, &reports);
    o.row("join to CaughtUp p50", "ms", ms(&cu, 50.0));
    o.row("join to CaughtUp p99", "ms", ms(&cu, 99.0));
    o.row(
        "first join to last CaughtUp",
        "ms",
        total_secs.map(|s| s * 1000.0),
    );
    o.row("server CPU", "cores", usage.server_cpu_cores);
    o.row("server RSS peak", "MiB", usage.server_rss_peak_mib);
    Ok(o)
}

async fn burst(args: &Args, setup: &Setup, sampler: Option<&Sampler>) -> Result<Outcome, String> {
    let n = args.clients.max(2);
    let mut o = base(
        args,
        format!(
            "burst: one {}k-row transaction to {} clients of one room",
            BURST_ROWS / 1000,
            n - 1
        ),
        "burst",
        setup,
    );
    o.set("rows", BURST_ROWS);
    o.set("chunk_rows", client::BURST_CHUNK);
    o.set("window", client::WINDOW);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let ramp = Duration::from_secs_f64(args.ramp_secs.max(0.0));
    let fleet = launch(
        args,
        setup,
        n,
        |i| {
            if i == 0 {
                Role::BurstSender
            } else {
                Role::Listener
            }
        },
        None,
        t0,
    );
    let total = u64::from(n);
    fleet
        .wait("joining", t0 + ramp + Duration::from_secs(60), |l| {
            l.caught_up.load(Ordering::Relaxed) + l.failed.load(Ordering::Relaxed) >= total
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = Window::start(sampler);
    let _ = fleet.go.send(true);
    let receivers = total - 1;
    fleet
        .wait(
            "bursting",
            tokio::time::Instant::now() + Duration::from_secs(180),
            |l| {
                l.burst_complete.load(Ordering::Relaxed) + l.failed.load(Ordering::Relaxed)
                    >= receivers
            },
        )
        .await;
    let usage = window.end(sampler);
    let hwm = sampler
        .and_then(Sampler::now)
        .map(|s| s.hwm_kib as f64 / 1024.0);
    let (ctx, reports, _) = fleet.finish().await;
    let (start, acked) = *ctx.burst.lock().unwrap();
    let start = start.ok_or("the burst never started (the sender did not join?)")?;
    let mut done: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.burst_done)
        .map(|t| t.duration_since(start).as_secs_f64() * 1000.0)
        .collect();
    done.sort_by(f64::total_cmp);
    let upload = acked.map(|t| t.duration_since(start).as_secs_f64() * 1000.0);
    let (p50, p99, max) = (pct(&done, 50.0), pct(&done, 99.0), pct(&done, 100.0));
    o.set("receivers", receivers);
    o.set("receivers_complete", done.len());
    o.set("upload_ms", opt(upload));
    o.set("p50_ms", opt(p50));
    o.set("p99_ms", opt(p99));
    o.set("max_ms", opt(max));
    o.set("rss_hwm_mib", opt(hwm));
    o.line(format!(
        "{}/{receivers} receivers got all {BURST_ROWS} rows; sender: all chunks acknowledged after {} ms",
        done.len(),
        f(upload, 1)
    ));
    o.line(format!(
        "time to receive all rows ms: p50 {} p99 {} max {}; server peak RSS (VmHWM, whole run) {} MiB",
        f(p50, 1),
        f(p99, 1),
        f(max, 1),
        f(hwm, 1)
    ));
    usage_into(&mut o, &usage);
    errors_into(&mut o, &reports);
    o.row("all rows at every client p50", "ms", p50);
    o.row("all rows at every client p99", "ms", p99);
    o.row("all rows at every client max", "ms", max);
    o.row("server RSS peak", "MiB", hwm.or(usage.server_rss_peak_mib));
    Ok(o)
}
