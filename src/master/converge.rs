//! The model's duties between events: kill what is past its deadline, finish a reload once the
//! new generation serves, retire the excess, fork what is missing, tell systemd, and end a stop.
//! Also the small helpers; the invariants are in `invariants.rs`. Pure, like `model.rs`.
use nix::sys::signal::Signal;

use super::events::{Action, Level, Notice, ReloadOutcome, RestartReason, Tally};
use super::model::{Generation, Model, Phase, Zygote, EARLY_DEATH_MS};
use super::workers::WorkerState;

/// A worker sent SIGABRT for a timeout gets this long to dump its traceback before SIGKILL.
pub const ABORT_GRACE_MS: u64 = 1_000;

impl Model {
    pub(super) fn converge(&mut self, now: u64) {
        self.kill_overdue(now);
        match self.phase {
            Phase::Running => {
                self.expire_zygote_starts(now);
                self.finish_reload(now);
                self.drop_finished_generations();
                self.retire_excess(now);
                if self
                    .workers
                    .iter()
                    .any(|w| now.saturating_sub(w.spawned_ms) >= EARLY_DEATH_MS)
                {
                    self.boot_failures = 0;
                }
                self.top_up(now);
                self.announce();
            }
            Phase::Stopping {
                deadline_ms,
                exit_by_ms,
            } => self.converge_stop(now, deadline_ms, exit_by_ms),
            Phase::Exited => {}
        }
    }

    /// Once the current generation has all its workers serving, the reload is complete: every
    /// older worker retires (there may be none left: max_requests or crashes took them), now
    /// and whenever one still shows up (a fork answered after the HUP).
    fn finish_reload(&mut self, now: u64) {
        let current = self.current();
        let id = current.spec.id;
        let serving = self
            .workers
            .pids_of(id, |w| w.state == WorkerState::Serving)
            .len();
        let completes = !current.complete && serving >= current.target;
        if !current.complete && !completes {
            return;
        }
        let old = self
            .workers
            .pids_where(|w| w.generation < id && w.is_active());
        if completes {
            self.current_mut().complete = true;
            self.count(Tally::Reload {
                generation: Some(id),
                outcome: ReloadOutcome::Success,
            });
            self.log(
                Level::Info,
                format!("reload complete; retiring {} old workers", old.len()),
            );
            for generation in self.generation_ids().into_iter().filter(|g| *g < id) {
                self.kill_zygote(generation);
            }
        }
        self.retire(&old, RestartReason::Reload, now);
    }

    /// Older generations go once their last process is gone, except the newest one that booted
    /// while the current one has not: a failed reload falls back to it, even with no workers.
    fn drop_finished_generations(&mut self) {
        let current = self.current().spec.id;
        let fallback = match self.current().booted {
            true => None,
            false => self
                .generations
                .iter()
                .rev()
                .find(|g| g.booted)
                .map(|g| g.spec.id),
        };
        let finished: Vec<u64> = (self.generations.iter())
            .map(|g| g.spec.id)
            .filter(|id| *id != current && Some(*id) != fallback)
            .filter(|id| self.workers.pids_of(*id, |_| true).is_empty())
            .filter(|id| !self.pending.iter().any(|(g, _)| g == id))
            .collect();
        for id in finished {
            self.kill_zygote(id);
            self.generations.retain(|g| g.spec.id != id);
            self.out.push(Action::DropGeneration { generation: id });
        }
    }

    fn retire_excess(&mut self, now: u64) {
        let current = self.current();
        let pending = self.pending_of(current.spec.id);
        let target = current.target.saturating_sub(pending);
        let excess = self.workers.excess(current.spec.id, target);
        self.retire(&excess, RestartReason::ScaleDown, now);
    }

    /// Asks workers to finish their requests and exit (USR2: "retire", leaving the listen queue
    /// to the workers that stay), SIGKILL at graceful_timeout.
    pub(super) fn retire(&mut self, pids: &[i32], reason: RestartReason, now: u64) {
        for &pid in pids {
            let Some(generation) = self.workers.get(pid).map(|w| w.generation) else {
                continue;
            };
            let deadline_ms = now + self.graceful_ms(generation);
            if let Some(worker) = self.workers.get_mut(pid) {
                worker.state = WorkerState::Retiring { deadline_ms };
                worker.reason = Some(reason);
            }
            self.out.push(Action::Signal {
                pid,
                signal: Signal::SIGUSR2,
            });
        }
    }

    /// Forks what the current generation lacks: one at a time while boots are failing.
    fn top_up(&mut self, now: u64) {
        let current = self.current();
        let id = current.spec.id;
        let pending = self.pending_of(id);
        let missing = current
            .target
            .saturating_sub(self.workers.active(id) + pending);
        if missing == 0 || now < self.next_spawn_ms || (self.boot_failures > 0 && pending > 0) {
            return;
        }
        if current.spec.zygote {
            match current.zygote {
                Zygote::Ready(_) => {}
                Zygote::Starting(_) => return,
                Zygote::Absent => return self.start_zygote(id, now),
            }
        }
        let forks = if self.boot_failures > 0 { 1 } else { missing };
        for _ in 0..forks {
            let Some(slot) = self.free_slot(id) else {
                return;
            };
            self.pending.push((id, slot));
            self.out.push(Action::Fork {
                generation: id,
                slot,
            });
        }
    }

