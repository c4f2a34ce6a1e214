//! Tests of the master's model: seeded random event sequences against the simulated world of
//! `model_world.rs`, and named regression tests, each the shrunk sequence of a failure that the
//! random sequences or the binary found. Never touches a real process.
use nix::sys::signal::Signal;

use super::events::{Action, Event, RestartReason};
use super::model::{Model, STOP_MARGIN_MS};
use super::model_world::{spec, World, GRACEFUL_MS};
use super::workers::WorkerState;
use crate::process::ExitStatus;

fn run_sequence(seed: u64, zygote: bool) {
    let mut world = World::new(seed, 1 + (seed % 3) as usize, zygote);
    world.advance(500);
    let steps = 20 + world.rng.below(60);
    for _ in 0..steps {
        if world.exited {
            break;
        }
        world.poke();
        let pause = world.rng.below(400);
        world.advance(pause);
    }
    world.assert_converged(seed);
}

#[test]
fn random_sequences_keep_the_invariants_and_converge() {
    let runs: u64 = std::env::var("RGUNICORN_MODEL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for seed in 1..=runs {
        run_sequence(seed, seed % 4 != 0);
    }
}

#[test]
fn a_stale_answer_cannot_become_a_ghost_that_blocks_the_stop() {
    // Issue 12, defect 1: a worker that exits before the master hears of it must never be
    // tracked, and TERM must end in an exit.
    let mut world = World::new(7, 2, true);
    world.advance(300);
    for pid in world.model.workers().map(|w| w.pid).collect::<Vec<_>>() {
        world.step(Event::SelfRetiring {
            pid,
            reason: RestartReason::MaxRequests,
        });
        world.end(pid, 0, ExitStatus::Code(0));
    }
    world.advance(300);
    world.stop(Signal::SIGTERM);
    world.advance(GRACEFUL_MS + STOP_MARGIN_MS + 200);
    assert!(world.exited);
}

#[test]
fn a_broken_deploy_falls_back_to_the_newest_generation_that_booted() {
    // Issue 12, defect 2: v2 boots while v1 still serves; a HUP to broken v3 must leave v2 alone.
    let mut model = Model::new(spec(0, 2, false));
    let mut now = 0;
    let mut pid = 10;
    let boot = |model: &mut Model, generation: u64, now: u64, pid: &mut i32| {
        for action in model.step(Event::Tick, now) {
            if let Action::Fork {
                generation: g,
                slot,
            } = action
            {
                assert_eq!(g, generation);
                *pid += 1;
                model.step(
                    Event::Forked {
                        generation: g,
                        slot,
                        pid: *pid,
                    },
                    now,
                );
                model.step(Event::Booted { pid: *pid }, now);
            }
        }
    };
    boot(&mut model, 0, now, &mut pid);
    now += 100;
    let forks = only_forks(model.step(Event::Reloaded(Ok(spec(1, 2, false))), now));
    assert_eq!(forks.len(), 2);
    for (i, fork) in forks.into_iter().enumerate() {
        let Action::Fork { slot, .. } = fork else {
            unreachable!()
        };
        model.step(
            Event::Forked {
                generation: 1,
                slot,
                pid: 50 + i as i32,
            },
            now,
        );
    }
    model.step(Event::Booted { pid: 50 }, now);
    assert!(model
        .workers()
        .filter(|w| w.generation == 0)
        .all(|w| w.state == WorkerState::Serving));
    let forks = only_forks(model.step(Event::Reloaded(Ok(spec(2, 2, false))), now));
    let Action::Fork { slot, .. } = forks[0] else {
        unreachable!()
    };
    model.step(
        Event::Forked {
            generation: 2,
            slot,
            pid: 60,
        },
        now,
    );
    model.step(
        Event::Exited {
            pid: 60,
            status: ExitStatus::Code(4),
        },
        now,
    );
    assert_eq!(model.current().spec.id, 1, "v2 is the newest that booted");
    now += 100;
    model.step(Event::Booted { pid: 51 }, now);
    boot(&mut model, 1, now, &mut pid);
    let old: Vec<_> = model.workers().filter(|w| w.generation == 0).collect();
    assert!(
        old.iter()
            .all(|w| matches!(w.state, WorkerState::Retiring { .. })),
        "v1 retires: {old:?}"
    );
}

