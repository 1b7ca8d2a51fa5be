//! The penalty box: an address whose connections keep ending in faults (garbage or oversized
//! frames, refused Hellos, timeouts before a Hello, malformed HTTP) is refused for a while.
//!
//! Each address (IPv6: its /64, which one host usually owns whole) has a count of faults in
//! the current [`FAULT_WINDOW`]. Reaching `ban_after` faults bans the address for `ban`,
//! doubled for every further ban (up to [`MAX_BAN`]) until the address has behaved for a
//! whole window after its ban. While banned, its new connections are answered `429` and closed
//! by the accept loop itself, before any HTTP parsing, WebSocket handshake or task. Clean
//! disconnects and the server's own refusals (`SERVER_BUSY`, `SITE_IN_USE`, shutdown) are not
//! faults. The table holds at most [`MAX_ADDRESSES`] addresses; when full, records with
//! nothing pending are dropped first, and past that new faults are not recorded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Faults are counted over this window.
pub const FAULT_WINDOW: Duration = Duration::from_secs(60);
/// The longest ban.
pub const MAX_BAN: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Record {
    faults: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    /// Bans so far (each doubles the next).
    bans: u32,
}

/// Faults and bans by address.
#[derive(Debug)]
pub struct Penalties {
    ban_after: u32,
    ban: Duration,
    records: HashMap<IpAddr, Record>,
}

/// The address a fault is held against: IPv4 addresses as they are, IPv6 by /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Penalties {
    /// Bans for `ban` (doubling) after `ban_after` faults in a window; `ban_after` 0: never.
    pub fn new(ban_after: u32, ban: Duration) -> Penalties {
        Penalties {
            ban_after,
            ban: ban.max(Duration::from_secs(1)),
            records: HashMap::new(),
        }
    }

    /// How long `ip` stays banned, if it is.
    pub fn banned(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.records.get(&key(ip))?.banned_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records a fault of `ip`; returns the ban it starts, if it starts one.
    pub fn fault(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.ban_after == 0 {
            return None;
        }
        let k = key(ip);
        if !self.records.contains_key(&k) && self.records.len() >= MAX_ADDRESSES {
            self.prune(now);
            if self.records.len() >= MAX_ADDRESSES {
                return None;
            }
        }
        let r = self.records.entry(k).or_insert(Record {
            faults: 0,
            window_start: now,
            banned_until: None,
            bans: 0,
        });
        if r.banned_until.is_some_and(|t| t > now) {
            // Faults of connections that began before the ban.
            return None;
        }
        if now.duration_since(r.window_start) >= FAULT_WINDOW {
            let since_ban = r.banned_until.map(|t| now.saturating_duration_since(t));
            if since_ban.is_none_or(|d| d >= FAULT_WINDOW) {
                r.bans = 0;
            }
            r.faults = 0;
            r.window_start = now;
        }
        r.faults += 1;
        if r.faults < self.ban_after {
            return None;
        }
        let ban = self.ban.saturating_mul(1u32 << r.bans.min(16)).min(MAX_BAN);
        r.bans += 1;
        r.faults = 0;
        r.window_start = now + ban;
        r.banned_until = Some(now + ban);
        Some(ban)
    }

    /// Drops the records that no longer hold a ban or a count within its window.
    fn prune(&mut self, now: Instant) {
        self.records.retain(|_, r| {
            let banned = r.banned_until.is_some_and(|t| t > now);
            banned || now.duration_since(r.window_start) < FAULT_WINDOW
        });
    }

    /// Addresses banned now.
    pub fn banned_count(&self, now: Instant) -> usize {
        self.records
            .values()
            .filter(|r| r.banned_until.is_some_and(|t| t > now))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bans_after_the_threshold_and_doubles() {
        let mut p = Penalties::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert_eq!(p.fault(a, t0), None);
        assert_eq!(p.fault(a, t0), None);
        assert_eq!(p.fault(a, t0), Some(Duration::from_secs(10)));
        assert!(p.banned(a, t0).is_some());
        assert!(p.banned(ip("10.0.0.2"), t0).is_none());
        // Faults during the ban are not counted.
        assert_eq!(p.fault(a, t0 + Duration::from_secs(1)), None);
        let t1 = t0 + Duration::from_secs(11);
        assert!(p.banned(a, t1).is_none());
        assert_eq!(p.fault(a, t1), None);
        assert_eq!(p.fault(a, t1), None);
        assert_eq!(p.fault(a, t1), Some(Duration::from_secs(20)));
        // A whole window of good behaviour after the ban resets the doubling.
        let t2 = t1 + Duration::from_secs(20) + FAULT_WINDOW;
        p.fault(a, t2);
        p.fault(a, t2);
        assert_eq!(p.fault(a, t2), Some(Duration::from_secs(10)));
    }

    #[test]
    fn faults_spread_over_windows_never_ban() {
        let mut p = Penalties::new(3, Duration::from_secs(10));
        let a = ip("10.0.0.1");
        let mut t = Instant::now();
        for _ in 0..20 {
            assert_eq!(p.fault(a, t), None);
            t += FAULT_WINDOW / 2 + Duration::from_millis(1);
        }
    }

    #[test]
    fn ipv6_by_64_and_mapped_v4_as_v4() {
        let mut p = Penalties::new(2, Duration::from_secs(10));
        let t = Instant::now();
        p.fault(ip("2001:db8:1:2::1"), t);
        assert!(p.fault(ip("2001:db8:1:2::ffff"), t).is_some());
        assert!(p.banned(ip("2001:db8:1:2:3:4:5:6"), t).is_some());
        assert!(p.banned(ip("2001:db8:1:3::1"), t).is_none());
        p.fault(ip("::ffff:10.1.1.1"), t);
        assert!(p.fault(ip("10.1.1.1"), t).is_some());
    }

    #[test]
    fn off_when_zero_and_bounded() {
        let mut p = Penalties::new(0, Duration::from_secs(10));
        assert_eq!(p.fault(ip("10.0.0.1"), Instant::now()), None);
        let mut p = Penalties::new(1_000, Duration::from_secs(10));
        let t = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            p.fault(IpAddr::V4(i.into()), t);
        }
        assert_eq!(p.records.len(), MAX_ADDRESSES);
    }
}
