//! The `synqlite-server migrate` subcommands, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args(args)
        .output()
        .expect("the synqlite-server binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh empty folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("synqlite-server-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn new_creates_timestamped_files_in_order() {
    let tmp = TempDir::new("new");
    let dir = tmp.path().join("schema");
    let d = dir.to_str().unwrap();
    let out = bin(&["migrate", "new", "create_songs", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out2 = bin(&["migrate", "new", "add_playlists.sql", "--dir", d]);
    assert!(out2.status.success(), "{}", text(&out2.stderr));
    let files = names(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let ts = |f: &str| f.split('_').next().unwrap().parse::<u64>().unwrap();
    assert!(
        files[0].ends_with("_create_songs.sql") && files[1].ends_with("_add_playlists.sql"),
        "{files:?}"
    );
    assert!(
        ts(&files[1]) > ts(&files[0]),
        "the second file runs after the first: {files:?}"
    );
    assert_eq!(
        files[0].split('_').next().unwrap().len(),
        10,
        "10-digit unix seconds"
    );
    assert!(text(&out.stdout).contains(&files[0]));
    // A fresh template passes the check.
    let check = bin(&["migrate", "check", "--dir", d]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    // Bad names are refused.
    let bad = bin(&["migrate", "new", "Add Songs", "--dir", d]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("bad migration name"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn check_reports_problems_with_non_zero_exit() {
    let tmp = TempDir::new("check");
    let write = |name: &str, sql: &str| std::fs::write(tmp.path().join(name), sql).unwrap();
    write(
        "1718000000_songs.sql",
        "CREATE TABLE songs (id TEXT PRIMARY KEY NOT NULL);",
    );
    write("seeds.sql", "SELECT 1;");
    write("1718000100_bad.sql", "INSERT INTO nope VALUES (1);");
    write("notes.txt", "ignored");
    let out = bin(&["migrate", "check", "--dir", tmp.s()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("seeds.sql") && err.contains("<unix-timestamp>_<name>.sql"),
        "{err}"
    );
    assert!(
        err.contains("1718000000_songs.sql") && err.contains("IF NOT EXISTS"),
        "{err}"
    );
    assert!(
        err.contains("1718000100_bad.sql") && err.contains("no such table: nope"),
        "{err}"
    );
    assert!(err.contains("3 problem(s) in 3 file(s)"), "{err}");
}

#[test]
fn check_fails_cleanly_on_a_missing_folder() {
    let out = bin(&["migrate", "check", "--dir", "/nonexistent/synqlite/schema"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: /nonexistent/synqlite/schema"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_repository_schema_passes_the_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let out = bin(&["migrate", "check", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 4 migration(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn library_check_matches_the_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let report = synqlite_server::migrate::check_dir(&dir).unwrap();
    assert_eq!(report.files, 4);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn token_prints_a_token_the_server_accepts() {
    use synqlite_server::HmacTokens;
    let out = bin(&[
        "token",
        "--room",
        "music",
        "--secret",
        "s3cret-s3cret-s3cret",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let tokens = HmacTokens::new("s3cret-s3cret-s3cret");
    assert!(tokens.verify(Some(&token), "music").is_ok());
    assert!(tokens.verify(Some(&token), "other").is_err());
    // The secret may come from the environment; a short TTL is honoured.
    let env = Command::new(env!("CARGO_BIN_EXE_synqlite-server"))
        .args(["token", "--room", "music", "--ttl-secs", "0"])
        .env("SYNQLITE_TOKEN_SECRET", "s3cret-s3cret-s3cret")
        .output()
        .unwrap();
    assert!(env.status.success(), "{}", text(&env.stderr));
    let expired = text(&env.stdout).trim().to_owned();
    let why = tokens.verify(Some(&expired), "music").unwrap_err();
    assert!(why.to_string().contains("expired"), "{why}");
    // Refused: a room name with path tricks, an empty secret.
    let bad = bin(&["token", "--room", "../x", "--secret", "s"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("invalid room name"));
    let empty = bin(&["token", "--room", "music", "--secret", ""]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(text(&empty.stderr).contains("secret is empty"));
}

#[test]
fn the_server_refuses_to_start_on_a_broken_schema_folder() {
    let tmp = TempDir::new("broken");
    let schema = tmp.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    std::fs::write(schema.join("1700000000_bad.sql"), "CREATE TABLE oops (").unwrap();
    let data = tmp.path().join("data");
    let out = bin(&[
        "--data",
        data.to_str().unwrap(),
        "--schema",
        schema.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1700000000_bad.sql"),
        "{}",
        text(&out.stderr)
    );
    let nope = tmp.path().join("nope");
    let missing = bin(&[
        "--data",
        data.to_str().unwrap(),
        "--schema",
        nope.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("nope"),
        "{}",
        text(&missing.stderr)
    );
}
