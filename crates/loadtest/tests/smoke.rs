//! The binary against an in-process server on the repository's schema: every scenario at a
//! tiny scale, checking that every write reached every other client of its room.

use std::path::{Path, PathBuf};
use std::process::Command;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema")
}

/// Runs `synqlite-loadtest args` against a fresh server; returns stdout and the record written.
fn run(args: &[&str]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = synqlite_server::Config::new(dir.path().join("data"), schema());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(synqlite_server::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let detail = dir.path().join("detail.json");
    let rows = dir.path().join("rows.json");
    let out = Command::new(env!("CARGO_BIN_EXE_synqlite-loadtest"))
        .args(args)
        .arg("--url")
        .arg(format!("ws://{addr}/sync"))
        .arg("--schema")
        .arg(schema())
        .arg("--server-pid")
        .arg(std::process::id().to_string())
        .arg("--out")
        .arg(&rows)
        .arg("--out-detail")
        .arg(&detail)
        .output()
        .unwrap();
    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rows).unwrap()).unwrap();
    for r in rows.as_array().unwrap() {
        assert!(r["workload"].as_str().unwrap().starts_with("server: "));
        assert!(r.get("unit").is_some() && r.get("ratio").is_some());
    }
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(detail).unwrap()).unwrap();
    (stdout, records[0].clone())
}

#[test]
fn relay_delivers_every_write() {
    let (stdout, r) = run(&[
        "--clients",
        "6",
        "--rooms",
        "2",
        "--period-ms",
        "200",
        "--duration-secs",
        "2",
        "--warmup-secs",
        "1",
        "--ramp-secs",
        "0.5",
    ]);
    assert_eq!(r["group"], "server");
    assert_eq!(r["joined"], 6, "{stdout}");
    let expected = r["deliveries_expected"].as_u64().unwrap();
    // 6 clients x ~10 writes x 2 others.
    assert!(expected >= 60, "{stdout}");
    assert_eq!(
        r["deliveries_received"].as_u64().unwrap(),
        expected,
        "{stdout}"
    );
    assert!(r["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(r["cpu_cores"].as_f64().is_some(), "{stdout}");
}

#[test]
fn other_scenarios_complete() {
    let (out, r) = run(&[
        "--scenario",
        "idle",
        "--clients",
        "5",
        "--ramp-secs",
        "0.2",
        "--duration-secs",
        "1",
    ]);
    assert_eq!(r["open_at_end"], 5, "{out}");
    let (out, r) = run(&[
        "--scenario",
        "joins",
        "--clients",
        "4",
        "--rooms",
        "2",
        "--ramp-secs",
        "0.2",
    ]);
    assert_eq!(r["caught_up"], 4, "{out}");
    let (out, r) = run(&[
        "--scenario",
        "burst",
        "--clients",
        "3",
        "--ramp-secs",
        "0.2",
    ]);
    assert_eq!(r["receivers_complete"], 2, "{out}");
    let (out, r) = run(&[
        "--scenario",
        "hostile",
        "--clients",
        "4",
        "--rooms",
        "2",
        "--hostile",
        "12",
        "--hostile-frame-bytes",
        "100000",
        "--duration-secs",
        "3",
        "--warmup-secs",
        "1",
        "--ramp-secs",
        "0.2",
    ]);
    assert!(r["hostile_closed_by_server"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(r["deliveries_received"], r["deliveries_expected"], "{out}");
}
