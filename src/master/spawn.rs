//! Forking one worker: the slot, the signal mask around fork, CPython's fork hooks with
//! preload_app, and the child's path into `worker::run`, from which it never returns.
use super::{signals, Arbiter};
use crate::process::{self, monotonic_ms, Forked};
use crate::worker::{self, WorkerContext};
use crate::wsgi;

impl Arbiter {
    /// Forks a worker of the current generation; false when no slot is free or fork failed.
    pub(super) fn spawn_worker(&mut self) -> bool {
        let generation = self.current();
        let id = generation.id;
        let Some(slot) = self
            .workers
            .free_slot(id)
            .filter(|s| *s < generation.heartbeats.worker_slots())
        else {
            return false;
        };
        generation.heartbeats.reset_worker(slot, monotonic_ms());
        if self.uses_zygote() {
            return self.spawn_from_zygote(id, slot);
        }
        let mask = signals::block_all();
        let forked = match &self.preloaded {
            Some(_) => wsgi::fork_with_python(process::fork, |r| matches!(r, Ok(Forked::Child))),
            None => process::fork(),
        };
        match forked {
            Ok(Forked::Child) => self.become_worker(slot),
            Ok(Forked::Parent { child }) => {
                signals::restore_mask(&mask);
                self.workers.add(child, id, slot, monotonic_ms());
                true
            }
            Err(error) => {
                signals::restore_mask(&mask);
                tracing::error!("{error}");
                false
            }
        }
    }

    fn spawn_from_zygote(&mut self, generation: u64, slot: usize) -> bool {
        match self.fork_from_zygote(slot) {
            Ok(Some(pid)) => {
                self.workers.add(pid, generation, slot, monotonic_ms());
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::error!("{error}");
                false
            }
        }
    }

    /// The child keeps every signal blocked until the worker has its own handlers in place, so a
    /// TERM sent right after fork is handled by the worker instead of being lost.
    fn become_worker(&mut self, slot: usize) -> ! {
        if let Some(queue) = self.signals.take() {
            queue.forget_in_child();
        }
        let generation = self.current();
        let code = worker::run(WorkerContext {
            settings: &generation.settings,
            listeners: &self.listeners,
            heartbeats: generation.heartbeats.clone(),
            slot,
            preloaded: self.preloaded.as_ref(),
            identity: self.identity.as_ref(),
        });
        std::process::exit(code)
    }
}
