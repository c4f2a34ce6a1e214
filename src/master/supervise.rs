//! The master's periodic duties: reap exited workers, finish or abandon a reload, kill workers
//! that ran past their timeout or their graceful deadline, and keep the worker count on target.
use nix::sys::signal::Signal;

use super::workers::{find_timeout, respawn_delay_ms};
use super::{Arbiter, Phase};
use crate::process::{self, monotonic_ms, ExitStatus};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};

/// A worker that dies sooner than this after its fork counts towards a crash loop.
const EARLY_DEATH_MS: u64 = 5_000;

/// A worker sent SIGABRT for a timeout gets this long to dump its traceback before SIGKILL.
const ABORT_GRACE_MS: u64 = 1000;

impl Arbiter {
    pub(super) fn reap_workers(&mut self) {
        for (pid, status) in process::reap_children() {
            if Some(pid) == self.reexec_pid {
                self.reexec_ended(status);
                continue;
            }
            if let Some((generation, before_ready)) = self.zygote_exited(pid) {
                log_exit(pid, status, false);
                if before_ready && matches!(self.phase, Phase::Running) {
                    self.boot_failed(generation, status);
                }
                continue;
            }
            let Some(worker) = self.workers.remove(pid) else {
                continue;
            };
            log_exit(pid, status, worker.killed);
            let Some(generation) = self
                .generations
                .iter_mut()
                .find(|g| g.id == worker.generation)
            else {
                continue;
            };
            let booted = generation.heartbeats.slot(worker.slot, 0).booted();
            generation.booted |= booted;
            if worker.killed || !matches!(self.phase, Phase::Running) {
                continue;
            }
            let early = monotonic_ms().saturating_sub(worker.spawned_ms) < EARLY_DEATH_MS;
            if !booted {
                self.boot_failed(worker.generation, status);
            } else if early && status != ExitStatus::Code(0) {
                self.back_off("worker died right after it booted");
            }
        }
        self.drop_empty_generations();
    }