fn only_forks(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| matches!(a, Action::Fork { .. }))
        .collect()
}

/// A model driven by hand, one event at a time; every fork is answered at once with a new pid.
struct Script {
    model: Model,
    now: u64,
    next_pid: i32,
    seen: Vec<Action>,
}

impl Script {
    fn new(workers: usize) -> Self {
        let mut script = Script {
            model: Model::new(spec(0, workers, false)),
            now: 1_000,
            next_pid: 100,
            seen: Vec::new(),
        };
        script.step(Event::Tick);
        script
    }

    fn step(&mut self, event: Event) {
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for action in self.model.step(event, self.now) {
                if let Action::Fork { generation, slot } = action {
                    self.next_pid += 1;
                    queue.push_back(Event::Forked {
                        generation,
                        slot,
                        pid: self.next_pid,
                    });
                }
                self.seen.push(action);
            }
        }
    }

    /// Actions since the last call.
    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.seen)
    }

    fn pids(&self, generation: u64, state: fn(&WorkerState) -> bool) -> Vec<i32> {
        let workers = self.model.workers();
        let of = workers.filter(|w| w.generation == generation && state(&w.state));
        of.map(|w| w.pid).collect()
    }

    fn boot(&mut self, generation: u64) {
        for pid in self.pids(generation, |s| *s == WorkerState::Booting) {
            self.step(Event::Booted { pid });
        }
    }

    fn exit(&mut self, pid: i32, status: ExitStatus) {
        self.step(Event::Exited { pid, status });
    }

    fn reload(&mut self, id: u64, workers: usize) {
        self.step(Event::Signal(Signal::SIGHUP));
        self.step(Event::Reloaded(Ok(spec(id, workers, false))));
    }

    fn logged(actions: &[Action], text: &str) -> bool {
        actions
            .iter()
            .any(|a| matches!(a, Action::Log(_, line) if line.contains(text)))
    }
}

fn retiring(state: &WorkerState) -> bool {
    matches!(state, WorkerState::Retiring { .. })
}

/// WINCH takes the only worker of a booted generation; then a reload's worker fails to import.
fn broken_reload_after_winch() -> (Script, Vec<Action>) {
    let mut script = Script::new(1);
    script.boot(0);
    script.step(Event::Signal(Signal::SIGWINCH));
    let [pid] = script.pids(0, retiring)[..] else {
        panic!("WINCH retires the worker")
    };
    script.exit(pid, ExitStatus::Code(0));
    script.reload(1, 1);
    let [new] = script.pids(1, |_| true)[..] else {
        panic!("the reload forks a worker")
    };
    script.take();
    script.exit(new, ExitStatus::Code(4));
    let actions = script.take();
    (script, actions)
}

#[test]
fn a_booted_generation_with_no_workers_is_still_the_fallback() {
    // Found by the random sequences: after WINCH the booted generation had no process left and
    // was dropped, so a HUP to broken code stopped the server instead of falling back.
    let (script, actions) = broken_reload_after_winch();
    assert!(!actions.iter().any(|a| matches!(a, Action::Exit { .. })));
    assert!(Script::logged(
        &actions,
        "the previous workers keep serving"
    ));
    assert_eq!(script.model.current().spec.id, 0);
}

#[test]
fn a_worker_retired_before_it_booted_still_fails_its_generation() {
    // Found by the random sequences: TTOU retired a worker of a reload to broken code before it
    // booted; its exit (code 4) was taken for a retirement, not for the failed boot it was.
    let mut script = Script::new(1);
    script.boot(0);
    script.reload(1, 2);
    script.step(Event::Signal(Signal::SIGTTOU));
    let [retired] = script.pids(1, retiring)[..] else {
        panic!("TTOU retires one of the booting workers")
    };
    script.take();
    script.exit(retired, ExitStatus::Code(4));
    let actions = script.take();
    assert!(Script::logged(
        &actions,
        "the previous workers keep serving"
    ));
    assert_eq!(script.model.current().spec.id, 0);
}

