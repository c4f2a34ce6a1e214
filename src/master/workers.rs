//! The master's picture of its workers and the pure decisions over it: which slot a new worker
//! takes, how many to start or retire, which ones ran past the timeout, how long to back off after
//! crashes. No system calls here; the arbiter acts on what these functions return.
use crate::heartbeat::SlotView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub pid: i32,
    /// The configuration generation (bumped by each HUP) the worker was started with.
    pub generation: u64,
    /// Heartbeat slot index within its generation's table.
    pub slot: usize,
    pub spawned_ms: u64,
    /// When the master asked the worker to stop gracefully: it is SIGKILLed at this deadline.
    pub retire_deadline_ms: Option<u64>,
    /// When the master sent SIGABRT for a timeout.
    pub abort_sent_ms: Option<u64>,
    /// The master sent SIGKILL on purpose (timeout, overdue drain, abandoned reload).
    pub killed: bool,
}

#[derive(Debug, Default)]
pub struct WorkerSet {
    workers: Vec<Worker>,
    slots: usize,
}

impl WorkerSet {
    pub fn new(slots: usize) -> Self {
        WorkerSet {
            workers: Vec::new(),
            slots,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    pub fn get_mut(&mut self, pid: i32) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.pid == pid)
    }

    /// The lowest heartbeat slot of `generation` that no live worker of it holds.
    pub fn free_slot(&self, generation: u64) -> Option<usize> {
        let taken = |slot: usize| {
            self.workers
                .iter()
                .any(|w| w.generation == generation && w.slot == slot)
        };
        (0..self.slots).find(|slot| !taken(*slot))
    }

    pub fn add(&mut self, pid: i32, generation: u64, slot: usize, now_ms: u64) {
        self.workers.push(Worker {
            pid,
            generation,
            slot,
            spawned_ms: now_ms,
            retire_deadline_ms: None,
            abort_sent_ms: None,
            killed: false,
        });
    }

    pub fn remove(&mut self, pid: i32) -> Option<Worker> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.remove(index))
    }

    fn serving(&self, generation: u64) -> impl Iterator<Item = &Worker> {
        self.workers
            .iter()
            .filter(move |w| w.generation == generation && w.retire_deadline_ms.is_none())
    }

    /// How many workers of `generation` to fork now to reach `target`.
    pub fn missing(&self, generation: u64, target: usize) -> usize {
        target.saturating_sub(self.serving(generation).count())
    }

    /// Workers of `generation` beyond `target`, oldest first (gunicorn retires the oldest).
    pub fn excess(&self, generation: u64, target: usize) -> Vec<i32> {
        let mut serving: Vec<&Worker> = self.serving(generation).collect();
        serving.sort_by_key(|w| (w.spawned_ms, w.pid));
        let extra = serving.len().saturating_sub(target);
        serving.iter().take(extra).map(|w| w.pid).collect()
    }

    /// Serving workers of generations older than `generation`: what a finished reload retires.
    pub fn older_than(&self, generation: u64) -> Vec<i32> {
        let old = self
            .workers
            .iter()
            .filter(|w| w.generation < generation && w.retire_deadline_ms.is_none());
        old.map(|w| w.pid).collect()
    }

    /// Workers of `generation` (retiring or not).
    pub fn of_generation(&self, generation: u64) -> Vec<i32> {
        self.workers
            .iter()
            .filter(|w| w.generation == generation)
            .map(|w| w.pid)
            .collect()
    }

    /// Retiring workers whose graceful deadline passed.
    pub fn overdue(&self, now_ms: u64) -> Vec<i32> {
        let overdue = self
            .workers
            .iter()
            .filter(|w| w.retire_deadline_ms.is_some_and(|d| now_ms >= d));
        overdue.map(|w| w.pid).collect()
    }
}

/// A worker that must be killed, and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    pub pid: i32,
    pub reason: String,
}

