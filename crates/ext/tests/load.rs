//! Builds the extension as `scripts/build-ext --debug` does and loads it into the programs that
//! cr-sqlite users load cr-sqlite into: Debian's Python `sqlite3` (`smoke.py`) and the `sqlite3`
//! shell, both linked against the system SQLite. Skipped (with a note) where they are missing.

#![cfg(not(target_family = "wasm"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the extension once (its own target directory: this test runs inside another cargo
/// build of the workspace) and returns the library's path.
fn extension() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let target = root().join("target/ext");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "--quiet",
                "-p",
                "synqlite-ext",
                "--features",
                "extension",
            ])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the extension failed");
        let so = target.join("debug/libcrsqlite.so");
        assert!(so.exists(), "{} missing", so.display());
        so
    })
}

fn present(tool: &str) -> bool {
    let found = Path::new(tool).exists();
    if !found {
        eprintln!("{tool} not found: skipped");
    }
    found
}

#[test]
fn python_sqlite3_loads_it() {
    const PYTHON: &str = "/usr/bin/python3";
    if !present(PYTHON) {
        return;
    }
    let out = Command::new(PYTHON)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smoke.py"))
        .arg(extension())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "{stdout}\n{stderr}"
    );
}

#[test]
fn sqlite3_shell_loads_it() {
    const SHELL: &str = "/usr/bin/sqlite3";
    if !present(SHELL) {
        return;
    }
    let so = extension().with_extension("");
    let out = Command::new(SHELL)
        .arg(":memory:")
        .arg(format!(".load {}", so.display()))
        .arg(
            "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, v);
             SELECT crsql_as_crr('t');
             INSERT INTO t VALUES (1, 'a'), (2, 'b');
             SELECT count(*), max(db_version), length(crsql_site_id()) FROM crsql_changes;
             SELECT crsql_finalize() IS NOT NULL;",
        )
        .output()
        .expect("run sqlite3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["OK", "2|1|16", "1"],
        "{stderr}"
    );
}
