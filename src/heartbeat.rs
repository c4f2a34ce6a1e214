//! Heartbeats: one fixed-size record per request thread of every worker slot, in memory shared
//! between the master and the workers, written by workers and read by the master. Plain atomics;
//! no clock of its own (callers pass monotonic milliseconds) and no decisions.
use std::sync::atomic::{AtomicU64, Ordering};

use crate::process::SharedWords;
use crate::Result;

const BUSY_SINCE: usize = 0;
const LAST_BEAT: usize = 1;
/// The pid the master recorded for the slot's fork request (0 until it read the fork's answer).
const PID: usize = 2;
/// The worker's stage: 0 booting, BOOTED, RETIRING, RETIRING_CHANGED.
const STAGE: usize = 3;
const TEXT_LEN: usize = 4;
const PAUSED_AT: usize = 5;
/// The fork request the slot was reset for: only the worker started for it may use the slot.
const OWNER: usize = 6;
const TEXT: usize = 7;
const SLOT_WORDS: usize = 16;
const TEXT_BYTES: usize = (SLOT_WORDS - TEXT) * 8;
const BOOTED: u64 = 1;
const RETIRING: u64 = 2;
/// Retiring because the app's code changed (`reload`).
const RETIRING_CHANGED: u64 = 3;

/// The heartbeat table; created by the master before the first fork.
pub struct Heartbeats {
    words: SharedWords,
    workers: usize,
    threads: usize,
}

/// Where a freshly forked worker stands with the master, read from its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The master recorded this worker's pid: it may serve.
    Known,
    /// The master has not read the fork's answer yet.
    Pending,
    /// The slot was reset for another fork request: the master gave up on this one.
    Replaced,
}

/// What a slot said when the master looked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotView {
    /// Monotonic ms when the current request started; None when idle.
    pub busy_since: Option<u64>,
    pub last_beat: u64,
    pub pid: i32,
    pub booted: bool,
    /// The request is waiting on its client (slow upload or download), which is not the app's
    /// time and never counts towards the timeout.
    pub paused: bool,
    /// `METHOD target` of the current request (cut to fit).
    pub request: String,
}

impl Heartbeats {
    pub fn new(workers: usize, threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let words = SharedWords::new(workers * threads * SLOT_WORDS)?;
        Ok(Heartbeats {
            words,
            workers,
            threads,
        })
    }

    pub fn worker_slots(&self) -> usize {
        self.workers
    }

    pub fn slot(&self, worker: usize, thread: usize) -> Slot<'_> {
        assert!(
            worker < self.workers && thread < self.threads,
            "heartbeat slot out of range"
        );
        let start = (worker * self.threads + thread) * SLOT_WORDS;
        Slot {
            words: &self.words.words()[start..start + SLOT_WORDS],
        }
    }

    /// Clears every record of a worker slot before the worker of fork request `owner` takes it.
    pub fn reset_worker(&self, worker: usize, now_ms: u64, owner: u64) {
        for thread in 0..self.threads {
            let slot = self.slot(worker, thread);
            for word in slot.words {
                word.store(0, Ordering::Relaxed);
            }
            slot.words[LAST_BEAT].store(now_ms, Ordering::Release);
        }
        self.slot(worker, 0).words[OWNER].store(owner, Ordering::Release);
    }

    /// Records the pid the slot's fork request produced: from then on that worker may serve.
    pub fn acknowledge(&self, worker: usize, pid: i32) {
        self.slot(worker, 0).words[PID].store(pid as u64, Ordering::Release);
    }

    pub fn view_worker(&self, worker: usize) -> Vec<SlotView> {
        (0..self.threads)
            .map(|thread| self.slot(worker, thread).view())
            .collect()
    }
}

#[derive(Clone, Copy)]
pub struct Slot<'a> {
    words: &'a [AtomicU64],
}

