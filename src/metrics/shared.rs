//! The shared-memory record behind every count the master reports: worker ids (claimed by the
//! workers, released by the master at reap), one lane of counters per worker id, the master's own
//! counters and the last boot error. Plain atomics in one anonymous MAP_SHARED mapping made before
//! the first fork; never formats, never blocks, never allocates on the request path.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::labels::{ReloadOutcome, RestartReason, BUCKETS_NS, METHODS, STATUS_CLASSES};
use crate::process::SharedWords;
use crate::Result;

/// Worker ids: far more than ever run at once (ids are reused, smallest free first).
pub const CAPACITY: usize = 4096;

// Header.
const HIGH_WATER: usize = 0;
// The master's counters.
const MASTER: usize = 8;
const RESTARTS: usize = MASTER;
const TIMEOUTS: usize = RESTARTS + RestartReason::ALL.len();
const BOOT_FAILURES: usize = TIMEOUTS + 1;
const RELOADS: usize = BOOT_FAILURES + 1;
// The last boot error: a lock word, a count of writes, the length, then the text.
const BOOT_ERROR: usize = MASTER + 32;
const ERROR_LOCK: usize = BOOT_ERROR;
const ERROR_SEQ: usize = BOOT_ERROR + 1;
const ERROR_LEN: usize = BOOT_ERROR + 2;
const ERROR_TEXT: usize = BOOT_ERROR + 3;
const ERROR_WORDS: usize = 512;
const CLAIMS: usize = (ERROR_TEXT + ERROR_WORDS).next_multiple_of(8);
const LANES: usize = CLAIMS + CAPACITY;

// One lane: whole cache lines, so workers never write the same line.
const LANE_WORDS: usize = 64;
const REQUESTS: usize = 0;
const DURATION: usize = REQUESTS + METHODS.len() * STATUS_CLASSES.len();
const DURATION_SUM_NS: usize = DURATION + BUCKETS_NS.len() + 1;
const REQUEST_BYTES: usize = DURATION_SUM_NS + 1;
const RESPONSE_BYTES: usize = REQUEST_BYTES + 1;
const ACCEPTED: usize = RESPONSE_BYTES + 1;
const OPEN: usize = ACCEPTED + 1;
const MEMORY: usize = OPEN + 1;
const STATSD_ERRORS: usize = MEMORY + 1;
const _: () = assert!(STATSD_ERRORS < LANE_WORDS && LANES % 8 == 0);

/// The mapping; `metrics::install` makes the process-wide one.
pub struct Shared {
    words: SharedWords,
}

/// One worker id's counters, written by the worker holding the id (all its threads).
#[derive(Clone, Copy)]
pub struct Lane<'a> {
    words: &'a [AtomicU64],
}

/// Everything summed over all lanes, and the master's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// [method][status class]
    pub requests: [[u64; STATUS_CLASSES.len()]; METHODS.len()],
    /// Requests per duration bucket (not cumulative), the last one above every bound.
    pub duration: [u64; BUCKETS_NS.len() + 1],
    pub duration_sum_ns: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub accepted: u64,
    pub statsd_errors: u64,
    pub restarts: [u64; RestartReason::ALL.len()],
    pub timeouts: u64,
    pub boot_failures: u64,
    pub reloads: [u64; ReloadOutcome::ALL.len()],
}

impl Shared {
    pub fn new() -> Result<Self> {
        let words = SharedWords::new(LANES + (CAPACITY + 1) * LANE_WORDS)?;
        Ok(Shared { words })
    }

    fn word(&self, index: usize) -> &AtomicU64 {
        &self.words.words()[index]
    }

