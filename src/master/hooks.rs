//! The master's server hooks (gunicorn's arbiter hooks: on_starting, when_ready, pre_fork,
//! child_exit, nworkers_changed, on_reload, pre_exec, on_exit), called in the master's interpreter
//! as effects of what the model decided or saw. A hook that raises is logged with its traceback
//! and the master carries on; nothing here changes what the model decides.
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::events::{Action, Event, Notice};
use super::{resolve_paths, Arbiter};
use crate::config::{self, Settings};
use crate::process::{self, current_pid, Forked};
use crate::wsgi::hooks::{self, Outcome, ServerView, WorkerView};
use crate::wsgi::{self, ConfigReader};
use crate::Result;

/// What the hooks need to remember between calls.
pub(super) struct HookState {
    /// The master's pid, also in the child that runs pre_exec (gunicorn's `server.pid`).
    master: i32,
    /// Each live worker's age (the id of the fork request that made it), for child_exit.
    ages: HashMap<i32, u64>,
    ready_once: bool,
}

impl HookState {
    pub fn new() -> Self {
        HookState {
            master: current_pid(),
            ages: HashMap::new(),
            ready_once: false,
        }
    }
}

/// A hook taking only the server, before the arbiter exists (on_starting, and gunicorn's first
/// nworkers_changed with no old value).
pub(super) fn at_start(settings: &Settings) {
    let view = ServerView {
        pid: current_pid(),
        num_workers: settings.workers as usize,
        settings,
    };
    hooks::call_nworkers_changed(&view, view.num_workers, None);
    hooks::call_server("on_starting", &view);
}

/// What an event is about to change that a hook reports afterwards.
pub(super) struct Before {
    /// (generation, target) of the current generation.
    workers: (u64, usize),
    /// A worker whose exit is being reported, and its age.
    exited: Option<(i32, u64)>,
}

impl Arbiter {
    fn server_view(&self) -> ServerView<'_> {
        ServerView {
            pid: self.hook_state.master,
            num_workers: self.model.current().target,
            settings: &self.tables.last().expect("a current generation").settings,
        }
    }

    /// Calls a hook whose only argument is the server.
    pub(super) fn server_hook(&self, name: &str) -> Outcome {
        hooks::call_server(name, &self.server_view())
    }

    pub(super) fn before(&mut self, event: &Event) -> Before {
        let current = self.model.current();
        let exited = match event {
            Event::Exited { pid, .. } if self.model.workers().any(|w| w.pid == *pid) => {
                self.hook_state.ages.remove(pid).map(|age| (*pid, age))
            }
            _ => None,
        };
        Before {
            workers: (current.spec.id, current.target),
            exited,
        }
    }

    /// child_exit for a reaped worker, once the model took its exit in and before what it decided
    /// is carried out (gunicorn's reap_workers, before a stop can end in on_exit).
    pub(super) fn child_exit(&mut self, before: &mut Before) {
        if let Some((pid, age)) = before.exited.take() {
            let server = self.server_view();
            let worker = self.worker_view(Some(pid), age, false);
            hooks::call_server_worker("child_exit", &server, &worker);
        }
    }

    /// nworkers_changed when TTIN, TTOU or a reload moved the number of workers.
    pub(super) fn after(&mut self, before: Before) {
        let current = self.model.current();
        let (generation, target) = before.workers;
        if current.spec.id != generation || current.target != target {
            hooks::call_nworkers_changed(&self.server_view(), current.target, Some(target));
        }
    }

    fn worker_view(&self, pid: Option<i32>, age: u64, alive: bool) -> WorkerView<'_> {
        WorkerView {
            pid,
            ppid: self.hook_state.master,
            age,
            alive,
            settings: self.server_view().settings,
        }
    }

    /// Hooks that come with an action: pre_fork before a fork, when_ready at the first READY,
    /// on_exit before the master exits.
    pub(super) fn before_action(&mut self, action: &Action) {
        match action {
            Action::Fork { .. } => {
                let server = self.server_view();
                let worker = self.worker_view(None, self.next_request, true);
                hooks::call_server_worker("pre_fork", &server, &worker);
            }
            Action::Notify(Notice::Ready(_)) if !self.hook_state.ready_once => {
                self.hook_state.ready_once = true;
                self.server_hook("when_ready");
            }
            Action::Exit { .. } => {
                self.server_hook("on_exit");
            }
            _ => {}
        }
    }

    /// Remembers a forked worker's age; on_reload once a HUP's configuration is in place.
    pub(super) fn after_action(&mut self, age: u64, event: Option<&Event>) {
        match event {
            Some(Event::Forked { pid, .. }) => {
                self.hook_state.ages.insert(*pid, age);
            }
            Some(Event::Reloaded(Ok(_))) => {
                self.server_hook("on_reload");
            }
            _ => {}
        }
    }

    /// USR2's new master; with a pre_exec hook, forked first so that the hook runs in the child
    /// about to exec it, as in gunicorn.
    pub(super) fn start_new_master(&self, mut command: Command) -> std::io::Result<i32> {
        if !hooks::defined("pre_exec") {
            return command.spawn().map(|child| child.id() as i32);
        }
        match wsgi::fork_with_python(process::fork, |r| matches!(r, Ok(Forked::Child))) {
            Ok(Forked::Child) => {
                self.server_hook("pre_exec");
                let error = command.exec();
                tracing::error!("USR2: cannot start the new master: {error}");
                process::exit_immediately(crate::error::EXIT_FAILURE)
            }
            Ok(Forked::Parent { child }) => Ok(child),
            Err(error) => Err(std::io::Error::other(error.to_string())),
        }
    }

    /// HUP: the configuration read again from where it came; a Python config runs again in this
    /// process, and its hooks replace the old ones once its settings are valid.
    pub(super) fn reload_settings(&self) -> Result<Settings> {
        let current = &self.tables.last().expect("a current generation").settings;
        let reader = ConfigReader::default();
        let launch = &self.launch;
        let fresh = config::reload_with(current, launch.argv.clone(), &launch.env, &reader);
        for warning in reader.take_warnings() {
            tracing::warn!("{warning}");
        }
        let settings = resolve_paths(fresh?, &launch.dir)?;
        hooks::commit(&settings.hooks);
        Ok(settings)
    }
}
