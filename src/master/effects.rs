//! Carrying out the model's actions: signals, forks, zygotes, the reload's configuration, logs
//! and systemd. Each action is done as asked and what it produced is reported back as an event;
//! no decisions are made here.
use nix::sys::signal::Signal;

use super::events::{Action, Event, GenSpec, Level, Notice};
use super::{Arbiter, Table};
use crate::process;

impl Arbiter {
    pub(super) fn execute(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Log(level, message) => log(level, &message),
            Action::ReportTimeout(timeout) => self.telemetry.report_timeout(timeout),
            Action::Count(tally) => {
                self.telemetry.count(tally);
                self.control.saw_tally(tally);
            }
            Action::ReadConfig => return Some(self.read_config()),
            Action::StartZygote { generation } => return Some(self.start_zygote(generation)),
            Action::KillZygote { pid } => {
                process::send_signal(pid, Signal::SIGKILL);
                self.forget_zygote(pid);
            }
            Action::Fork { generation, slot } => return Some(self.fork(generation, slot)),
            Action::Signal { pid, signal } => {
                process::send_signal(pid, signal);
            }
            Action::Kill { pid } => {
                process::send_signal(pid, Signal::SIGKILL);
            }
            Action::DropGeneration { generation } => self.tables.retain(|t| t.id != generation),
            Action::Notify(notice) => self.notify(notice),
            Action::ReopenLogs => {
                let reopened = crate::logging::reopen();
                if let Err(error) = &reopened {
                    tracing::error!("cannot reopen the logs: {error}");
                }
                self.control.reopened = Some(reopened.map_err(|e| e.to_string()));
            }
            Action::Reexec => return self.reexec().map(|pid| Event::ReexecStarted { pid }),
            Action::ReexecEnded { status } => self.reexec_ended(status),
            Action::Exit { code } => self.exit = Some(code),
        }
        None
    }

    /// HUP: the configuration read again from where it came, as a new generation's table.
    fn read_config(&mut self) -> Event {
        let read = self.read_new_config();
        self.control.read_config = Some(read.as_ref().map(|spec| spec.id).map_err(Clone::clone));
        Event::Reloaded(read)
    }

    fn read_new_config(&mut self) -> Result<GenSpec, String> {
        let fresh = self.reload_settings();
        let id = self.tables.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        let table = fresh
            .and_then(|settings| Table::new(id, settings))
            .map_err(|error| error.to_string())?;
        if let Err(error) = crate::logging::init(&table.settings) {
            tracing::error!("reload could not reopen the logs: {error}");
        }
        self.telemetry
            .configure(&table.settings, self.identity.as_ref());
        let spec = table.spec();
        self.tables.push(table);
        Ok(spec)
    }

    /// Resets the worker's heartbeat slot under a fresh request id, then forks it.
    fn fork(&mut self, generation: u64, slot: usize) -> Event {
        let id = self.next_request;
        self.next_request += 1;
        let Some(table) = self.table(generation) else {
            let error = format!("generation {generation} has no table");
            return Event::ForkFailed {
                generation,
                slot,
                zygote_lost: false,
                error,
            };
        };
        let heartbeats = table.heartbeats.clone();
        heartbeats.reset_worker(slot, process::monotonic_ms(), id);
        let forked = if table.spec().zygote {
            self.fork_from_zygote(generation, slot, id)
        } else {
            self.fork_directly(generation, slot, id)
        };
        // The worker waits for this before it serves: one whose answer never came (its zygote
        // died between fork and answer) exits unseen instead of serving beside its replacement.
        if let Event::Forked { pid, .. } = forked {
            heartbeats.acknowledge(slot, pid);
        }
        forked
    }

    fn notify(&mut self, notice: Notice) {
        match notice {
            Notice::Ready(status) => self.notifier.ready(&status),
            Notice::Status(status) => self.notifier.status(&status),
            Notice::Reloading => self.notifier.reloading(),
            Notice::Stopping => self.notifier.stopping(),
        }
    }
}

fn log(level: Level, message: &str) {
    match level {
        Level::Debug => tracing::debug!("{message}"),
        Level::Info => tracing::info!("{message}"),
        Level::Warn => tracing::warn!("{message}"),
        Level::Error => tracing::error!("{message}"),
    }
}
