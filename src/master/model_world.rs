//! The simulated world the master's model is tested against: processes that boot, crash, hang
//! and answer late as a seeded random generator decides, with the invariants checked after every
//! step and convergence checked once the events stop. Test code only; never touches a process.
use std::collections::{BTreeMap, HashMap, HashSet};

use nix::sys::signal::Signal;

use super::events::{Action, Event, GenSpec, Notice, RestartReason, Tally};
use super::model::{Model, Phase, STOP_MARGIN_MS};
use super::workers::{Timeout, WorkerState};
use crate::process::ExitStatus;

mod checks;

pub(super) const GRACEFUL_MS: u64 = 3_000;

pub(super) fn spec(id: u64, workers: usize, zygote: bool) -> GenSpec {
    GenSpec {
        id,
        workers,
        graceful_ms: GRACEFUL_MS,
        slots: workers + 4,
        zygote,
        boot_timeout_ms: 30_000,
    }
}

/// xorshift64*: enough randomness for event sequences, reproducible from the seed.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Worker,
    Zygote,
    Reexec,
    /// A worker whose fork answer was lost: the master never knew its pid.
    Ghost,
}

/// The processes the model's actions created, and what they will do when.
pub(super) struct World {
    pub(super) model: Model,
    pub(super) rng: Rng,
    now: u64,
    next_pid: i32,
    kinds: HashMap<i32, (Kind, u64)>,
    /// Generations whose code or config cannot boot.
    broken: HashSet<u64>,
    /// Events the world will deliver, by time.
    later: BTreeMap<(u64, u64), Event>,
    seq: u64,
    reaped: HashSet<i32>,
    /// Highest state each worker pid reached, to prove no worker goes back.
    seen: HashMap<i32, WorkerState>,
    next_gen: u64,
    stop_by: Option<u64>,
    pub(super) exited: bool,
    /// The exit code, and whether any worker ever booted (a first start that never boots may
    /// stop the server with a boot error).
    exit_code: Option<i32>,
    booted_any: bool,
    /// systemd was told RELOADING=1 and has not been told READY=1 since.
    ready_owed: bool,
    /// The latest events, for failure messages.
    log: std::collections::VecDeque<(u64, Event)>,
}

impl World {
    pub(super) fn new(seed: u64, workers: usize, zygote: bool) -> Self {
        World {
            model: Model::new(spec(0, workers, zygote)),
            rng: Rng(seed.wrapping_mul(2_654_435_761).max(1)),
            now: 1_000,
            next_pid: 100,
            kinds: HashMap::new(),
            broken: HashSet::new(),
            later: BTreeMap::new(),
            seq: 0,
            reaped: HashSet::new(),
            seen: HashMap::new(),
            next_gen: 1,
            stop_by: None,
            exited: false,
            exit_code: None,
            booted_any: false,
            ready_owed: false,
            log: Default::default(),
        }
    }

    fn at(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.later.insert((self.now + delay, self.seq), event);
    }

    fn spawn(&mut self, kind: Kind, generation: u64) -> i32 {
        self.next_pid += 1;
        self.kinds.insert(self.next_pid, (kind, generation));
        self.next_pid
    }

    /// The process ends after `delay`, unless it already has an end scheduled sooner.
    pub(super) fn end(&mut self, pid: i32, delay: u64, status: ExitStatus) {
        let scheduled = self
            .later
            .values()
            .any(|e| matches!(e, Event::Exited { pid: p, .. } if *p == pid));
        if !scheduled && self.kinds.contains_key(&pid) {
            self.at(delay, Event::Exited { pid, status });
        }
    }

    fn history(&self) -> String {
        let lines = self.log.iter().map(|(at, event)| format!("{at} {event:?}"));
        lines.collect::<Vec<_>>().join("\n")
    }

    pub(super) fn step(&mut self, event: Event) {
        if let Event::Booted { .. } = event {
            self.booted_any = true;
        }
        if event != Event::Tick {
            if self.log.len() == 200 {
                self.log.pop_front();
            }
            self.log.push_back((self.now, event.clone()));
        }
        let mut exited_worker = false;
        if let Event::Exited { pid, .. } = event {
            exited_worker = self.model.workers().any(|w| w.pid == pid);
            self.kinds.remove(&pid);
            self.reaped.insert(pid);
        }
        let actions = self.model.step(event, self.now);
        self.check();
        let restarts = actions
            .iter()
            .filter(|a| matches!(a, Action::Count(Tally::Restart(_))))
            .count();
        assert!(
            restarts <= usize::from(exited_worker),
            "{restarts} restarts counted for one event\n{}",
            self.history()
        );
        for action in actions {
            self.react(action);
        }
    }

    fn react(&mut self, action: Action) {
        match action {
            Action::Notify(Notice::Reloading) => self.ready_owed = true,
            Action::Notify(Notice::Ready(_)) => self.ready_owed = false,
            Action::Log(..)
            | Action::ReportTimeout { .. }
            | Action::Count(_)
            | Action::Notify(_)
            | Action::ReopenLogs
            | Action::DropGeneration { .. } => {}
            Action::ReexecEnded { .. } => {}
            Action::ReadConfig => self.read_config(),
            Action::StartZygote { generation } => {
                let pid = self.spawn(Kind::Zygote, generation);
                self.step(Event::ZygoteStarted { generation, pid });
                if self.broken.contains(&generation) {
                    self.end(pid, 30, ExitStatus::Code(4));
                } else if !self.rng.chance(3) {
                    self.at(30, Event::ZygoteReady { generation });
                }
                // else it hangs importing the app: neither ready nor gone until it is killed.
            }
            Action::Fork { generation, slot } => self.fork(generation, slot),
            Action::Signal { pid, signal } => self.signalled(pid, signal),
            Action::Kill { pid } | Action::KillZygote { pid } => {
                self.end(pid, 1, ExitStatus::Signal(9))
            }
            Action::Reexec => {
                let pid = self.spawn(Kind::Reexec, 0);
                self.step(Event::ReexecStarted { pid });
                let delay = 100 + self.rng.below(3_000);
                self.end(pid, delay, ExitStatus::Code(0));
            }
            Action::Exit { code } => {
                self.exited = true;
                self.exit_code = Some(code);
            }
        }
    }