    /// A worker takes the smallest free id for its pid; None when all are taken (its counts then
    /// go to a lane shared by such workers, still exact).
    pub fn claim(&self, pid: i32) -> Option<u32> {
        let claims = &self.words.words()[CLAIMS..LANES];
        let id = claims.iter().position(|word| {
            word.compare_exchange(0, pid as u64, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        let id = id?;
        self.word(HIGH_WATER)
            .fetch_max(id as u64 + 1, Ordering::AcqRel);
        let lane = self.lane(Some(id as u32));
        lane.words[OPEN].store(0, Ordering::Relaxed);
        lane.words[MEMORY].store(0, Ordering::Relaxed);
        Some(id as u32)
    }

    /// The id `pid` holds, if any.
    pub fn worker_id(&self, pid: i32) -> Option<u32> {
        let claims = &self.words.words()[CLAIMS..CLAIMS + self.high_water()];
        let id = claims
            .iter()
            .position(|w| w.load(Ordering::Acquire) == pid as u64)?;
        Some(id as u32)
    }

    /// The reaped process `pid` gives its id back; returns it.
    pub fn release(&self, pid: i32) -> Option<u32> {
        let id = self.worker_id(pid)?;
        self.word(CLAIMS + id as usize).store(0, Ordering::Release);
        Some(id)
    }

    fn high_water(&self) -> usize {
        (self.word(HIGH_WATER).load(Ordering::Acquire) as usize).min(CAPACITY)
    }

    /// The lane of worker id `id` (None: the overflow lane).
    pub fn lane(&self, id: Option<u32>) -> Lane<'_> {
        let index = id.map_or(CAPACITY, |id| (id as usize).min(CAPACITY));
        let start = LANES + index * LANE_WORDS;
        Lane {
            words: &self.words.words()[start..start + LANE_WORDS],
        }
    }

    pub fn count_restart(&self, reason: RestartReason) {
        self.add(RESTARTS + reason as usize, 1);
    }

    pub fn count_timeout(&self) {
        self.add(TIMEOUTS, 1);
    }

    pub fn count_boot_failure(&self) {
        self.add(BOOT_FAILURES, 1);
    }

    pub fn count_reload(&self, outcome: ReloadOutcome) {
        self.add(RELOADS + outcome as usize, 1);
    }

    fn add(&self, index: usize, n: u64) {
        self.word(index).fetch_add(n, Ordering::Relaxed);
    }

    /// Every lane summed, with the master's counters.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        let ids = (0..self.high_water() as u32).map(Some);
        for id in ids.chain([None]) {
            self.lane(id).add_to(&mut totals);
        }
        let read = |index: usize| self.word(index).load(Ordering::Relaxed);
        for (i, n) in totals.restarts.iter_mut().enumerate() {
            *n = read(RESTARTS + i);
        }
        for (i, n) in totals.reloads.iter_mut().enumerate() {
            *n = read(RELOADS + i);
        }
        totals.timeouts = read(TIMEOUTS);
        totals.boot_failures = read(BOOT_FAILURES);
        totals
    }

    /// Keeps `text` as the last boot error (a worker or zygote that cannot load the app); a
    /// failure while another process writes one is dropped, theirs says the same.
    pub fn set_boot_error(&self, text: &str) {
        let lock = self.word(ERROR_LOCK);
        if lock
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let mut end = text.len().min(ERROR_WORDS * 8);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = &text.as_bytes()[..end];
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(ERROR_TEXT + i)
                .store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        self.word(ERROR_LEN)
            .store(bytes.len() as u64, Ordering::Relaxed);
        self.word(ERROR_SEQ).fetch_add(1, Ordering::Release);
        lock.store(0, Ordering::Release);
    }

    /// How many boot errors were kept so far, and the last one's text.
    pub fn boot_error(&self) -> (u64, String) {
        let seq = self.word(ERROR_SEQ).load(Ordering::Acquire);
        let len = (self.word(ERROR_LEN).load(Ordering::Relaxed) as usize).min(ERROR_WORDS * 8);
        let mut bytes = Vec::with_capacity(len.next_multiple_of(8));
        for i in 0..len.div_ceil(8) {
            let word = self.word(ERROR_TEXT + i).load(Ordering::Relaxed);
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.truncate(len);
        (seq, String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Lane<'_> {
    /// One finished request. Uncontended atomic adds: a handful of nanoseconds.
    pub fn record(
        &self,
        method: &str,
        status: u16,
        elapsed: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let cell = method_index(method) * STATUS_CLASSES.len() + status_class(status);
        self.add(REQUESTS + cell, 1);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS
            .iter()
            .position(|bound| ns <= *bound)
            .unwrap_or(BUCKETS_NS.len());
        self.add(DURATION + bucket, 1);
        self.add(DURATION_SUM_NS, ns);
        if request_bytes > 0 {
            self.add(REQUEST_BYTES, request_bytes);
        }
        if response_bytes > 0 {
            self.add(RESPONSE_BYTES, response_bytes);
        }
    }

    pub fn connection_opened(&self) {
        self.add(ACCEPTED, 1);
        self.add(OPEN, 1);
    }

    pub fn connection_closed(&self) {
        self.words[OPEN].fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now (meaningful while a worker holds the lane).
    pub fn open_connections(&self) -> u64 {
        self.words[OPEN].load(Ordering::Relaxed)
    }

    /// The holder's unshared memory, in bytes, as it last measured it.
    pub fn set_memory(&self, bytes: u64) {
        self.words[MEMORY].store(bytes, Ordering::Relaxed);
    }

    pub fn memory(&self) -> u64 {
        self.words[MEMORY].load(Ordering::Relaxed)
    }

    pub fn count_statsd_error(&self) {
        self.add(STATSD_ERRORS, 1);
    }

    fn add(&self, index: usize, n: u64) {
        self.words[index].fetch_add(n, Ordering::Relaxed);
    }

    fn add_to(&self, totals: &mut Totals) {
        let read = |index: usize| self.words[index].load(Ordering::Relaxed);
        for (m, row) in totals.requests.iter_mut().enumerate() {
            for (c, n) in row.iter_mut().enumerate() {
                *n += read(REQUESTS + m * STATUS_CLASSES.len() + c);
            }
        }
        for (b, n) in totals.duration.iter_mut().enumerate() {
            *n += read(DURATION + b);
        }
        totals.duration_sum_ns += read(DURATION_SUM_NS);
        totals.request_bytes += read(REQUEST_BYTES);
        totals.response_bytes += read(RESPONSE_BYTES);
        totals.accepted += read(ACCEPTED);
        totals.statsd_errors += read(STATSD_ERRORS);
    }
}

/// The index of `method` in METHODS; anything else is `_OTHER` (OpenTelemetry's bounded set).
fn method_index(method: &str) -> usize {
    match method {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "PATCH" => 5,
        "OPTIONS" => 6,
        _ => 7,
    }
}

/// 1xx..5xx as 0..4; anything out of range goes to the nearest class.
fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_smallest_free_and_come_back_at_release() {
        let shared = Shared::new().unwrap();
        assert_eq!(shared.claim(100), Some(0));
        assert_eq!(shared.claim(101), Some(1));
        assert_eq!(shared.claim(102), Some(2));
        assert_eq!(shared.release(101), Some(1));
        assert_eq!(shared.release(101), None);
        assert_eq!(shared.worker_id(102), Some(2));
        assert_eq!(shared.claim(103), Some(1), "the freed id is reused");
    }

    #[test]
    fn counts_survive_the_holder_and_sum_over_lanes() {
        let shared = Shared::new().unwrap();
        let first = shared.claim(10);
        let lane = shared.lane(first);
        lane.record("GET", 200, Duration::from_millis(3), 0, 11);
        lane.record("BREW", 418, Duration::from_secs(20), 5, 0);
        lane.connection_opened();
        shared.release(10);
        let again = shared.claim(11);
        assert_eq!(again, first);
        assert_eq!(
            shared.lane(again).open_connections(),
            0,
            "gauges start afresh"
        );
        shared
            .lane(shared.claim(12))
            .record("POST", 503, Duration::from_millis(7), 2, 3);
        shared.lane(None).record("GET", 204, Duration::ZERO, 0, 0);
        shared.count_restart(RestartReason::Memory);
        let totals = shared.totals();
        assert_eq!(totals.requests[0][1], 2, "GET 2xx");
        assert_eq!(totals.requests[7][3], 1, "_OTHER 4xx");
        assert_eq!(totals.requests[2][4], 1, "POST 5xx");
        assert_eq!(totals.duration[0], 2, "<= 5 ms");
        assert_eq!(totals.duration[1], 1, "<= 10 ms");
        assert_eq!(totals.duration[BUCKETS_NS.len()], 1, "+Inf");
        assert_eq!((totals.request_bytes, totals.response_bytes), (7, 14));
        assert_eq!(totals.accepted, 1);
        assert_eq!(totals.restarts[RestartReason::Memory as usize], 1);
    }

    #[test]
    fn the_last_boot_error_is_kept_whole() {
        let shared = Shared::new().unwrap();
        assert_eq!(shared.boot_error(), (0, String::new()));
        shared.set_boot_error("ImportError: no module named 'nope'");
        shared.set_boot_error(&format!("x{}", "é".repeat(3000)));
        let (seq, text) = shared.boot_error();
        assert_eq!(seq, 2);
        assert_eq!(
            text.len(),
            ERROR_WORDS * 8 - 1,
            "cut at a character boundary"
        );
    }
}
