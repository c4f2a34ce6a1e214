//! The master's picture of its workers and the pure decisions over it: which slot a new worker
//! takes, how many to start or retire, which ones ran past the timeout, how long to back off after
//! crashes. No system calls here; the model acts on what these functions return.
use crate::heartbeat::SlotView;
use crate::metrics::RestartReason;

/// Where a worker is in its life; it only ever moves down this list (then it is reaped and gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkerState {
    /// Forked, not yet serving (its heartbeat has not said booted).
    Booting,
    Serving,
    /// Told to finish its requests and exit, or doing so on its own: SIGKILL at the deadline.
    Retiring {
        deadline_ms: u64,
    },
    /// SIGKILL sent on purpose: its exit is no crash and no failed boot.
    Killed,
}

impl WorkerState {
    /// The states' names, as /metrics and `ctl show workers` give them, in their order of life.
    pub const NAMES: [&'static str; 4] = ["booting", "serving", "retiring", "killed"];

    /// Where this state is in `NAMES`.
    pub fn index(self) -> usize {
        match self {
            WorkerState::Booting => 0,
            WorkerState::Serving => 1,
            WorkerState::Retiring { .. } => 2,
            WorkerState::Killed => 3,
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub pid: i32,
    /// The configuration generation (bumped by each HUP) the worker was started with.
    pub generation: u64,
    /// Heartbeat slot index within its generation's table.
    pub slot: usize,
    pub spawned_ms: u64,
    pub state: WorkerState,
    /// Its heartbeat said booted at some point (it may have been told to retire before).
    pub booted: bool,
    /// When the master sent SIGABRT for a timeout.
    pub abort_sent_ms: Option<u64>,
    /// Why it was asked to go (or went on its own): its exit is then a restart for that reason.
    pub reason: Option<RestartReason>,
}

impl Worker {
    /// Booting or serving: counts towards its generation's worker target.
    pub fn is_active(&self) -> bool {
        matches!(self.state, WorkerState::Booting | WorkerState::Serving)
    }
}

#[derive(Debug, Default)]
pub struct WorkerSet {
    workers: Vec<Worker>,
}

impl WorkerSet {
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter()
    }

    pub fn get(&self, pid: i32) -> Option<&Worker> {
        self.workers.iter().find(|w| w.pid == pid)
    }

    pub fn get_mut(&mut self, pid: i32) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.pid == pid)
    }

    /// Whether a live worker of `generation` holds `slot`.
    pub fn holds(&self, generation: u64, slot: usize) -> bool {
        self.workers
            .iter()
            .any(|w| w.generation == generation && w.slot == slot)
    }

    pub fn add(&mut self, pid: i32, generation: u64, slot: usize, now_ms: u64) {
        self.workers.push(Worker {
            pid,
            generation,
            slot,
            spawned_ms: now_ms,
            state: WorkerState::Booting,
            booted: false,
            abort_sent_ms: None,
            reason: None,
        });
    }

    pub fn remove(&mut self, pid: i32) -> Option<Worker> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.remove(index))
    }

    /// Pids of the workers of `generation` that `keep` selects.
    pub fn pids_of(&self, generation: u64, keep: impl Fn(&Worker) -> bool) -> Vec<i32> {
        let selected = self.workers.iter().filter(|w| w.generation == generation);
        selected.filter(|w| keep(w)).map(|w| w.pid).collect()
    }

    /// Pids of all workers that `keep` selects.
    pub fn pids_where(&self, keep: impl Fn(&Worker) -> bool) -> Vec<i32> {
        self.workers
            .iter()
            .filter(|w| keep(w))
            .map(|w| w.pid)
            .collect()
    }

    /// Active workers of `generation`.
    pub fn active(&self, generation: u64) -> usize {
        self.pids_of(generation, Worker::is_active).len()
    }

    /// Active workers of `generation` beyond `target`, oldest first (gunicorn retires the oldest).
    pub fn excess(&self, generation: u64, target: usize) -> Vec<i32> {
        let mut active: Vec<&Worker> = self
            .workers
            .iter()
            .filter(|w| w.generation == generation && w.is_active())
            .collect();
        active.sort_by_key(|w| (w.spawned_ms, w.pid));
        let extra = active.len().saturating_sub(target);
        active.iter().take(extra).map(|w| w.pid).collect()
    }

    /// Retiring workers whose graceful deadline passed.
    pub fn overdue(&self, now_ms: u64) -> Vec<i32> {
        self.pids_where(
            |w| matches!(w.state, WorkerState::Retiring { deadline_ms } if now_ms >= deadline_ms),
        )
    }
}

