//! The model's decisions about a reaped child: a worker's exit (crash, failed boot, retirement
//! done), a zygote's exit, the back-off of crash loops and the log line of each. Pure, like
//! `model.rs`; never performs a system call.
use nix::sys::signal::Signal;

use super::events::{Action, Level, ReloadOutcome, RestartReason, Tally};
use super::model::{Model, Phase, Zygote, EARLY_DEATH_MS};
use super::workers::{respawn_delay_ms, Worker, WorkerState};
use crate::error::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::process::ExitStatus;

impl Model {
    pub(super) fn exited(&mut self, pid: i32, status: ExitStatus, now: u64) {
        if self.reexec == Some(pid) {
            self.reexec = None;
            self.out.push(Action::ReexecEnded { status });
        } else if let Some(index) = self.dying_zygotes.iter().position(|z| *z == pid) {
            self.dying_zygotes.swap_remove(index);
            self.log(Level::Debug, format!("zygote (pid:{pid}) exited"));
        } else if let Some(id) = self.zygote_generation(pid) {
            self.zygote_exited(id, pid, status, now);
        } else if let Some(worker) = self.workers.remove(pid) {
            self.worker_exited(worker, status, now);
        } else {
            self.log(
                Level::Warn,
                format!("reaped a child the master did not know: pid {pid}, {status:?}"),
            );
        }
    }

    fn zygote_exited(&mut self, id: u64, pid: i32, status: ExitStatus, now: u64) {
        let was_ready = matches!(self.gen(id).map(|g| g.zygote), Some(Zygote::Ready(_)));
        self.set_zygote(id, Zygote::Absent);
        if was_ready {
            let message = format!(
                "zygote (pid:{pid}) exited ({status:?}); a new one starts when a worker is needed"
            );
            return self.log(Level::Warn, message);
        }
        self.log(
            Level::Error,
            format!("zygote (pid:{pid}) exited before it was ready ({status:?})"),
        );
        if self.phase == Phase::Running {
            self.boot_failed(id, status, now);
        }
    }

    fn worker_exited(&mut self, worker: Worker, status: ExitStatus, now: u64) {
        self.log_exit(worker.pid, status, worker.state == WorkerState::Killed);
        if self.phase != Phase::Running {
            return;
        }
        let early = now.saturating_sub(worker.spawned_ms) < EARLY_DEATH_MS;
        match (worker.booted, worker.reason) {
            (true, Some(reason)) => self.count(Tally::Restart(reason)),
            (true, None) if worker.state != WorkerState::Killed => {
                self.count(Tally::Restart(RestartReason::Crash))
            }
            _ => {}
        }
        match worker.state {
            WorkerState::Killed => {}
            _ if !worker.booted => self.boot_failed(worker.generation, status, now),
            WorkerState::Serving if early && status != ExitStatus::Code(0) => {
                self.back_off("worker died right after it booted", now)
            }
            _ => {}
        }
    }

    /// A worker or zygote died before it could serve. A boot error in a generation that never
    /// booted fails that generation: at first start the server stops with gunicorn's exit code;
    /// after a reload the newest generation that booted keeps serving. Otherwise respawns back off.
    pub(super) fn boot_failed(&mut self, id: u64, status: ExitStatus, now: u64) {
        self.count(Tally::BootFailure);
        let code = match status {
            ExitStatus::Code(code @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR)) => code,
            _ => return self.back_off("worker failed to boot", now),
        };
        let failed = id == self.current().spec.id && !self.current().booted;
        if !failed {
            return self.back_off("worker failed to boot", now);
        }
        self.count_reload(id, ReloadOutcome::Failed);
        if self.generations.iter().any(|g| g.booted) {
            self.log(Level::Error, format!("the new code or configuration (generation {id}, exit code {code}) failed to boot; the previous workers keep serving"));
            self.abandon(id);
            self.announced = None;
            self.next_spawn_ms = 0;
            return;
        }
        let reason = if code == APP_LOAD_ERROR {
            "App failed to load."
        } else {
            "Worker failed to boot."
        };
        self.log(Level::Error, format!("Reason: {reason}"));
        self.exit_code = code;
        self.begin_stop(Signal::SIGTERM, now);
    }

    /// Crash loops fork more slowly each time, until a worker stays up for EARLY_DEATH_MS.
    pub(super) fn back_off(&mut self, what: &str, now: u64) {
        self.boot_failures += 1;
        let delay = respawn_delay_ms(self.boot_failures);
        self.log(Level::Warn, format!("{what}; next attempt in {delay} ms"));
        self.next_spawn_ms = now + delay;
    }

    fn log_exit(&mut self, pid: i32, status: ExitStatus, killed: bool) {
        let (level, text) = match status {
            ExitStatus::Signal(9) if killed => (Level::Info, format!("Worker (pid:{pid}) killed")),
            ExitStatus::Code(0) => (Level::Debug, format!("worker {pid} exited")),
            ExitStatus::Code(code) => (
                Level::Error,
                format!("Worker (pid:{pid}) exited with code {code}"),
            ),
            ExitStatus::Signal(9) => (
                Level::Error,
                format!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?"),
            ),
            ExitStatus::Signal(sig) => (
                Level::Error,
                format!("Worker (pid:{pid}) was killed by signal {sig}"),
            ),
        };
        self.log(level, text);
    }
}