impl Slot<'_> {
    pub fn beat(&self, now_ms: u64) {
        self.words[LAST_BEAT].store(now_ms, Ordering::Release);
    }

    pub fn set_booted(&self, now_ms: u64) {
        self.beat(now_ms);
        self.words[STAGE].store(BOOTED, Ordering::Release);
    }

    /// The worker stopped taking work on its own (max_requests, code reload): the master then
    /// bounds its drain by graceful_timeout.
    pub fn set_retiring(&self) {
        self.words[STAGE].store(RETIRING, Ordering::Release);
    }

    /// As `set_retiring`, because the app's code changed.
    pub fn set_retiring_code_changed(&self) {
        self.words[STAGE].store(RETIRING_CHANGED, Ordering::Release);
    }

    pub fn retiring(&self) -> bool {
        self.words[STAGE].load(Ordering::Acquire) >= RETIRING
    }

    /// Retiring because the app's code changed.
    pub fn code_changed(&self) -> bool {
        self.words[STAGE].load(Ordering::Acquire) == RETIRING_CHANGED
    }

    /// The fork request this slot was last reset for (on a worker's first thread record).
    pub fn owner(&self) -> u64 {
        self.words[OWNER].load(Ordering::Acquire)
    }

    /// Whether the master knows the worker of fork request `owner` as `pid` (on a worker's first
    /// thread record).
    pub fn standing(&self, owner: u64, pid: i32) -> Standing {
        if self.owner() != owner {
            Standing::Replaced
        } else if self.words[PID].load(Ordering::Acquire) == pid as u64 {
            Standing::Known
        } else {
            Standing::Pending
        }
    }

    /// Marks a request as running; the text is written before the stamp that makes it visible.
    pub fn begin(&self, now_ms: u64, method: &str, target: &str) {
        // Byte by byte into a fixed buffer, then whole words: this runs for every request, and
        // copies of a few bytes each would be library calls.
        let mut text = [0u8; TEXT_BYTES];
        let bytes = method.bytes().chain([b' ']).chain(target.bytes());
        let mut len = 0usize;
        for (slot, byte) in text.iter_mut().zip(bytes) {
            *slot = byte;
            len += 1;
        }
        for (i, word) in text.chunks_exact(8).take(len.div_ceil(8)).enumerate() {
            let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
            self.words[TEXT + i].store(word, Ordering::Relaxed);
        }
        self.words[TEXT_LEN].store(len as u64, Ordering::Relaxed);
        self.words[BUSY_SINCE].store(now_ms.max(1), Ordering::Release);
    }

    pub fn end(&self, now_ms: u64) {
        self.words[BUSY_SINCE].store(0, Ordering::Release);
        self.words[PAUSED_AT].store(0, Ordering::Release);
        self.beat(now_ms);
    }

    /// The request starts waiting on its client.
    pub fn pause(&self, now_ms: u64) {
        self.words[PAUSED_AT].store(now_ms.max(1), Ordering::Release);
    }

    /// The wait on the client is over: its length is taken off the request's running time.
    pub fn resume(&self, now_ms: u64) {
        let paused_at = self.words[PAUSED_AT].swap(0, Ordering::AcqRel);
        let busy = self.words[BUSY_SINCE].load(Ordering::Acquire);
        if paused_at != 0 && busy != 0 {
            let waited = now_ms.saturating_sub(paused_at);
            self.words[BUSY_SINCE].store(busy + waited, Ordering::Release);
        }
    }

    /// Whether the worker owning this slot finished booting (what `view().booted` says, without
    /// reading the rest of the record).
    pub fn booted(&self) -> bool {
        self.words[STAGE].load(Ordering::Acquire) != 0
    }

    pub fn view(&self) -> SlotView {
        let busy = self.words[BUSY_SINCE].load(Ordering::Acquire);
        let len = (self.words[TEXT_LEN].load(Ordering::Relaxed) as usize).min(TEXT_BYTES);
        let mut text = Vec::with_capacity(TEXT_BYTES);
        for word in &self.words[TEXT..] {
            text.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        text.truncate(len);
        SlotView {
            busy_since: (busy != 0).then_some(busy),
            last_beat: self.words[LAST_BEAT].load(Ordering::Acquire),
            pid: self.words[PID].load(Ordering::Acquire) as i32,
            booted: self.booted(),
            paused: self.words[PAUSED_AT].load(Ordering::Acquire) != 0,
            request: String::from_utf8_lossy(&text).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_visible_until_it_ends() {
        let beats = Heartbeats::new(2, 3).unwrap();
        let slot = beats.slot(1, 2);
        slot.begin(1000, "GET", "/slow?x=1");
        let view = beats.view_worker(1);
        assert_eq!(view[2].busy_since, Some(1000));
        assert_eq!(view[2].request, "GET /slow?x=1");
        assert_eq!(view[0].busy_since, None);
        slot.end(2000);
        assert_eq!(slot.view().busy_since, None);
        assert_eq!(slot.view().last_beat, 2000);
    }

    #[test]
    fn waiting_on_the_client_does_not_count() {
        let beats = Heartbeats::new(1, 1).unwrap();
        let slot = beats.slot(0, 0);
        slot.begin(1_000, "POST", "/upload");
        slot.pause(2_000);
        assert!(slot.view().paused);
        slot.resume(9_000);
        assert_eq!(slot.view().busy_since, Some(8_000));
        assert!(!slot.view().paused);
    }

    #[test]
    fn long_targets_are_cut_and_reset_clears() {
        let beats = Heartbeats::new(1, 1).unwrap();
        let slot = beats.slot(0, 0);
        slot.set_booted(5);
        slot.begin(10, "POST", &"x".repeat(500));
        assert_eq!(slot.view().request.len(), TEXT_BYTES);
        assert!(slot.view().booted);
        slot.set_retiring();
        assert!(slot.retiring() && slot.booted() && !slot.code_changed());
        slot.set_retiring_code_changed();
        assert!(slot.retiring() && slot.code_changed());
        beats.reset_worker(0, 77, 9);
        assert_eq!(slot.owner(), 9);
        assert!(!slot.retiring());
        assert_eq!(
            slot.view(),
            SlotView {
                last_beat: 77,
                ..SlotView::default()
            }
        );
    }

    #[test]
    fn a_worker_is_known_only_once_the_master_records_its_pid() {
        let beats = Heartbeats::new(1, 2).unwrap();
        let slot = beats.slot(0, 0);
        beats.reset_worker(0, 1, 7);
        assert_eq!(slot.standing(7, 4242), Standing::Pending);
        beats.acknowledge(0, 4242);
        assert_eq!(slot.standing(7, 4242), Standing::Known);
        assert_eq!(slot.standing(7, 4243), Standing::Pending);
        // The master gave up on request 7 and asked again: its worker is never known.
        beats.reset_worker(0, 2, 8);
        beats.acknowledge(0, 4243);
        assert_eq!(slot.standing(7, 4242), Standing::Replaced);
        assert_eq!(slot.standing(8, 4243), Standing::Known);
    }
}
