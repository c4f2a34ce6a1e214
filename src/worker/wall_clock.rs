//! The wall-clock time of a CLOCK_MONOTONIC reading, for the access log's timestamps: a request
//! is already timed by two monotonic reads, and a third, of the wall clock, per request would cost
//! as much again. Reads both clocks only to re-measure their difference; never formats.
use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::process::monotonic_ns;

/// How long a measured difference is used. NTP slews the wall clock by at most 500 µs a second,
/// so a time given within this is off by at most 50 µs; a step of the clock shows within it.
const REMEASURE_NS: u64 = 100_000_000;

/// CLOCK_REALTIME less CLOCK_MONOTONIC as last measured, per thread (no sharing to pay for).
#[derive(Debug, Default)]
pub struct WallClock {
    /// (the difference in ns, the monotonic reading it was measured at); None before the first.
    measured: Cell<Option<(u64, u64)>>,
}

impl WallClock {
    /// The wall-clock time at `monotonic` (a recent `monotonic_ns` reading).
    pub fn at(&self, monotonic: u64) -> SystemTime {
        match self.measured.get() {
            Some((offset, at)) if monotonic.saturating_sub(at) < REMEASURE_NS => {
                UNIX_EPOCH + Duration::from_nanos(monotonic.saturating_add(offset))
            }
            _ => self.measure(),
        }
    }

    /// Reads both clocks; returns the wall clock's reading.
    fn measure(&self) -> SystemTime {
        let now = SystemTime::now();
        let monotonic = monotonic_ns();
        if let Ok(since_epoch) = now.duration_since(UNIX_EPOCH) {
            let wall = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
            self.measured
                .set(Some((wall.saturating_sub(monotonic), monotonic)));
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(a: SystemTime, b: SystemTime) -> Duration {
        a.duration_since(b).unwrap_or_else(|e| e.duration())
    }

    #[test]
    fn agrees_with_the_wall_clock() {
        let clock = WallClock::default();
        for _ in 0..3 {
            let (given, wall) = (clock.at(monotonic_ns()), SystemTime::now());
            assert!(
                gap(wall, given) < Duration::from_millis(5),
                "{given:?} {wall:?}"
            );
        }
    }

    #[test]
    fn measures_again_once_its_difference_is_old() {
        let clock = WallClock::default();
        clock.measured.set(Some((0, 1)));
        let given = clock.at(1 + REMEASURE_NS - 1);
        assert_eq!(given, UNIX_EPOCH + Duration::from_nanos(REMEASURE_NS));
        let given = clock.at(1 + REMEASURE_NS);
        assert!(gap(SystemTime::now(), given) < Duration::from_millis(5));
        let (offset, _) = clock.measured.get().unwrap();
        assert!(
            offset > 1_000_000_000_000_000_000,
            "measured again: {offset}"
        );
    }
}
