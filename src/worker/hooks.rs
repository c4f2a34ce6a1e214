//! The worker's server hooks: post_fork, post_worker_init (an exception in either is a boot
//! error, as in gunicorn), worker_exit, and worker_int / worker_abort, run on a thread of their
//! own when INT, QUIT or ABRT arrive, since the thread that would notice may be stuck in the app.
//! Only when a config defines them; otherwise a worker has no hook thread and no extra cost.
use signal_hook::consts::{SIGABRT, SIGINT, SIGQUIT};
use signal_hook::iterator::Signals;

use super::WorkerContext;
use crate::config::Settings;
use crate::error::{EXIT_FAILURE, EXIT_OK, WORKER_BOOT_ERROR};
use crate::process::{current_pid, exit_immediately, parent_pid};
use crate::wsgi::hooks::{self, Outcome, ServerView, WorkerView};

/// What hooks in a worker see: its settings, and its age (the master's fork request id).
#[derive(Clone)]
pub(super) struct Me<'a> {
    pub settings: &'a Settings,
    pub age: u64,
}

impl<'a> Me<'a> {
    pub fn of(ctx: &WorkerContext<'a>) -> Self {
        Me {
            settings: ctx.settings,
            age: ctx.owner,
        }
    }

    fn server(&self) -> ServerView<'a> {
        ServerView {
            pid: parent_pid(),
            num_workers: self.settings.workers as usize,
            settings: self.settings,
        }
    }

    pub fn worker(&self, alive: bool) -> WorkerView<'a> {
        WorkerView {
            pid: Some(current_pid()),
            ppid: parent_pid(),
            age: self.age,
            alive,
            settings: self.settings,
        }
    }
}

/// post_fork(server, worker), just after the fork; Err is the boot error exit code.
pub(super) fn post_fork(me: &Me<'_>) -> Result<(), i32> {
    match hooks::call_server_worker("post_fork", &me.server(), &me.worker(true)) {
        Outcome::Raised => Err(WORKER_BOOT_ERROR),
        _ => Ok(()),
    }
}

/// post_worker_init(worker), once the app is loaded; Err is the boot error exit code.
pub(super) fn post_worker_init(me: &Me<'_>) -> Result<(), i32> {
    match hooks::call_worker("post_worker_init", &me.worker(true)) {
        Outcome::Raised => Err(WORKER_BOOT_ERROR),
        _ => Ok(()),
    }
}

/// worker_exit(server, worker), as the worker leaves.
pub(super) fn worker_exit(me: &Me<'_>) {
    hooks::call_server_worker("worker_exit", &me.server(), &me.worker(false));
}

/// Whether INT and QUIT go to the hook thread instead of ending the worker at once.
pub(super) fn takes_interrupts() -> bool {
    hooks::defined("worker_int") || hooks::defined("worker_exit")
}

/// Starts the hook thread when a hook wants INT/QUIT or ABRT. Must run before the fault handler is
/// enabled: it then dumps the tracebacks of a timed-out worker first and hands ABRT on to us.
pub(super) fn watch_signals(me: &Me<'_>) -> std::io::Result<()> {
    let mut wanted = Vec::new();
    if takes_interrupts() {
        wanted.extend([SIGINT, SIGQUIT]);
    }
    if hooks::defined("worker_abort") || hooks::defined("worker_exit") {
        wanted.push(SIGABRT);
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut signals = Signals::new(&wanted)?;
    let settings = me.settings.clone();
    let age = me.age;
    std::thread::Builder::new()
        .name("hooks".into())
        .spawn(move || {
            let me = Me {
                settings: &settings,
                age,
            };
            if let Some(signal) = signals.forever().next() {
                on_signal(&me, signal);
            }
        })?;
    Ok(())
}

/// gunicorn's handle_quit and handle_abort: the hook, worker_exit, then exit.
fn on_signal(me: &Me<'_>, signal: i32) -> ! {
    let (hook, code) = match signal {
        SIGABRT => ("worker_abort", EXIT_FAILURE),
        _ => ("worker_int", EXIT_OK),
    };
    hooks::call_worker(hook, &me.worker(false));
    worker_exit(me);
    exit_immediately(code)
}
