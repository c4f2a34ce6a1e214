//! The mixed-latency load: a fixed number of keep-alive connections, each sending one slow request
//! (100 ms) out of every ten and fast ones otherwise, with latencies kept apart by kind, so that the
//! p99 of the fast requests shows how long they wait behind slow ones. It never judges the result
//! against a target: report.rs does.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Conn;

/// Every `SLOW_EVERY`-th request of a connection is slow (10 %); connections start at staggered
/// offsets so that the slow requests do not all go out together.
const SLOW_EVERY: usize = 10;

/// What one mixed run measured.
#[derive(Debug, Default)]
pub struct MixedResult {
    pub fast: Vec<Duration>,
    pub slow: Vec<Duration>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl MixedResult {
    pub fn req_per_sec(&self) -> f64 {
        (self.fast.len() + self.slow.len()) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: MixedResult) {
        self.fast.extend(other.fast);
        self.slow.extend(other.slow);
        self.errors += other.errors;
    }
}

/// The `p`-th quantile (0..=1) of `samples` (sorted in place); zero when there are none.
pub fn quantile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// The paths of the two kinds of request.
pub struct Paths<'a> {
    pub fast: &'a str,
    pub slow: &'a str,
}

/// One connection's loop until `deadline`; each request waits at most 10 s.
fn one_connection(
    addr: SocketAddr,
    offset: usize,
    paths: &Paths,
    deadline: Instant,
) -> MixedResult {
    let mut conn = Conn::new(addr, Duration::from_secs(10));
    let mut result = MixedResult::default();
    let mut n = offset;
    while Instant::now() < deadline {
        let slow = n % SLOW_EVERY == 0;
        n += 1;
        let started = Instant::now();
        match conn.get(if slow { paths.slow } else { paths.fast }) {
            Ok(200) if slow => result.slow.push(started.elapsed()),
            Ok(200) => result.fast.push(started.elapsed()),
            _ => {
                result.errors += 1;
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    result
}

/// Run `connections` connections in parallel for `duration`.
pub fn run(addr: SocketAddr, connections: usize, duration: Duration, paths: &Paths) -> MixedResult {
    let started = Instant::now();
    let deadline = started + duration;
    let mut total = MixedResult::default();
    thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|i| {
                scope.spawn(move || {
                    one_connection(addr, i * SLOW_EVERY / connections, paths, deadline)
                })
            })
            .collect();
        for handle in handles {
            total.merge(handle.join().expect("a load thread panicked"));
        }
    });
    total.elapsed = started.elapsed();
    total
}