    /// READY=1 once the workers serve (again, after a reload), STATUS= when their number changes.
    fn announce(&mut self) {
        let id = self.current().spec.id;
        let settled = !self
            .workers
            .iter()
            .any(|w| w.generation != id && w.is_active());
        if !settled {
            return;
        }
        let serving = self
            .workers
            .pids_of(id, |w| w.state == WorkerState::Serving)
            .len();
        let notice = match self.announced {
            None if serving >= self.current().target => Notice::Ready(format!("{serving} workers")),
            Some(previous) if previous != serving => Notice::Status(format!("{serving} workers")),
            _ => return,
        };
        self.out.push(Action::Notify(notice));
        self.announced = Some(serving);
    }

    fn converge_stop(&mut self, now: u64, deadline_ms: u64, exit_by_ms: u64) {
        if now >= deadline_ms {
            let left = self.workers.pids_where(|w| w.state != WorkerState::Killed);
            if !left.is_empty() {
                self.log(
                    Level::Warn,
                    format!("graceful_timeout passed; killing workers {left:?}"),
                );
            }
            for pid in left {
                self.kill(pid);
            }
        }
        let zygotes = self.generations.iter().any(|g| g.zygote != Zygote::Absent);
        let done = self.workers.is_empty()
            && self.dying_zygotes.is_empty()
            && !zygotes
            && self.pending.is_empty();
        if !done && now < exit_by_ms {
            return;
        }
        if !done {
            let left: Vec<i32> = self.workers.pids_where(|_| true);
            self.log(
                Level::Error,
                format!(
                    "exiting with children not reaped: workers {left:?}, zygotes {:?}",
                    self.dying_zygotes
                ),
            );
        }
        self.phase = Phase::Exited;
        self.out.push(Action::Exit {
            code: self.exit_code,
        });
    }

    // --- small helpers ---------------------------------------------------------------------

    pub(super) fn gen(&self, id: u64) -> Option<&Generation> {
        self.generations.iter().find(|g| g.spec.id == id)
    }

    pub(super) fn current_mut(&mut self) -> &mut Generation {
        self.generations.last_mut().expect("a current generation")
    }

    pub(super) fn generation_ids(&self) -> Vec<u64> {
        self.generations.iter().map(|g| g.spec.id).collect()
    }

    pub(super) fn set_zygote(&mut self, id: u64, zygote: Zygote) {
        if let Some(generation) = self.generations.iter_mut().find(|g| g.spec.id == id) {
            generation.zygote = zygote;
            if !matches!(zygote, Zygote::Starting(_)) {
                generation.zygote_deadline_ms = None;
            }
        }
    }

    /// Whether `pid` is a zygote the master still expects to exit or to answer.
    pub fn has_zygote(&self, pid: i32) -> bool {
        self.zygote_generation(pid).is_some() || self.dying_zygotes.contains(&pid)
    }

    pub(super) fn zygote_generation(&self, pid: i32) -> Option<u64> {
        let generation = self
            .generations
            .iter()
            .find(|g| g.zygote.pid() == Some(pid))?;
        Some(generation.spec.id)
    }

    /// SIGKILL for the generation's zygote, if it has one; its exit is then expected.
    pub(super) fn kill_zygote(&mut self, id: u64) {
        let Some(zygote) = self.gen(id).map(|g| g.zygote) else {
            return;
        };
        self.set_zygote(id, Zygote::Absent);
        if let Some(pid) = zygote.pid() {
            self.dying_zygotes.push(pid);
            self.out.push(Action::KillZygote { pid });
        }
    }

    /// A zygote whose answer was lost cannot be trusted with the next request.
    pub(super) fn replace_zygote(&mut self, id: u64) {
        self.log(
            Level::Warn,
            format!("the zygote of generation {id} did not answer; replacing it"),
        );
        self.kill_zygote(id);
    }

    /// SIGKILL on purpose: the exit is then not taken for a crash or a failed boot.
    pub(super) fn kill(&mut self, pid: i32) {
        if let Some(worker) = self.workers.get_mut(pid) {
            worker.state = WorkerState::Killed;
        }
        self.out.push(Action::Kill { pid });
    }

    pub(super) fn log(&mut self, level: Level, message: String) {
        self.out.push(Action::Log(level, message));
    }

    pub(super) fn count(&mut self, tally: Tally) {
        self.out.push(Action::Count(tally));
    }

    /// The outcome of the reload that made generation `id`; generation 0 is the start, no reload.
    pub(super) fn count_reload(&mut self, id: u64, outcome: ReloadOutcome) {
        if id > 0 {
            self.count(Tally::Reload {
                generation: Some(id),
                outcome,
            });
        }
    }

    pub(super) fn graceful_ms(&self, generation: u64) -> u64 {
        let spec = self.gen(generation).map(|g| &g.spec);
        spec.unwrap_or(&self.current().spec).graceful_ms
    }

    fn pending_of(&self, id: u64) -> usize {
        self.pending.iter().filter(|(g, _)| *g == id).count()
    }

    fn free_slot(&self, id: u64) -> Option<usize> {
        let slots = self.gen(id)?.spec.slots;
        let taken = |slot| self.workers.holds(id, slot) || self.pending.contains(&(id, slot));
        (0..slots).find(|slot| !taken(*slot))
    }
}