    fn read_config(&mut self) {
        let roll = self.rng.below(10);
        if roll < 2 {
            return self.step(Event::Reloaded(Err("bad value".into())));
        }
        let id = self.next_gen;
        self.next_gen += 1;
        if roll < 5 {
            self.broken.insert(id);
        }
        let workers = 1 + self.rng.below(3) as usize;
        let zygote = self.model.current().spec.zygote;
        self.step(Event::Reloaded(Ok(spec(id, workers, zygote))));
    }

    fn fork(&mut self, generation: u64, slot: usize) {
        let roll = self.rng.below(100);
        if roll < 4 {
            let ghost = self.spawn(Kind::Ghost, generation);
            self.end(ghost, 1_000, ExitStatus::Code(0));
            let error = "no answer".into();
            return self.step(Event::ForkFailed {
                generation,
                slot,
                zygote_lost: true,
                error,
            });
        }
        if roll < 6 {
            let error = "EAGAIN".into();
            return self.step(Event::ForkFailed {
                generation,
                slot,
                zygote_lost: false,
                error,
            });
        }
        let pid = self.spawn(Kind::Worker, generation);
        self.step(Event::Forked {
            generation,
            slot,
            pid,
        });
        let broken = self.broken.contains(&generation) && !self.model.current().spec.zygote;
        if broken || roll < 8 {
            let status = if broken {
                ExitStatus::Code(4)
            } else {
                ExitStatus::Signal(11)
            };
            self.end(pid, 20, status);
        } else {
            let delay = 5 + self.rng.below(50);
            self.at(delay, Event::Booted { pid });
        }
    }

    fn signalled(&mut self, pid: i32, signal: Signal) {
        let hangs = self.rng.chance(15);
        let status = match signal {
            Signal::SIGTERM | Signal::SIGUSR2 | Signal::SIGQUIT => ExitStatus::Code(0),
            Signal::SIGABRT => ExitStatus::Signal(6),
            _ => return,
        };
        if !hangs {
            let delay = self.rng.below(GRACEFUL_MS * 3 / 2);
            self.end(pid, delay, status);
        }
    }

    /// What the outside world does at random: signals, crashes, kills, timeouts, max_requests.
    pub(super) fn poke(&mut self) {
        let workers: Vec<i32> = self
            .model
            .workers()
            .filter(|w| w.is_active())
            .map(|w| w.pid)
            .collect();
        let any = |rng: &mut Rng| {
            workers
                .get(rng.below(workers.len() as u64) as usize)
                .copied()
        };
        let signals = [
            Signal::SIGHUP,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGUSR1,
        ];
        match self.rng.below(100) {
            0..=24 => {
                let signal = signals[self.rng.below(signals.len() as u64) as usize];
                self.step(Event::Signal(signal));
            }
            25..=34 => {
                if let Some(pid) = any(&mut self.rng) {
                    self.end(pid, 0, ExitStatus::Signal(11));
                }
            }
            35..=39 => {
                let zygote = self
                    .model
                    .generations
                    .iter()
                    .filter_map(|g| g.zygote.pid())
                    .next();
                if let Some(pid) = zygote {
                    self.end(pid, 0, ExitStatus::Signal(9));
                }
            }
            40..=49 => {
                if let Some(pid) = any(&mut self.rng) {
                    let reason = RestartReason::MaxRequests;
                    self.step(Event::SelfRetiring { pid, reason });
                    let delay = self.rng.below(GRACEFUL_MS * 2);
                    self.end(pid, delay, ExitStatus::Code(0));
                }
            }
            50..=54 => {
                if let Some(pid) = any(&mut self.rng) {
                    self.step(Event::TimedOut(Timeout {
                        pid,
                        reason: "request ran too long".into(),
                        request: None,
                        thread: None,
                        elapsed_ms: 0,
                    }));
                }
            }
            55 => self.stop(Signal::SIGTERM),
            57..=59 => {
                if let Some(pid) = any(&mut self.rng) {
                    let reason = RestartReason::Memory;
                    self.step(Event::Retire { pid, reason });
                }
            }
            56 => self.stop(Signal::SIGINT),
            _ => {}
        }
    }

    pub(super) fn stop(&mut self, signal: Signal) {
        if self.stop_by.is_none() && self.model.phase == Phase::Running {
            let graceful = self.model.current().spec.graceful_ms;
            self.stop_by = Some(self.now + graceful + STOP_MARGIN_MS);
        }
        self.step(Event::Signal(signal));
    }

    /// Time moves on by `ms`, delivering what falls due and a tick at least every 100 ms.
    pub(super) fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end && !self.exited {
            let due = self.later.keys().next().copied().filter(|(t, _)| *t <= end);
            match due {
                Some(key) if key.0 <= self.now + 100 => {
                    let event = self.later.remove(&key).expect("due");
                    self.now = self.now.max(key.0);
                    self.step(event);
                }
                _ => {
                    self.now = (self.now + 100).min(end);
                    self.step(Event::Tick);
                }
            }
        }
    }
}