/// A worker that must be killed, and why, for the log: the text, and its parts for JSON logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    pub pid: i32,
    pub reason: String,
    /// `METHOD target` of the request that ran too long (None: silence or a slow boot).
    pub request: Option<String>,
    pub thread: Option<usize>,
    pub elapsed_ms: u64,
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
    let timeout = |text: String, elapsed_ms| Timeout {
        pid: worker.pid,
        reason: text,
        request: None,
        thread: None,
        elapsed_ms,
    };
    let Some(main) = views.first().filter(|v| v.booted) else {
        let booting = now_ms.saturating_sub(worker.spawned_ms);
        return (booting > timeout_ms).then(|| {
            let text = format!("still booting after {:.1}s", booting as f64 / 1000.0);
            timeout(text, booting)
        });
    };
    for (thread, view) in views.iter().enumerate() {
        if view.paused {
            continue;
        }
        if let Some(since) = view.busy_since {
            let elapsed = now_ms.saturating_sub(since);
            if elapsed > timeout_ms {
                let text = format!(
                    "request \"{}\" running for {:.1}s on thread {thread}",
                    view.request,
                    elapsed as f64 / 1000.0
                );
                return Some(Timeout {
                    request: Some(view.request.clone()),
                    thread: Some(thread),
                    ..timeout(text, elapsed)
                });
            }
        }
    }
    let silent = now_ms.saturating_sub(main.last_beat);
    let any_busy = views.iter().any(|v| v.busy_since.is_some());
    (!any_busy && silent > timeout_ms).then(|| {
        let text = format!("no heartbeat for {:.1}s", silent as f64 / 1000.0);
        timeout(text, silent)
    })
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
            state: WorkerState::Serving,
            booted: true,
            abort_sent_ms: None,
            reason: None,
        }
    }

    #[test]
    fn oldest_active_retire_first_and_retirees_are_killed_at_their_deadline() {
        let mut set = WorkerSet::default();
        set.add(10, 0, 0, 100);
        set.add(11, 0, 1, 200);
        set.add(12, 0, 2, 300);
        assert!(set.holds(0, 1) && !set.holds(1, 1));
        assert_eq!(set.excess(0, 1), vec![10, 11]);
        set.get_mut(10).unwrap().state = WorkerState::Retiring { deadline_ms: 1_000 };
        assert_eq!(set.active(0), 2);
        assert_eq!(set.excess(0, 1), vec![11]);
        assert_eq!(set.overdue(999), Vec::<i32>::new());
        assert_eq!(set.overdue(1_000), vec![10]);
        set.remove(10);
        assert!(!set.holds(0, 0));
    }

    #[test]
    fn a_long_request_is_named() {
        let worker = worker(7);
        let views = [view(None, 40_000, ""), view(Some(5_000), 0, "GET /slow")];
        let timeout = find_timeout(&worker, &views, 40_000, 30_000).unwrap();
        assert_eq!(timeout.pid, 7);
        assert!(timeout.reason.contains("GET /slow"), "{}", timeout.reason);
        assert!(timeout.reason.contains("thread 1"));
        assert_eq!(timeout.request.as_deref(), Some("GET /slow"));
        assert_eq!((timeout.thread, timeout.elapsed_ms), (Some(1), 35_000));
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
