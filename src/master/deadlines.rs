//! The model's deadlines: retiring workers past graceful_timeout, timed-out workers past the
//! grace of their SIGABRT, and zygotes that take longer than `timeout` to import the app; and
//! when the loop must look again. Pure, like `model.rs`.
use super::converge::ABORT_GRACE_MS;
use super::events::{Action, Level};
use super::model::{Model, Phase, Zygote};
use super::workers::WorkerState;

impl Model {
    pub(super) fn kill_overdue(&mut self, now: u64) {
        for pid in self.workers.overdue(now) {
            self.log(
                Level::Warn,
                format!("Worker (pid:{pid}) did not finish within graceful_timeout; killing it"),
            );
            self.kill(pid);
        }
        let aborted = self.workers.pids_where(|w| {
            w.state != WorkerState::Killed
                && w.abort_sent_ms
                    .is_some_and(|sent| now >= sent + ABORT_GRACE_MS)
        });
        for pid in aborted {
            self.kill(pid);
        }
    }

    /// A zygote that is not ready by its deadline hangs importing the app: it is killed, and the
    /// next worker that is needed starts a new one after the back-off.
    pub(super) fn expire_zygote_starts(&mut self, now: u64) {
        let expired: Vec<u64> = (self.generations.iter())
            .filter(|g| matches!(g.zygote, Zygote::Starting(_)))
            .filter(|g| g.zygote_deadline_ms.is_some_and(|deadline| now >= deadline))
            .map(|g| g.spec.id)
            .collect();
        for id in expired {
            self.log(
                Level::Error,
                format!(
                    "the zygote of generation {id} did not get ready within timeout; killing it"
                ),
            );
            self.kill_zygote(id);
            self.back_off("the zygote did not get ready", now);
        }
    }

    /// Asks for a generation's zygote, due ready within the generation's boot timeout.
    pub(super) fn start_zygote(&mut self, id: u64, now: u64) {
        let Some(generation) = self.generations.iter_mut().find(|g| g.spec.id == id) else {
            return;
        };
        let timeout = generation.spec.boot_timeout_ms;
        generation.zygote = Zygote::Starting(None);
        generation.zygote_deadline_ms = (timeout > 0).then_some(now + timeout);
        self.out.push(Action::StartZygote { generation: id });
    }

    /// When the loop must look again at the latest, even if nothing happens.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let mut wakes: Vec<u64> = self
            .workers
            .iter()
            .filter_map(|w| match w.state {
                WorkerState::Retiring { deadline_ms } => Some(deadline_ms),
                _ => w.abort_sent_ms.map(|sent| sent + ABORT_GRACE_MS),
            })
            .collect();
        if let Phase::Stopping {
            deadline_ms,
            exit_by_ms,
        } = self.phase
        {
            wakes.push(if now < deadline_ms {
                deadline_ms
            } else {
                exit_by_ms
            });
        }
        if self.phase == Phase::Running && self.next_spawn_ms > now {
            wakes.push(self.next_spawn_ms);
        }
        wakes.extend(self.generations.iter().filter_map(|g| g.zygote_deadline_ms));
        wakes.into_iter().min()
    }
}