/// Decides which workers ran past `timeout_ms`: a request running too long (named, with its
/// thread), a reactor that stopped beating, or a boot that never finished.
pub fn find_timeout(
    worker: &Worker,
    views: &[SlotView],
    now_ms: u64,
    timeout_ms: u64,
) -> Option<Timeout> {
    if timeout_ms == 0 || worker.abort_sent_ms.is_some() {
        return None;
    }
    let reason = |text: String| {
        Some(Timeout {
            pid: worker.pid,
            reason: text,
        })
    };
    let Some(main) = views.first().filter(|v| v.booted) else {
        let booting = now_ms.saturating_sub(worker.spawned_ms);
        return if booting > timeout_ms {
            reason(format!(
                "still booting after {:.1}s",
                booting as f64 / 1000.0
            ))
        } else {
            None
        };
    };
    for (thread, view) in views.iter().enumerate() {
        if view.paused {
            continue;
        }
        if let Some(since) = view.busy_since {
            let elapsed = now_ms.saturating_sub(since);
            if elapsed > timeout_ms {
                return reason(format!(
                    "request \"{}\" running for {:.1}s on thread {thread}",
                    view.request,
                    elapsed as f64 / 1000.0
                ));
            }
        }
    }
    let silent = now_ms.saturating_sub(main.last_beat);
    let any_busy = views.iter().any(|v| v.busy_since.is_some());
    if !any_busy && silent > timeout_ms {
        return reason(format!("no heartbeat for {:.1}s", silent as f64 / 1000.0));
    }
    None
}

/// Delay before the next fork after `failures` consecutive boot failures: 0, then 100 ms doubling
/// up to 10 s, so a crash loop does not eat the CPU.
pub fn respawn_delay_ms(failures: u32) -> u64 {
    if failures == 0 {
        return 0;
    }
    (100u64 << (failures - 1).min(7)).min(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(busy_since: Option<u64>, last_beat: u64, request: &str) -> SlotView {
        SlotView {
            busy_since,
            last_beat,
            pid: 1,
            booted: true,
            paused: false,
            request: request.to_string(),
        }
    }

    fn worker(pid: i32) -> Worker {
        Worker {
            pid,
            generation: 0,
            slot: 0,
            spawned_ms: 0,
            retire_deadline_ms: None,
            abort_sent_ms: None,
            killed: false,
        }
    }

    #[test]
    fn slots_are_reused_and_oldest_retire_first() {
        let mut set = WorkerSet::new(3);
        set.add(10, 0, set.free_slot(0).unwrap(), 100);
        set.add(11, 0, set.free_slot(0).unwrap(), 200);
        assert_eq!(set.free_slot(0), Some(2));
        set.remove(10);
        assert_eq!(set.free_slot(0), Some(0));
        set.add(12, 0, 0, 300);
        assert_eq!(set.missing(0, 4), 2);
        assert_eq!(set.excess(0, 1), vec![11]);
        set.get_mut(11).unwrap().retire_deadline_ms = Some(1_000);
        assert_eq!(set.missing(0, 2), 1);
        assert_eq!(set.overdue(999), Vec::<i32>::new());
        assert_eq!(set.overdue(1_000), vec![11]);
    }

    #[test]
    fn a_reload_starts_a_new_generation_beside_the_old() {
        let mut set = WorkerSet::new(2);
        set.add(10, 0, 0, 100);
        set.add(11, 0, 1, 100);
        assert_eq!(set.free_slot(1), Some(0));
        assert_eq!(set.missing(1, 2), 2);
        set.add(20, 1, 0, 200);
        set.add(21, 1, 1, 200);
        assert_eq!(set.older_than(1), vec![10, 11]);
        assert_eq!(set.of_generation(1), vec![20, 21]);
        assert_eq!(set.excess(1, 2), Vec::<i32>::new());
    }

    #[test]
    fn a_long_request_is_named() {
        let worker = worker(7);
        let views = [view(None, 40_000, ""), view(Some(5_000), 0, "GET /slow")];
        let timeout = find_timeout(&worker, &views, 40_000, 30_000).unwrap();
        assert_eq!(timeout.pid, 7);
        assert!(timeout.reason.contains("GET /slow"), "{}", timeout.reason);
        assert!(timeout.reason.contains("thread 1"));
        assert!(find_timeout(&worker, &views, 30_000, 30_000).is_none());
    }

    #[test]
    fn silence_and_slow_boots_time_out_but_zero_disables() {
        let worker = worker(7);
        assert!(find_timeout(&worker, &[view(None, 1_000, "")], 40_000, 30_000).is_some());
        assert!(find_timeout(&worker, &[view(None, 1_000, "")], 40_000, 0).is_none());
        let booting = SlotView::default();
        assert!(find_timeout(&worker, std::slice::from_ref(&booting), 20_000, 30_000).is_none());
        assert!(find_timeout(&worker, &[booting], 31_000, 30_000).is_some());
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(respawn_delay_ms(0), 0);
        assert_eq!(respawn_delay_ms(1), 100);
        assert_eq!(respawn_delay_ms(3), 400);
        assert_eq!(respawn_delay_ms(50), 10_000);
    }
}
