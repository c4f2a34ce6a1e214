//! Tests of what the model counts (`Action::Count`): restarts by reason, timeouts, boot failures
//! and reloads by outcome, each counted once, and nothing counted while stopping. Test code only.
use nix::sys::signal::Signal;

use super::events::{Action, Event, GenSpec, ReloadOutcome, RestartReason, Tally};
use super::model::Model;
use super::workers::Timeout;
use crate::process::ExitStatus;

fn spec(id: u64, workers: usize) -> GenSpec {
    GenSpec {
        id,
        workers,
        graceful_ms: 1_000,
        slots: workers + 4,
        zygote: false,
        boot_timeout_ms: 30_000,
    }
}

/// A model and a clock, with every tally it has made so far.
struct Run {
    model: Model,
    now: u64,
    next_pid: i32,
    tallies: Vec<Tally>,
}

impl Run {
    fn new(workers: usize) -> Run {
        let mut run = Run {
            model: Model::new(spec(0, workers)),
            now: 10_000,
            next_pid: 100,
            tallies: Vec::new(),
        };
        run.step(Event::Tick);
        run
    }

    /// Feeds `event`; forks are answered and the new workers boot at once.
    fn step(&mut self, event: Event) -> Vec<Action> {
        let actions = self.model.step(event, self.now);
        for action in &actions {
            match action {
                Action::Count(tally) => self.tallies.push(*tally),
                Action::Fork { generation, slot } => {
                    self.next_pid += 1;
                    let (generation, slot, pid) = (*generation, *slot, self.next_pid);
                    self.step(Event::Forked {
                        generation,
                        slot,
                        pid,
                    });
                    self.step(Event::Booted { pid });
                }
                _ => {}
            }
        }
        actions
    }

    fn exit(&mut self, pid: i32, status: ExitStatus) {
        self.now += 6_000;
        self.step(Event::Exited { pid, status });
    }

    fn pids(&self) -> Vec<i32> {
        self.model.workers().map(|w| w.pid).collect()
    }

    fn take(&mut self) -> Vec<Tally> {
        std::mem::take(&mut self.tallies)
    }
}

#[test]
fn each_exit_counts_under_its_reason() {
    let mut run = Run::new(3);
    let [a, b, c] = run.pids()[..] else { panic!() };
    run.exit(a, ExitStatus::Signal(11));
    assert_eq!(run.take(), [Tally::Restart(RestartReason::Crash)]);
    let reason = RestartReason::MaxRequests;
    run.step(Event::SelfRetiring { pid: b, reason });
    run.exit(b, ExitStatus::Code(0));
    assert_eq!(run.take(), [Tally::Restart(reason)]);
    let timeout = Timeout {
        pid: c,
        reason: "GET /slow".into(),
        request: Some("GET /slow".into()),
        thread: Some(0),
        elapsed_ms: 31_000,
    };
    let actions = run.step(Event::TimedOut(timeout.clone()));
    assert!(actions.contains(&Action::ReportTimeout(timeout)));
    assert_eq!(run.take(), [Tally::Timeout]);
    run.exit(c, ExitStatus::Signal(6));
    assert_eq!(run.take(), [Tally::Restart(RestartReason::Timeout)]);
    run.step(Event::Signal(Signal::SIGTTOU));
    let [victim] = run.pids()[..1] else { panic!() };
    run.exit(victim, ExitStatus::Code(0));
    assert_eq!(run.take(), [Tally::Restart(RestartReason::ScaleDown)]);
}

#[test]
fn a_worker_over_its_memory_retires_and_restarts_for_it() {
    let mut run = Run::new(2);
    let [a, _] = run.pids()[..] else { panic!() };
    let reason = RestartReason::Memory;
    let actions = run.step(Event::Retire { pid: a, reason });
    let retire = Action::Signal {
        pid: a,
        signal: Signal::SIGUSR2,
    };
    assert!(actions.contains(&retire), "{actions:?}");
    assert_eq!(
        run.model.workers().filter(|w| w.is_active()).count(),
        2,
        "replaced at once"
    );
    assert!(
        run.step(Event::Retire { pid: a, reason }).is_empty(),
        "asked once"
    );
    run.exit(a, ExitStatus::Code(0));
    assert_eq!(run.take(), [Tally::Restart(reason)]);
}

#[test]
fn a_reload_succeeds_once_and_its_old_workers_restart_for_it() {
    let mut run = Run::new(2);
    let old = run.pids();
    run.step(Event::Reloaded(Ok(spec(1, 2))));
    let success = Tally::Reload {
        generation: Some(1),
        outcome: ReloadOutcome::Success,
    };
    assert_eq!(run.take(), [success]);
    for pid in old {
        run.exit(pid, ExitStatus::Code(0));
    }
    run.step(Event::Tick);
    let reload = Tally::Restart(RestartReason::Reload);
    assert_eq!(run.take(), [reload, reload]);
}

#[test]
fn failed_reloads_say_why() {
    let mut run = Run::new(1);
    run.step(Event::Reloaded(Err("bad value".into())));
    let unreadable = Tally::Reload {
        generation: None,
        outcome: ReloadOutcome::Failed,
    };
    assert_eq!(run.take(), [unreadable]);
    let actions = run.model.step(Event::Reloaded(Ok(spec(1, 1))), run.now);
    let Some(Action::Fork { slot, .. }) = actions
        .into_iter()
        .find(|a| matches!(a, Action::Fork { .. }))
    else {
        panic!("the new generation forks")
    };
    run.model.step(
        Event::Forked {
            generation: 1,
            slot,
            pid: 500,
        },
        run.now,
    );
    run.exit(500, ExitStatus::Code(crate::error::APP_LOAD_ERROR));
    let failed = Tally::Reload {
        generation: Some(1),
        outcome: ReloadOutcome::Failed,
    };
    assert_eq!(run.take(), [Tally::BootFailure, failed]);
}

#[test]
fn nothing_restarts_while_stopping() {
    let mut run = Run::new(2);
    run.step(Event::Signal(Signal::SIGTERM));
    for pid in run.pids() {
        run.exit(pid, ExitStatus::Code(0));
    }
    assert_eq!(run.take(), []);
}
