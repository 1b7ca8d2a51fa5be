//! `--spawn`: a `synqlite-server` of our own on a free loopback port, over a temporary data
//! folder, stopped with SIGTERM at the end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process.
pub struct Spawned {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    /// The temporary folder (data, log), removed on drop.
    pub dir: PathBuf,
    /// Seconds from spawn to a healthy `/healthz`.
    pub startup_secs: f64,
}

/// A fresh temporary folder.
pub fn temp_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "synqlite-loadtest-{}-{}",
        std::process::id(),
        crate::sys::unix_nanos()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Whether `GET /healthz` answers 200.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// Runs `bin seed` for each room (before the server starts: seeding is offline).
pub fn seed(
    bin: &Path,
    data: &Path,
    schema: &Path,
    rooms: &[String],
    rows: usize,
) -> Result<(), String> {
    for room in rooms {
        let out = Command::new(bin)
            .args(["seed", "--data"])
            .arg(data)
            .arg("--schema")
            .arg(schema)
            .args(["--room", room, "--rows", &rows.to_string()])
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "seeding {room} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// A token for `room` from `bin token` (HMAC with `secret`).
pub fn token(bin: &Path, room: &str, secret: &str) -> Result<String, String> {
    let out = Command::new(bin)
        .args(["token", "--room", room, "--secret", secret])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "token for {room} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Spawned {
    /// Starts `bin --data <dir>/data --schema <schema> --listen 127.0.0.1:<free port>` (plus
    /// `extra` arguments), logging to `<dir>/server.log`, and waits for `/healthz`.
    pub fn start(
        bin: &Path,
        dir: PathBuf,
        schema: &Path,
        extra: &[String],
        token_secret: Option<&str>,
    ) -> Result<Spawned, String> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("--data")
            .arg(dir.join("data"))
            .arg("--schema")
            .arg(schema)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(s) = token_secret {
            cmd.env("SYNQLITE_TOKEN_SECRET", s);
        }
        if std::env::var_os("LOADTEST_KEEP").is_some() {
            eprintln!("server data and log kept in {}", dir.display());
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
        loop {
            if healthy(addr) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "the server exited ({status}) before it was healthy:\n{log}"
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                return Err("the server was not healthy within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Spawned {
            child,
            addr,
            dir,
            startup_secs: started.elapsed().as_secs_f64(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (SIGKILL after 30 s); returns the seconds it took and the exit
    /// status text.
    pub fn stop(mut self) -> (f64, String) {
        let t = Instant::now();
        // SAFETY: kill with a pid we own.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.to_string(),
                Ok(None) if t.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break "killed after 30 s".to_owned();
                }
            }
        };
        (t.elapsed().as_secs_f64(), status)
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::env::var_os("LOADTEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