#[test]
fn a_worker_that_booted_and_retired_between_two_looks_is_no_failed_boot() {
    // Found by the random sequences: a worker that booted, reached max_requests and exited
    // between two looks of the master was counted as a failed boot and slowed the respawns.
    let mut script = Script::new(1);
    let [pid] = script.pids(0, |_| true)[..] else {
        panic!("one worker")
    };
    script.step(Event::SelfRetiring {
        pid,
        reason: RestartReason::MaxRequests,
    });
    script.step(Event::Booted { pid });
    script.take();
    script.exit(pid, ExitStatus::Code(0));
    let actions = script.take();
    assert!(!Script::logged(&actions, "failed to boot"), "{actions:?}");
    assert_eq!(script.model.boot_failures, 0, "no back-off");
    assert_eq!(
        script.pids(0, |_| true).len(),
        1,
        "replaced when it retired"
    );
}

#[test]
fn a_reload_owes_systemd_ready_again() {
    // Found by CI (test_systemd): RELOADING=1 was never followed by READY=1.
    let mut script = Script::new(1);
    script.boot(0);
    script.take();
    script.reload(1, 1);
    let ready = |a: &Action| matches!(a, Action::Notify(super::events::Notice::Ready(_)));
    assert!(
        !script.take().iter().any(ready),
        "not before the new workers serve"
    );
    script.boot(1);
    assert!(script.take().iter().any(ready));
}

#[test]
fn a_failed_reload_with_no_workers_still_answers_ready() {
    // Found by the random sequences (seed 28): after WINCH, a reload to broken code fell back
    // to a generation with no workers and READY=1 waited for a worker that never came.
    let (_, actions) = broken_reload_after_winch();
    let ready = |a: &Action| matches!(a, Action::Notify(super::events::Notice::Ready(_)));
    assert!(actions.iter().any(ready), "{actions:?}");
}

#[test]
fn a_reload_completes_when_no_old_worker_is_left() {
    // Found by the chaos test: the old workers all reached max_requests before the new ones
    // booted, and the reload was never reported complete.
    let mut script = Script::new(1);
    script.boot(0);
    let [old] = script.pids(0, |_| true)[..] else {
        panic!("one worker")
    };
    script.reload(1, 1);
    script.step(Event::SelfRetiring {
        pid: old,
        reason: RestartReason::MaxRequests,
    });
    script.exit(old, ExitStatus::Code(0));
    script.take();
    script.boot(1);
    let actions = script.take();
    assert!(Script::logged(
        &actions,
        "reload complete; retiring 0 old workers"
    ));
    assert!(script.model.current().complete);
}

#[test]
fn a_zygote_that_hangs_importing_the_app_is_killed_at_the_timeout() {
    // Found while merging issue 13: the master killed a zygote that closed its link, racing the
    // zygote's own exit code; the link's end of file is now left to the exit, and a zygote that
    // neither gets ready nor exits is killed once `timeout` passed.
    let mut model = Model::new(spec(0, 1, true));
    let started = model.step(Event::Tick, 0);
    assert!(started.contains(&Action::StartZygote { generation: 0 }));
    model.step(
        Event::ZygoteStarted {
            generation: 0,
            pid: 7,
        },
        0,
    );
    assert_eq!(model.next_wake(1), Some(30_000), "the start deadline");
    assert!(!model
        .step(Event::Tick, 29_999)
        .contains(&Action::KillZygote { pid: 7 }));
    let expired = model.step(Event::Tick, 30_000);
    assert!(
        expired.contains(&Action::KillZygote { pid: 7 }),
        "{expired:?}"
    );
    model.step(
        Event::Exited {
            pid: 7,
            status: ExitStatus::Signal(9),
        },
        30_001,
    );
    let retried = model.step(Event::Tick, 40_000);
    assert!(retried.contains(&Action::StartZygote { generation: 0 }));
}