    /// A worker died before it could serve: at first start that stops the server with gunicorn's
    /// exit code; after a reload the new generation is abandoned and the old one keeps serving;
    /// otherwise respawns back off.
    fn boot_failed(&mut self, generation: u64, status: ExitStatus) {
        let boot_code = match status {
            ExitStatus::Code(code @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR)) => Some(code),
            _ => None,
        };
        let never_booted = self.generation(generation).is_some_and(|g| !g.booted);
        if let (Some(code), true) = (boot_code, never_booted) {
            if self.generations.len() == 1 {
                let reason = if code == APP_LOAD_ERROR {
                    "App failed to load."
                } else {
                    "Worker failed to boot."
                };
                tracing::error!("Reason: {reason}");
                self.exit_code = code;
                return self.stop(Signal::SIGTERM);
            }
            if generation == self.current().id {
                return self.abandon_reload();
            }
        }
        self.back_off("worker failed to boot");
    }

    /// Crash loops fork more slowly each time, until a worker stays up for EARLY_DEATH_MS.
    fn back_off(&mut self, what: &str) {
        self.boot_failures += 1;
        let delay = respawn_delay_ms(self.boot_failures);
        tracing::warn!("{what}; next attempt in {delay} ms");
        self.next_spawn_ms = monotonic_ms() + delay;
    }

    /// READY=1 once the workers serve (again, after a reload), STATUS= when their number
    /// changes, and the watchdog ping when it is due.
    pub(super) fn tell_systemd(&mut self) {
        let now = monotonic_ms();
        if let Some(interval) = self.notifier.watchdog_interval() {
            if now >= self.next_watchdog_ms {
                self.notifier.watchdog();
                self.next_watchdog_ms = now + interval.as_millis() as u64;
            }
        }
        if !matches!(self.phase, Phase::Running) || self.reloading {
            return;
        }
        let booted = self.booted_workers();
        match self.announced_workers {
            None if booted >= self.target.max(1) => {
                self.notifier.ready(&format!("{booted} workers"))
            }
            Some(previous) if previous != booted => {
                self.notifier.status(&format!("{booted} workers"))
            }
            _ => return,
        }
        self.announced_workers = Some(booted);
    }

    /// Whether `worker` finished booting, from its heartbeat record.
    fn is_booted(&self, worker: &super::workers::Worker) -> bool {
        self.generation(worker.generation)
            .is_some_and(|g| g.heartbeats.slot(worker.slot, 0).booted())
    }

    fn booted_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.retire_deadline_ms.is_none())
            .filter(|w| self.is_booted(w))
            .count()
    }

    /// How long the loop may sleep: the tick, or less when the watchdog is due sooner.
    pub(super) fn until_next_duty(&self) -> std::time::Duration {
        if self.zygote_booting() {
            return std::time::Duration::from_millis(20);
        }
        match self.notifier.watchdog_interval() {
            Some(_) => {
                let left = self.next_watchdog_ms.saturating_sub(monotonic_ms());
                super::TICK.min(std::time::Duration::from_millis(left))
            }
            None => super::TICK,
        }
    }

    fn abandon_reload(&mut self) {
        let failed = self.generations.pop().expect("a reload generation");
        tracing::error!(
            "the reloaded app or configuration failed to boot; the previous workers keep serving"
        );
        for pid in self.workers.of_generation(failed.id) {
            self.kill(pid);
        }
        self.target = self.settings().workers as usize;
        self.reloading = false;
    }

    fn drop_empty_generations(&mut self) {
        let current = self.current().id;
        let workers = &self.workers;
        self.generations
            .retain(|g| g.id == current || !workers.of_generation(g.id).is_empty());
    }

    /// Marks generations whose workers booted; a reload completes when the new generation has
    /// all its workers up, and only then are the old workers asked to finish.
    pub(super) fn note_boots(&mut self) {
        let booted: Vec<u64> = self
            .workers
            .iter()
            .filter(|w| self.is_booted(w))
            .map(|w| w.generation)
            .collect();
        for generation in &mut self.generations {
            generation.booted |= booted.contains(&generation.id);
        }
        let now = monotonic_ms();
        let settled = self
            .workers
            .iter()
            .any(|w| now.saturating_sub(w.spawned_ms) >= EARLY_DEATH_MS);
        if settled {
            self.boot_failures = 0;
        }
        let current = self.current().id;
        if self.reloading
            && self.workers.missing(current, self.target) == 0
            && self.all_booted(current)
        {
            self.reloading = false;
            let old = self.workers.older_than(current);
            tracing::info!("reload complete; retiring {} old workers", old.len());
            self.retire(&old);
        }
    }

    fn all_booted(&self, generation: u64) -> bool {
        self.generation(generation).is_some()
            && self
                .workers
                .iter()
                .filter(|w| w.generation == generation)
                .all(|w| self.is_booted(w))
    }

    /// Asks workers to finish their requests and exit (USR2: "retire", leaving the listen queue
    /// to the workers that stay), SIGKILL at graceful_timeout.
    fn retire(&mut self, pids: &[i32]) {
        let deadline = monotonic_ms() + self.settings().graceful_timeout.as_millis() as u64;
        for &pid in pids {
            if let Some(worker) = self.workers.get_mut(pid) {
                worker.retire_deadline_ms = Some(deadline);
            }
            process::send_signal(pid, Signal::SIGUSR2);
        }
    }

    /// Kills workers that ran past `timeout`, naming what they were doing (gunicorn's
    /// murder_workers, with the request added), and retirees past their graceful deadline.
    pub(super) fn murder_workers(&mut self) {
        let now = monotonic_ms();
        for pid in self.workers.overdue(now) {
            tracing::warn!("Worker (pid:{pid}) did not finish within graceful_timeout; killing it");
            self.kill(pid);
        }
        let mut aborted = Vec::new();
        let mut overdue_aborts = Vec::new();
        for worker in self.workers.iter() {
            if let Some(sent) = worker.abort_sent_ms {
                if now.saturating_sub(sent) >= ABORT_GRACE_MS && !worker.killed {
                    overdue_aborts.push(worker.pid);
                }
                continue;
            }
            let Some(generation) = self.generation(worker.generation) else {
                continue;
            };
            let timeout_ms = generation.settings.timeout.as_millis() as u64;
            let views = generation.heartbeats.view_worker(worker.slot);
            if let Some(timeout) = find_timeout(worker, &views, now, timeout_ms) {
                tracing::error!("WORKER TIMEOUT (pid:{}): {}", timeout.pid, timeout.reason);
                process::send_signal(timeout.pid, Signal::SIGABRT);
                aborted.push(timeout.pid);
            }
        }
        for pid in aborted {
            if let Some(worker) = self.workers.get_mut(pid) {
                worker.abort_sent_ms = Some(now);
            }
        }
        for pid in overdue_aborts {
            self.kill(pid);
        }
    }

    /// SIGKILL on purpose: the exit is then not taken for a crash or a failed boot.
    pub(super) fn kill(&mut self, pid: i32) {
        if let Some(worker) = self.workers.get_mut(pid) {
            worker.killed = true;
        }
        process::send_signal(pid, Signal::SIGKILL);
    }

    pub(super) fn manage_workers(&mut self) {
        let current = self.current().id;
        let excess = self.workers.excess(current, self.target);
        self.retire(&excess);
        if monotonic_ms() < self.next_spawn_ms {
            return;
        }
        for _ in 0..self.workers.missing(current, self.target) {
            if !self.spawn_worker() || self.boot_failures > 0 {
                break;
            }
        }
    }
}

fn log_exit(pid: i32, status: ExitStatus, killed: bool) {
    match status {
        ExitStatus::Signal(9) if killed => tracing::info!("Worker (pid:{pid}) killed"),
        ExitStatus::Code(0) => tracing::debug!("worker {pid} exited"),
        ExitStatus::Code(code) => tracing::error!("Worker (pid:{pid}) exited with code {code}"),
        ExitStatus::Signal(9) => {
            tracing::error!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?")
        }
        ExitStatus::Signal(sig) => tracing::error!("Worker (pid:{pid}) was killed by signal {sig}"),
    }
}
