//! The master's picture of its workers and the pure decisions over it: which slot a new worker
//! takes, how many to start or retire, which ones ran past the timeout, how long to back off after
//! crashes. No system calls here; the arbiter acts on what these functions return.
use crate::heartbeat::SlotView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub pid: i32,
    /// Heartbeat slot index.
    pub slot: usize,
    pub spawned_ms: u64,
    /// Set when the master asked the worker to stop (TERM for TTOU, SIGABRT/KILL for a timeout).
    pub retiring: bool,
    pub abort_sent_ms: Option<u64>,
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

    /// The lowest heartbeat slot no live worker holds.
    pub fn free_slot(&self) -> Option<usize> {
        (0..self.slots).find(|slot| self.workers.iter().all(|w| w.slot != *slot))
    }

    pub fn add(&mut self, pid: i32, slot: usize, now_ms: u64) {
        self.workers.push(Worker {
            pid,
            slot,
            spawned_ms: now_ms,
            retiring: false,
            abort_sent_ms: None,
        });
    }

    pub fn remove(&mut self, pid: i32) -> Option<Worker> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.remove(index))
    }

    fn active(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter().filter(|w| !w.retiring)
    }

    /// How many workers to fork now to reach `target`.
    pub fn missing(&self, target: usize) -> usize {
        target.saturating_sub(self.active().count())
    }

    /// Workers beyond `target`, oldest first (gunicorn retires the oldest).
    pub fn excess(&self, target: usize) -> Vec<i32> {
        let mut active: Vec<&Worker> = self.active().collect();
        active.sort_by_key(|w| (w.spawned_ms, w.pid));
        let extra = active.len().saturating_sub(target);
        active.iter().take(extra).map(|w| w.pid).collect()
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
            request: request.to_string(),
        }
    }

    #[test]
    fn slots_are_reused_and_oldest_retire_first() {
        let mut set = WorkerSet::new(3);
        set.add(10, set.free_slot().unwrap(), 100);
        set.add(11, set.free_slot().unwrap(), 200);
        assert_eq!(set.free_slot(), Some(2));
        set.remove(10);
        assert_eq!(set.free_slot(), Some(0));
        set.add(12, 0, 300);
        assert_eq!(set.missing(4), 2);
        assert_eq!(set.excess(1), vec![11]);
        set.get_mut(11).unwrap().retiring = true;
        assert_eq!(set.missing(2), 1);
    }

    #[test]
    fn a_long_request_is_named() {
        let worker = Worker {
            pid: 7,
            slot: 0,
            spawned_ms: 0,
            retiring: false,
            abort_sent_ms: None,
        };
        let views = [view(None, 40_000, ""), view(Some(5_000), 0, "GET /slow")];
        let timeout = find_timeout(&worker, &views, 40_000, 30_000).unwrap();
        assert_eq!(timeout.pid, 7);
        assert!(timeout.reason.contains("GET /slow"), "{}", timeout.reason);
        assert!(timeout.reason.contains("thread 1"));
        assert!(find_timeout(&worker, &views, 30_000, 30_000).is_none());
    }

    #[test]
    fn silence_and_slow_boots_time_out_but_zero_disables() {
        let worker = Worker {
            pid: 7,
            slot: 0,
            spawned_ms: 0,
            retiring: false,
            abort_sent_ms: None,
        };
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
