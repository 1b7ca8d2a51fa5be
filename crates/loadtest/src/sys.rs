//! The operating system side: open-file limit, CPU and memory of the server process (from
//! `/proc`) and of the load generator itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        let cur = lim.rlim_cur as u64;
        cur
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) this process used so far, all threads.
pub fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage writes the struct passed.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
}

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// CPU seconds (user + system, all threads) so far.
    pub cpu_secs: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Peak resident memory so far (VmHWM), KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        at,
        cpu_secs: ticks / clock_ticks(),
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// Samples a process every `every` on a thread of its own (so a busy load generator does not
/// delay it) until dropped.
pub struct Sampler {
    pid: u32,
    samples: Arc<Mutex<Vec<ProcSample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(x) = sample(pid) {
                    s.lock().unwrap().push(x);
                }
                std::thread::sleep(every);
            }
        });
        Sampler {
            pid,
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// A reading now (also kept with the others).
    pub fn now(&self) -> Option<ProcSample> {
        let x = sample(self.pid)?;
        self.samples.lock().unwrap().push(x);
        Some(x)
    }

    /// Largest RSS sampled between `from` and `to`, KiB.
    pub fn peak_rss_kib(&self, from: Instant, to: Instant) -> u64 {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// CPU and memory of the server and the load generator over a measured window.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Wall seconds of the window.
    pub wall_secs: f64,
    /// Server CPU seconds / wall seconds (`None` without a server pid).
    pub server_cpu_cores: Option<f64>,
    /// Server RSS at the start of the window, MiB.
    pub server_rss_start_mib: Option<f64>,
    /// Server RSS at the end of the window, MiB.
    pub server_rss_end_mib: Option<f64>,
    /// Largest server RSS sampled in the window, MiB.
    pub server_rss_peak_mib: Option<f64>,
    /// Server threads at the end.
    pub server_threads: Option<u64>,
    /// The load generator's CPU seconds / wall seconds.
    pub load_cpu_cores: f64,
}

/// Marks the start of a measured window.
pub struct Window {
    at: Instant,
    own_cpu: f64,
    server: Option<ProcSample>,
}

impl Window {
    /// Starts a window now.
    pub fn start(sampler: Option<&Sampler>) -> Window {
        Window {
            at: Instant::now(),
            own_cpu: own_cpu_secs(),
            server: sampler.and_then(Sampler::now),
        }
    }

    /// Ends the window now.
    pub fn end(&self, sampler: Option<&Sampler>) -> Usage {
        let now = Instant::now();
        let wall = now.duration_since(self.at).as_secs_f64().max(1e-9);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut u = Usage {
            wall_secs: wall,
            load_cpu_cores: (own_cpu_secs() - self.own_cpu) / wall,
            ..Usage::default()
        };
        if let (Some(s), Some(start)) = (sampler, self.server) {
            if let Some(end) = s.now() {
                u.server_cpu_cores = Some((end.cpu_secs - start.cpu_secs) / wall);
                u.server_rss_start_mib = Some(mib(start.rss_kib));
                u.server_rss_end_mib = Some(mib(end.rss_kib));
                u.server_rss_peak_mib = Some(mib(s.peak_rss_kib(self.at, now)));
                u.server_threads = Some(end.threads);
            }
        }
        u
    }
}

/// The 1-minute load average (`/proc/loadavg`): how busy the machine was besides us.
pub fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Unix time in nanoseconds.
pub fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A small fast generator (splitmix64) seeded from the OS.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `/dev/urandom` (or the clock).
    pub fn new() -> Rng {
        let mut seed = [0u8; 8];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .is_ok();
        let s = if ok {
            u64::from_le_bytes(seed)
        } else {
            unix_nanos() as u64
        };
        Rng(s)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 16 random bytes.
    pub fn site(&mut self) -> [u8; 16] {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        s[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        s
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0 && s.threads >= 1);
        assert!(raise_nofile_limit() >= 1024);
    }
}
