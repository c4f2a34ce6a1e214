//! Forking one worker directly from the master (preload_app, or reload where every worker imports
//! fresh code): the signal mask around fork, CPython's fork hooks when the master has Python, and the
//! child's path into `worker::run`, from which it never returns.
use super::events::Event;
use super::{signals, Arbiter};
use crate::process::{self, Forked};
use crate::worker::{self, WorkerContext};
use crate::wsgi;

impl Arbiter {
    pub(super) fn fork_directly(&mut self, generation: u64, slot: usize, owner: u64) -> Event {
        let mask = signals::block_all();
        let forked = wsgi::fork_with_python(process::fork, |r| matches!(r, Ok(Forked::Child)));
        match forked {
            Ok(Forked::Child) => self.become_worker(generation, slot, owner),
            Ok(Forked::Parent { child }) => {
                signals::restore_mask(&mask);
                Event::Forked {
                    generation,
                    slot,
                    pid: child,
                }
            }
            Err(error) => {
                signals::restore_mask(&mask);
                let error = error.to_string();
                Event::ForkFailed {
                    generation,
                    slot,
                    zygote_lost: false,
                    error,
                }
            }
        }
    }

    /// The child keeps every signal blocked until the worker has its own handlers in place, so a
    /// TERM sent right after fork is handled by the worker instead of being lost.
    fn become_worker(&mut self, generation: u64, slot: usize, owner: u64) -> ! {
        self.become_child();
        let table = self
            .table(generation)
            .expect("the model forks known generations");
        let code = worker::run(WorkerContext {
            settings: &table.settings,
            listeners: &self.listeners,
            heartbeats: table.heartbeats.clone(),
            slot,
            owner,
            preloaded: self.preloaded.as_ref(),
            identity: self.identity.as_ref(),
        });
        std::process::exit(code)
    }
}
