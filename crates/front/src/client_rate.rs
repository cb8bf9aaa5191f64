//! A per-client-address rate limit (token buckets), for `/v1/verify`: one address that sends
//! verifications faster than a person could is told to wait (`429 client_rate_limited`),
//! before any identity provider is asked. Pure: time comes in as an argument.
//!
//! Not a rule of the campaign (the ledger decides the 10-minute rule per person): a gateway's
//! own, lossy protection. Behind a proxy every client has the proxy's address, and mobile
//! carriers put many people behind one address (carrier-grade NAT), so it is off unless asked
//! for, with a generous burst.
//!
//! Bounded memory: at most `clients_max` buckets. A bucket that has refilled is the same as
//! none and is swept out (at most once per `SWEEP_INTERVAL`, when the table is full); a new
//! address while the table is still full of active ones is let through untracked (failing
//! open: never lock out everyone because many addresses are busy).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a full table may be swept of idle buckets, at most.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The limit: `per_s` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientRate {
    pub per_s: f64,
    pub burst: u32,
    /// Addresses tracked at once, at most.
    pub clients_max: usize,
}

impl ClientRate {
    /// `per_s` a second with a burst of `burst`, tracking up to 100,000 addresses (about
    /// 5 MB).
    pub fn new(per_s: f64, burst: u32) -> ClientRate {
        ClientRate {
            per_s,
            burst: burst.max(1),
            clients_max: 100_000,
        }
    }

    /// How long a bucket takes to refill from empty: idle that long, it is forgotten.
    fn refill_time(&self) -> Duration {
        seconds(f64::from(self.burst) / self.per_s)
    }
}

/// A number of seconds as a `Duration`, saturating (a rate near zero gives a wait beyond any
/// `Duration`), never a panic.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

/// The address a client is counted under: an IPv4 address, or the /64 network of an IPv6 one
/// (one subscriber usually has a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every client seen recently.
#[derive(Debug)]
pub struct ClientBuckets {
    rate: ClientRate,
    table: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<ClientKey, Bucket>,
    swept_at: Option<Instant>,
}

impl ClientBuckets {
    pub fn new(rate: ClientRate) -> ClientBuckets {
        ClientBuckets {
            rate,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                swept_at: None,
            }),
        }
    }

    /// Takes one token of `client`'s bucket at `now`: `Err(wait)` when there is none, with how
    /// long until there is.
    pub fn take(&self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let rate = self.rate;
        if !table.buckets.contains_key(&client) && table.buckets.len() >= rate.clients_max {
            table.sweep(rate, now);
            if table.buckets.len() >= rate.clients_max {
                return Ok(());
            }
        }
        let full = f64::from(rate.burst);
        let bucket = table.buckets.entry(client).or_insert(Bucket {
            tokens: full,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_s).min(full);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(seconds((1.0 - bucket.tokens) / rate.per_s))
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.buckets.len()
    }
}

impl Table {
    /// Forgets the buckets that have refilled (idle for a whole refill time).
    fn sweep(&mut self, rate: ClientRate, now: Instant) {
        if self
            .swept_at
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        self.swept_at = Some(now);
        let idle = rate.refill_time();
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: u8) -> ClientKey {
        ClientKey::of(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn a_burst_then_the_rate() {
        let buckets = ClientBuckets::new(ClientRate::new(2.0, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(client(1), t0), Ok(()));
        }
        let wait = buckets.take(client(1), t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(buckets.take(client(2), t0), Ok(()), "another address");
        assert!(
            buckets
                .take(client(1), t0 + Duration::from_millis(400))
                .is_err()
        );
        assert_eq!(
            buckets.take(client(1), t0 + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn the_table_is_bounded_and_idle_clients_are_forgotten() {
        let rate = ClientRate {
            clients_max: 4,
            ..ClientRate::new(1.0, 2)
        };
        let buckets = ClientBuckets::new(rate);
        let t0 = Instant::now();
        for n in 0..10 {
            assert_eq!(buckets.take(client(n), t0), Ok(()), "fails open when full");
        }
        assert_eq!(buckets.tracked(), 4);
        // Refilled after 2 s: swept out for newcomers.
        let later = t0 + Duration::from_secs(3);
        assert_eq!(buckets.take(client(42), later), Ok(()));
        assert_eq!(buckets.tracked(), 1);
    }

    #[test]
    fn a_rate_near_zero_waits_long_and_never_panics() {
        let buckets = ClientBuckets::new(ClientRate::new(1e-300, 1));
        let t0 = Instant::now();
        assert_eq!(buckets.take(client(1), t0), Ok(()));
        assert_eq!(buckets.take(client(1), t0), Err(Duration::MAX));
    }

    #[test]
    fn an_ipv6_subscriber_is_counted_by_its_64_network() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), client(1));
    }
}
