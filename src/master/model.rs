//! The master as a state machine: generations, workers, the phase, and `Model::step`, the pure
//! decision from (state, event, now) to actions. Never performs a system call or reads a clock:
//! the loop in `mod.rs` feeds it events and carries out what it returns. What it does between
//! events (reloads, top-ups, deadlines) is in `converge.rs`.
use nix::sys::signal::Signal;

use super::events::{Action, Event, GenSpec, Level, Notice, ReloadOutcome, RestartReason, Tally};
use super::workers::{Timeout, Worker, WorkerSet, WorkerState};

/// A worker that dies sooner than this after its fork counts towards a crash loop.
pub const EARLY_DEATH_MS: u64 = 5_000;

/// A generation's zygote, as far as the master knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zygote {
    Absent,
    /// Asked for; the pid once the fork reported it.
    Starting(Option<i32>),
    Ready(i32),
}

impl Zygote {
    pub fn pid(self) -> Option<i32> {
        match self {
            Zygote::Absent | Zygote::Starting(None) => None,
            Zygote::Starting(Some(pid)) | Zygote::Ready(pid) => Some(pid),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub spec: GenSpec,
    /// How many workers it should have (TTIN, TTOU and WINCH move it).
    pub target: usize,
    /// A worker of it finished booting: it is good, and a reload may fall back to it.
    pub booted: bool,
    /// All its workers served once and the older generations were told to retire (the first
    /// generation has nothing to replace and starts complete).
    pub complete: bool,
    pub zygote: Zygote,
    /// When a starting zygote that is not ready yet is killed (it hangs importing the app).
    pub zygote_deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Workers still running at `deadline_ms` are SIGKILLed; at `exit_by_ms` the master exits
    /// whatever is left.
    Stopping {
        deadline_ms: u64,
        exit_by_ms: u64,
    },
    Exited,
}

/// After the graceful deadline the master waits this long for the SIGKILLed to be reaped.
pub const STOP_MARGIN_MS: u64 = 1_000;

#[derive(Debug)]
pub struct Model {
    /// Oldest first; the last one is current: the only one topped up.
    pub(super) generations: Vec<Generation>,
    pub(super) workers: WorkerSet,
    /// Fork requests not answered yet, as (generation, slot).
    pub(super) pending: Vec<(u64, usize)>,
    /// Zygotes sent SIGKILL and not reaped yet.
    pub(super) dying_zygotes: Vec<i32>,
    pub(super) phase: Phase,
    pub(super) boot_failures: u32,
    pub(super) next_spawn_ms: u64,
    pub(super) exit_code: i32,
    pub(super) reexec: Option<i32>,
    /// How many serving workers systemd was last told about (None: READY=1 is owed).
    pub(super) announced: Option<usize>,
    pub(super) out: Vec<Action>,
}

impl Model {
    pub fn new(spec: GenSpec) -> Self {
        Model {
            generations: vec![Generation {
                complete: true,
                ..Generation::new(spec)
            }],
            workers: WorkerSet::default(),
            pending: Vec::new(),
            dying_zygotes: Vec::new(),
            phase: Phase::Running,
            boot_failures: 0,
            next_spawn_ms: 0,
            exit_code: 0,
            reexec: None,
            announced: None,
            out: Vec::new(),
        }
    }

    /// The one decision: what to do about `event` at `now`, including what time alone makes due.
    pub fn step(&mut self, event: Event, now: u64) -> Vec<Action> {
        if self.phase != Phase::Exited {
            self.handle(event, now);
            self.converge(now);
            debug_assert_eq!(self.check(now), Ok(()), "after a step at {now}");
        }
        std::mem::take(&mut self.out)
    }

    pub fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.iter()
    }

    pub fn current(&self) -> &Generation {
        self.generations.last().expect("a current generation")
    }

    fn handle(&mut self, event: Event, now: u64) {
        match event {
            Event::Tick => {}
            Event::Signal(signal) => self.on_signal(signal, now),
            Event::Reloaded(Ok(spec)) => self.new_generation(spec),
            Event::Reloaded(Err(error)) => {
                self.log(
                    Level::Error,
                    format!("reload failed, the running workers keep serving: {error}"),
                );
                self.announced = None;
                self.count(Tally::Reload {
                    generation: None,
                    outcome: ReloadOutcome::Failed,
                });
            }
            Event::ZygoteStarted { generation, pid } => self.zygote_started(generation, pid),
            Event::ZygoteStartFailed { generation, error } => {
                self.log(Level::Error, format!("cannot start the zygote: {error}"));
                self.set_zygote(generation, Zygote::Absent);
                self.back_off("zygote failed to start", now);
            }
            Event::ZygoteReady { generation } => {
                if let Some(Zygote::Starting(Some(pid))) = self.gen(generation).map(|g| g.zygote) {
                    self.set_zygote(generation, Zygote::Ready(pid));
                }
            }
            Event::Forked {
                generation,
                slot,
                pid,
            } => self.forked(generation, slot, pid, now),
            Event::ForkFailed {
                generation,
                slot,
                zygote_lost,
                error,
            } => {
                self.pending.retain(|p| *p != (generation, slot));
                self.log(Level::Error, format!("fork of a worker failed: {error}"));
                if zygote_lost {
                    self.replace_zygote(generation);
                }
                self.back_off("no worker was forked", now);
            }
            Event::Exited { pid, status } => self.exited(pid, status, now),
            Event::Booted { pid } => self.booted(pid),
            Event::SelfRetiring { pid, reason } => self.self_retiring(pid, reason, now),
            Event::Retire { pid, reason } => self.retire_for(pid, reason, now),
            Event::TimedOut(timeout) => self.timed_out(timeout, now),
            Event::ReexecStarted { pid } => self.reexec = Some(pid),
        }
    }

    fn on_signal(&mut self, signal: Signal, now: u64) {
        if signal != Signal::SIGCHLD {
            let name = signal
                .as_str()
                .trim_start_matches("SIG")
                .to_ascii_lowercase();
            self.log(Level::Info, format!("Handling signal: {name}"));
        }
        let running = self.phase == Phase::Running;
        match signal {
            Signal::SIGTERM => self.begin_stop(Signal::SIGTERM, now),
            Signal::SIGINT | Signal::SIGQUIT => self.begin_stop(Signal::SIGQUIT, now),
            Signal::SIGHUP if running => {
                self.out.push(Action::Notify(Notice::Reloading));
                self.out.push(Action::ReadConfig);
            }
            Signal::SIGTTIN if running => {
                let current = self.current_mut();
                current.target = (current.target + 1).min(current.spec.slots);
            }
            Signal::SIGTTOU if running => {
                let current = self.current_mut();
                current.target = current.target.saturating_sub(1).max(1);
            }
            Signal::SIGWINCH if running => {
                self.log(Level::Info, "graceful stop of workers".into());
                self.current_mut().target = 0;
            }
            Signal::SIGUSR1 => {
                self.out.push(Action::ReopenLogs);
                self.signal_workers(Signal::SIGUSR1);
            }
            Signal::SIGUSR2 if running => match self.reexec {
                Some(pid) => self.log(
                    Level::Warn,
                    format!("USR2 ignored: the new master (pid {pid}) is still running"),
                ),
                None => self.out.push(Action::Reexec),
            },
            _ => {}
        }
    }

    /// TERM drains, QUIT stops at once; a second one goes to the workers again (a worker that is
    /// draining stops at once on it). Either way the stop is bounded by graceful_timeout.
    pub(super) fn begin_stop(&mut self, signal: Signal, now: u64) {
        if self.phase == Phase::Running {
            let deadline_ms = now + self.current().spec.graceful_ms;
            let exit_by_ms = deadline_ms + STOP_MARGIN_MS;
            self.phase = Phase::Stopping {
                deadline_ms,
                exit_by_ms,
            };
            self.out.push(Action::Notify(Notice::Stopping));
            for id in self.generation_ids() {
                self.kill_zygote(id);
            }
        }
        self.signal_workers(signal);
    }

    fn signal_workers(&mut self, signal: Signal) {
        for pid in self.workers.pids_where(|w| w.state != WorkerState::Killed) {
            self.out.push(Action::Signal { pid, signal });
        }
    }

    /// A HUP's configuration: a new current generation beside the running ones. A generation that
    /// never booted is superseded by it and goes at once; the booted ones serve until it does.
    fn new_generation(&mut self, spec: GenSpec) {
        for id in self.generation_ids() {
            if !self.gen(id).is_some_and(|g| g.booted) {
                self.log(
                    Level::Warn,
                    format!("generation {id} never booted; the reload replaces it"),
                );
                self.abandon(id);
                self.count_reload(id, ReloadOutcome::Superseded);
            }
        }
        self.generations.push(Generation::new(spec));
        // READY=1 again once the new generation serves (RELOADING=1 was sent at the HUP).
        self.announced = None;
        self.boot_failures = 0;
        self.next_spawn_ms = 0;
    }

    /// Kills a generation's processes and forgets it.
    pub(super) fn abandon(&mut self, id: u64) {
        for pid in self.workers.pids_of(id, |w| w.state != WorkerState::Killed) {
            self.kill(pid);
        }
        self.kill_zygote(id);
        self.generations.retain(|g| g.spec.id != id);
        self.out.push(Action::DropGeneration { generation: id });
    }

    fn zygote_started(&mut self, generation: u64, pid: i32) {
        let wanted = self.phase == Phase::Running
            && self
                .gen(generation)
                .is_some_and(|g| g.zygote == Zygote::Starting(None));
        if wanted {
            self.set_zygote(generation, Zygote::Starting(Some(pid)));
        } else {
            self.dying_zygotes.push(pid);
            self.out.push(Action::KillZygote { pid });
        }
    }

    fn forked(&mut self, generation: u64, slot: usize, pid: i32, now: u64) {
        self.pending.retain(|p| *p != (generation, slot));
        self.workers.add(pid, generation, slot, now);
        if self.phase != Phase::Running || self.gen(generation).is_none() {
            self.kill(pid);
        }
    }

    fn booted(&mut self, pid: i32) {
        let Some(worker) = self.workers.get_mut(pid) else {
            return;
        };
        if worker.booted {
            return;
        }
        worker.booted = true;
        if worker.state == WorkerState::Booting {
            worker.state = WorkerState::Serving;
        }
        let id = worker.generation;
        if let Some(generation) = self.generations.iter_mut().find(|g| g.spec.id == id) {
            generation.booted = true;
        }
    }

    fn self_retiring(&mut self, pid: i32, reason: RestartReason, now: u64) {
        let Some(worker) = self.workers.get(pid).filter(|w| w.is_active()) else {
            return;
        };
        let graceful = self.graceful_ms(worker.generation);
        if let Some(worker) = self.workers.get_mut(pid) {
            worker.state = WorkerState::Retiring {
                deadline_ms: now + graceful,
            };
            worker.reason = Some(reason);
        }
    }

    /// A worker asked to go after its current requests, and be replaced (max_worker_memory,
    /// `rgunicorn ctl worker kill`).
    fn retire_for(&mut self, pid: i32, reason: RestartReason, now: u64) {
        if self.phase != Phase::Running || !self.workers.get(pid).is_some_and(|w| w.is_active()) {
            return;
        }
        let why = match reason {
            RestartReason::Memory => "its unshared memory passed max_worker_memory",
            _ => "asked to (rgunicorn ctl)",
        };
        self.log(
            Level::Warn,
            format!("Worker (pid:{pid}) retires after its current requests: {why}"),
        );
        self.retire(&[pid], reason, now);
    }

    fn timed_out(&mut self, timeout: Timeout, now: u64) {
        let pid = timeout.pid;
        let Some(worker) = self.workers.get_mut(pid) else {
            return;
        };
        if worker.abort_sent_ms.is_some() || worker.state == WorkerState::Killed {
            return;
        }
        worker.abort_sent_ms = Some(now);
        worker.reason = Some(RestartReason::Timeout);
        self.out.push(Action::ReportTimeout(timeout));
        self.count(Tally::Timeout);
        self.out.push(Action::Signal {
            pid,
            signal: Signal::SIGABRT,
        });
    }
}

impl Generation {
    fn new(spec: GenSpec) -> Self {
        Generation {
            target: spec.workers,
            spec,
            booted: false,
            complete: false,
            zygote: Zygote::Absent,
            zygote_deadline_ms: None,
        }
    }
}
