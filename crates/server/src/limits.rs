//! Every resource a client can make the server spend has a cap here, with a default that suits
//! one modest machine; the operator raises or lowers them with command-line flags.
//!
//! - Before a peer is authenticated, nothing is kept in proportion to what it claims: its
//!   upgrade request must arrive within `header_timeout`, its Hello within `hello_timeout` and
//!   within [`PRE_AUTH_READ_BYTES`] bytes (the socket stops being read beyond that).
//! - Connections are capped in total and per IP address; when the total cap is reached the
//!   connection idle the longest is closed with `SERVER_BUSY` to make room (clients retry with
//!   backoff), and when none is idle the newcomer is refused with `503`.
//! - Open rooms are capped; idle rooms are closed first.
//! - An address whose connections keep ending in faults is refused for a while
//!   ([`crate::penalty`]): `ban_after_faults` faults in a minute ban it for `ban`, doubling.
//! - A joined connection may send `frames_per_sec` frames a second (bursts of `frame_burst`)
//!   and `bytes_per_sec` bytes (bursts of `max_frame_bytes`): beyond that it is simply read more
//!   slowly ([`TokenBucket`]), which costs nobody but itself. A message that arrives in pieces
//!   must be complete within `message_timeout`.

use std::time::Duration;
use tokio::time::Instant;

/// Bytes a connection may send before its Hello was accepted: the upgrade request's headers
/// plus the largest Hello ([`synqlite_core::sync::MAX_HELLO_BYTES`]) and framing.
pub const PRE_AUTH_READ_BYTES: u64 = 16 * 1024 + 64 * 1024 + 1024;

/// The caps of one server. `Limits::default()` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once (WebSocket or plain HTTP).
    pub max_connections: usize,
    /// Connections open at once from one IP address (0: no cap).
    pub max_connections_per_ip: usize,
    /// Rooms open at once.
    pub max_rooms_open: usize,
    /// Largest WebSocket message (one frame), in bytes.
    pub max_frame_bytes: usize,
    /// Time to send the HTTP request headers of the upgrade.
    pub header_timeout: Duration,
    /// Time to send the Hello after the upgrade.
    pub hello_timeout: Duration,
    /// Time a message may take from its first byte to its last.
    pub message_timeout: Duration,
    /// Frames a joined connection may send per second on average.
    pub frames_per_sec: f64,
    /// Frames a joined connection may send in a burst.
    pub frame_burst: f64,
    /// Bytes a joined connection may send per second on average.
    pub bytes_per_sec: f64,
    /// Faults (bad frames, refused Hellos, timeouts) from one address within a minute that
    /// ban it (0: never).
    pub ban_after_faults: u32,
    /// The first ban's length; each further ban doubles it (up to 15 minutes).
    pub ban: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_connections_per_ip: 2_000,
            max_rooms_open: 2_000,
            max_frame_bytes: 16 << 20,
            header_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            frames_per_sec: 100.0,
            frame_burst: 200.0,
            bytes_per_sec: 8.0 * 1024.0 * 1024.0,
            ban_after_faults: 20,
            ban: Duration::from_secs(10),
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes `n` tokens (the balance may go negative: a large frame is paid for afterwards).
    pub fn take(&mut self, n: f64) {
        self.refill(Instant::now());
        self.tokens -= n;
    }

    /// When the balance is positive again (now if it is).
    pub fn ready_at(&mut self) -> Instant {
        let now = Instant::now();
        self.refill(now);
        if self.tokens > 0.0 {
            return now;
        }
        now + Duration::from_secs_f64((-self.tokens + 1e-3) / self.rate)
    }
}

/// Cuts a client-supplied string for logs and error messages: at most 200 characters, the rest
/// replaced by a count.
pub fn clip(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}... ({} bytes in all)", &s[..at], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones() {
        assert_eq!(clip("room"), "room");
        let long = "é".repeat(10_000);
        let c = clip(&long);
        assert!(c.chars().count() < 240, "{c}");
        assert!(c.ends_with("(20000 bytes in all)"));
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_refill_at_their_rate() {
        let mut b = TokenBucket::new(10.0, 20.0);
        for _ in 0..20 {
            b.take(1.0);
        }
        let wait = b.ready_at() - Instant::now();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(101));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.ready_at(), Instant::now());
        // Never more than the burst saved up.
        tokio::time::advance(Duration::from_secs(100)).await;
        for _ in 0..20 {
            b.take(1.0);
        }
        assert!(b.ready_at() > Instant::now());
    }
}
