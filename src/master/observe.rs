//! What the master's loop observes between decisions: delivered signals, reaped children, zygote
//! ready messages and the workers' heartbeats, each turned into an event for the model. Reads
//! only; never acts.
use std::os::fd::AsFd;

use nix::poll::PollFlags;
use std::time::Duration;

use super::events::{Event, RestartReason};
use super::workers::{find_timeout, WorkerState};
use super::Arbiter;
use crate::process::{self, monotonic_ms};

impl Arbiter {
    /// Waits up to `timeout` for a signal or a zygote's message, then reports everything new.
    pub(super) fn observe(&mut self, timeout: Duration) -> Vec<Event> {
        let starting: Vec<usize> = (0..self.zygotes.len())
            .filter(|i| !self.zygotes[*i].ready && !self.zygotes[*i].broken)
            .collect();
        let (signals, readable) = {
            let mut fds: Vec<_> = starting
                .iter()
                .map(|i| (self.zygotes[*i].replies.as_fd(), PollFlags::POLLIN))
                .collect();
            fds.extend(self.endpoints.interest());
            match &self.signals {
                Some(queue) => queue.wait(timeout, &fds),
                None => (Vec::new(), vec![false; fds.len()]),
            }
        };
        let (zygotes, endpoints) = readable.split_at(starting.len());
        self.endpoints.service(endpoints, monotonic_ms());
        let mut events = Vec::new();
        for (index, ready) in starting.into_iter().zip(zygotes.iter().copied()) {
            if ready {
                events.extend(self.zygotes[index].take_ready());
            }
        }
        // Reaped first, heartbeats read after: a worker that booted and exited in between is
        // seen booting before it is seen gone, so its exit is no failed boot.
        let reaped = process::reap_children();
        events.extend(self.heartbeat_events());
        events.extend(
            reaped
                .into_iter()
                .map(|(pid, status)| Event::Exited { pid, status }),
        );
        // What the workers did before a signal arrived is decided on first: a HUP sent after a
        // worker answered must find its generation booted, or the reload would discard it.
        events.extend(signals.into_iter().map(Event::Signal));
        events.push(Event::Tick);
        events
    }

    /// Boots, retirements a worker started on its own, and timeouts, from the heartbeat table.
    fn heartbeat_events(&self) -> Vec<Event> {
        let now = monotonic_ms();
        let mut events = Vec::new();
        for worker in self.model.workers() {
            let Some(table) = self.table(worker.generation) else {
                continue;
            };
            let record = table.heartbeats.slot(worker.slot, 0);
            if !worker.booted && record.booted() {
                events.push(Event::Booted { pid: worker.pid });
            }
            if worker.is_active() && record.retiring() {
                let reason = match record.code_changed() {
                    true => RestartReason::Reload,
                    false => RestartReason::MaxRequests,
                };
                events.push(Event::SelfRetiring {
                    pid: worker.pid,
                    reason,
                });
            }
            if worker.state == WorkerState::Killed {
                continue;
            }
            if worker.is_active() && self.over_memory(worker.pid, &table.settings) {
                let reason = RestartReason::Memory;
                events.push(Event::Retire {
                    pid: worker.pid,
                    reason,
                });
            }
            let timeout_ms = table.settings.timeout.as_millis() as u64;
            let views = table.heartbeats.view_worker(worker.slot);
            if let Some(timeout) = find_timeout(worker, &views, now, timeout_ms) {
                events.push(Event::TimedOut(timeout));
            }
        }
        events
    }

    /// Whether the worker's unshared memory, as it last measured it, passed max_worker_memory.
    fn over_memory(&self, pid: i32, settings: &crate::config::Settings) -> bool {
        let limit = settings.max_worker_memory.saturating_mul(1024 * 1024);
        let shared = self.telemetry.shared();
        let used = || {
            shared
                .worker_id(pid)
                .map(|id| shared.lane(Some(id)).memory())
        };
        limit > 0 && used().is_some_and(|bytes| bytes > limit)
    }
}
