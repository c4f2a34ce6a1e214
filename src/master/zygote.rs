//! The master's side of the zygote: starting one per generation, knowing when it is ready, and
//! asking it for workers. The zygote itself lives in `worker::zygote`.
use std::time::Duration;

use super::{signals, Arbiter};
use crate::process::{self, Channel, Forked};
use crate::worker::zygote::{self as child, ZygoteContext, ZYGOTE_READY};
use crate::Result;

/// How long the master waits for the zygote to answer a fork request.
const FORK_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Zygote {
    pub pid: i32,
    requests: Channel,
    replies: Channel,
    pub ready: bool,
}

impl Drop for Zygote {
    /// A generation's zygote goes with it (reload done, reload abandoned, shutdown).
    fn drop(&mut self) {
        process::send_signal(self.pid, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Zygote {
    /// Reads the ready message without waiting.
    fn poll_ready(&mut self) -> bool {
        if !self.ready {
            self.ready = self.replies.receive(Duration::ZERO) == Some(ZYGOTE_READY);
        }
        self.ready
    }

    fn fork_worker(&self, slot: usize) -> Option<i32> {
        self.requests.send(i32::try_from(slot).ok()?).ok()?;
        self.replies
            .receive(FORK_REPLY_TIMEOUT)
            .filter(|pid| *pid > 0)
    }
}

impl Arbiter {
    /// Workers come from a zygote unless the app is preloaded in the master, or `reload` needs
    /// every new worker to import fresh code.
    pub(super) fn uses_zygote(&self) -> bool {
        let settings = self.settings();
        !settings.preload_app && !settings.reload
    }

    /// A worker from the current generation's zygote: Ok(None) while the zygote is not ready
    /// (it is started if need be).
    pub(super) fn fork_from_zygote(&mut self, slot: usize) -> Result<Option<i32>> {
        if self.current().zygote.is_none() {
            let zygote = self.start_zygote()?;
            self.generations
                .last_mut()
                .expect("current generation")
                .zygote = Some(zygote);
        }
        let zygote = self
            .generations
            .last_mut()
            .and_then(|g| g.zygote.as_mut())
            .expect("started above");
        if !zygote.poll_ready() {
            return Ok(None);
        }
        Ok(zygote.fork_worker(slot))
    }

    /// Whether a zygote is still importing the app (the loop then wakes more often).
    pub(super) fn zygote_booting(&self) -> bool {
        self.generations
            .iter()
            .any(|g| g.zygote.as_ref().is_some_and(|z| !z.ready))
    }

    /// If `pid` was a zygote, forgets it and says whether it died before it was ready.
    pub(super) fn zygote_exited(&mut self, pid: i32) -> Option<(u64, bool)> {
        let generation = self
            .generations
            .iter_mut()
            .find(|g| g.zygote.as_ref().is_some_and(|z| z.pid == pid))?;
        let zygote = generation.zygote.take()?;
        let before_ready = !zygote.ready;
        std::mem::forget(zygote);
        Some((generation.id, before_ready))
    }

    fn start_zygote(&mut self) -> Result<Zygote> {
        let requests = Channel::new()?;
        let replies = Channel::new()?;
        let mask = signals::block_all();
        let forked = process::fork();
        if let Ok(Forked::Child) = forked {
            if let Some(queue) = self.signals.take() {
                queue.forget_in_child();
            }
            let generation = self.current();
            let code = child::run(ZygoteContext {
                settings: &generation.settings,
                listeners: &self.listeners,
                heartbeats: generation.heartbeats.clone(),
                identity: self.identity.as_ref(),
                requests: &requests,
                replies: &replies,
            });
            std::process::exit(code);
        }
        signals::restore_mask(&mask);
        let Forked::Parent { child } = forked? else {
            unreachable!("the child branch exits")
        };
        tracing::debug!("zygote started (pid {child})");
        Ok(Zygote {
            pid: child,
            requests,
            replies,
            ready: false,
        })
    }
}
