//! The master (gunicorn's arbiter): binds the listeners, forks and supervises the workers, and
//! turns signals into actions. Single-threaded, no tokio, and no Python unless preload_app; it
//! decides with the pure functions of `workers` and acts through `process` and `signals`.
mod signals;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::Settings;
use crate::heartbeat::Heartbeats;
use crate::process::{self, current_pid, monotonic_ms, ExitStatus, Forked};
use crate::sockets::{self, Listener};
use crate::worker::{self, WorkerContext, APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::wsgi::{self, App};
use crate::Result;
use signals::SignalQueue;
use workers::{find_timeout, respawn_delay_ms, WorkerSet};

/// Heartbeat slots beyond the configured workers, room for TTIN and for old workers still
/// draining while their replacements run.
const SPARE_SLOTS: usize = 64;
/// A worker sent SIGABRT for a timeout gets this long to dump its traceback before SIGKILL.
const ABORT_GRACE_MS: u64 = 1000;

enum Phase {
    Running,
    Stopping { deadline_ms: u64 },
}

struct Arbiter {
    settings: Settings,
    listeners: Vec<Listener>,
    signals: Option<SignalQueue>,
    heartbeats: Arc<Heartbeats>,
    workers: WorkerSet,
    target: usize,
    preloaded: Option<App>,
    phase: Phase,
    /// Whether any worker ever finished booting; before that, a boot failure stops the server.
    booted_once: bool,
    boot_failures: u32,
    next_spawn_ms: u64,
    exit_code: i32,
}

/// Runs the server until it is told to stop; returns the process exit code.
pub fn run(mut settings: Settings) -> Result<i32> {
    tracing::info!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION"));
    change_directory(&mut settings)?;
    let listeners = sockets::bind_all(&settings.bind, settings.backlog, settings.reuse_port)?;
    for listener in &listeners {
        tracing::info!("Listening at: {} ({})", listener.describe(), current_pid());
    }
    let class = settings.worker_class;
    tracing::info!("Using worker: {}", class.as_str());
    let name = settings
        .proc_name
        .clone()
        .unwrap_or_else(|| settings.wsgi_app.clone());
    process::set_process_title(&format!("rgunicorn: master [{name}]"));
    let preloaded = if settings.preload_app {
        Some(preload(&settings)?)
    } else {
        None
    };
    let slots = settings.workers as usize + SPARE_SLOTS;
    let mut arbiter = Arbiter {
        heartbeats: Arc::new(Heartbeats::new(slots, settings.threads.max(1) as usize)?),
        workers: WorkerSet::new(slots),
        target: settings.workers as usize,
        signals: Some(SignalQueue::install()?),
        settings,
        listeners,
        preloaded,
        phase: Phase::Running,
        booted_once: false,
        boot_failures: 0,
        next_spawn_ms: 0,
        exit_code: 0,
    };
    arbiter.run_loop();
    for listener in &arbiter.listeners {
        listener.remove_file();
    }
    tracing::info!("Shutting down: Master");
    Ok(arbiter.exit_code)
}

/// gunicorn's chdir happens in the master, before anything is loaded. A relative virtualenv is
/// taken from where the server was started, so it is resolved first.
fn change_directory(settings: &mut Settings) -> Result<()> {
    if let Some(venv) = &settings.virtualenv {
        settings.virtualenv = Some(std::path::absolute(venv).map_err(|e| crate::Error::io("resolve virtualenv path", e))?);
    }
    if let Some(dir) = &settings.chdir {
        std::env::set_current_dir(dir).map_err(|e| crate::Error::io(format!("chdir to {}", dir.display()), e))?;
        settings.chdir = Some(std::env::current_dir().map_err(|e| crate::Error::io("read working directory", e))?);
    }
    Ok(())
}

fn preload(settings: &Settings) -> Result<App> {
    for (key, value) in &settings.raw_env {
        std::env::set_var(key, value);
    }
    let setup = wsgi::PythonSetup {
        virtualenv: settings.virtualenv.clone(),
        chdir: settings.chdir.clone(),
        pythonpath: settings.pythonpath.clone(),
    };
    wsgi::initialize(&setup)?;
    App::load(&settings.wsgi_app)
}

impl Arbiter {
    fn run_loop(&mut self) {
        loop {
            let delivered = self
                .signals
                .as_ref()
                .map(|s| s.wait(Duration::from_secs(1)))
                .unwrap_or_default();
            for signal in delivered {
                self.handle_signal(signal);
            }
            self.reap_workers();
            self.note_boots();
            self.murder_workers();
            match self.phase {
                Phase::Running => self.manage_workers(),
                Phase::Stopping { deadline_ms } => {
                    if self.workers.is_empty() {
                        return;
                    }
                    if monotonic_ms() >= deadline_ms {
                        self.kill_all(Signal::SIGKILL);
                    }
                }
            }
        }
    }

    fn handle_signal(&mut self, signal: Signal) {
        if signal != Signal::SIGCHLD {
            tracing::info!("Handling signal: {}", signal_name(signal));
        }
        match signal {
            Signal::SIGTERM => self.stop(Signal::SIGTERM),
            Signal::SIGINT | Signal::SIGQUIT => self.stop(Signal::SIGQUIT),
            Signal::SIGTTIN => self.target += 1,
            Signal::SIGTTOU => self.target = self.target.saturating_sub(1).max(1),
            Signal::SIGUSR1 => {
                let _ = crate::logging::reopen();
                self.kill_all(Signal::SIGUSR1);
            }
            _ => {}
        }
    }

    /// Graceful (TERM) or fast (QUIT) stop of every worker, bounded by graceful_timeout.
    fn stop(&mut self, signal: Signal) {
        if let Phase::Running = self.phase {
            let deadline_ms = monotonic_ms() + self.settings.graceful_timeout.as_millis() as u64;
            self.phase = Phase::Stopping { deadline_ms };
        }
        self.kill_all(signal);
    }

    fn kill_all(&self, signal: Signal) {
        for pid in self.workers.pids() {
            process::send_signal(pid, signal);
        }
    }

    fn reap_workers(&mut self) {
        for (pid, status) in process::reap_children() {
            let Some(worker) = self.workers.remove(pid) else {
                continue;
            };
            let booted = self.heartbeats.slot(worker.slot, 0).view().booted;
            self.after_exit(pid, status, booted);
        }
    }

    fn after_exit(&mut self, pid: i32, status: ExitStatus, booted: bool) {
        match status {
            ExitStatus::Code(0) => tracing::debug!("worker {pid} exited"),
            ExitStatus::Code(code) => tracing::error!("Worker (pid:{pid}) exited with code {code}"),
            ExitStatus::Signal(sig) => {
                tracing::error!("Worker (pid:{pid}) was killed by signal {sig}")
            }
        }
        if booted || !matches!(self.phase, Phase::Running) {
            return;
        }
        let boot_code = match status {
            ExitStatus::Code(code @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR)) => Some(code),
            _ => None,
        };
        if let (Some(code), false) = (boot_code, self.booted_once) {
            let reason = if code == APP_LOAD_ERROR {
                "App failed to load."
            } else {
                "Worker failed to boot."
            };
            tracing::error!("Reason: {reason}");
            self.exit_code = code;
            self.stop(Signal::SIGTERM);
            return;
        }
        self.boot_failures += 1;
        let delay = respawn_delay_ms(self.boot_failures);
        tracing::warn!("worker failed to boot; next attempt in {delay} ms");
        self.next_spawn_ms = monotonic_ms() + delay;
    }

    fn note_boots(&mut self) {
        let booted = self
            .workers
            .iter()
            .any(|w| self.heartbeats.slot(w.slot, 0).view().booted);
        if booted {
            self.booted_once = true;
            self.boot_failures = 0;
        }
    }

    /// Kills workers that ran past `timeout`, naming what they were doing (gunicorn's
    /// murder_workers, with the request added).
    fn murder_workers(&mut self) {
        let now = monotonic_ms();
        let timeout_ms = self.settings.timeout.as_millis() as u64;
        let mut to_kill = Vec::new();
        let mut aborted = Vec::new();
        for worker in self.workers.iter() {
            if let Some(sent) = worker.abort_sent_ms {
                if now.saturating_sub(sent) >= ABORT_GRACE_MS {
                    to_kill.push(worker.pid);
                }
                continue;
            }
            let views = self.heartbeats.view_worker(worker.slot);
            if let Some(timeout) = find_timeout(worker, &views, now, timeout_ms) {
                tracing::error!("WORKER TIMEOUT (pid:{}): {}", timeout.pid, timeout.reason);
                process::send_signal(timeout.pid, Signal::SIGABRT);
                aborted.push(timeout.pid);
            }
        }
        for pid in to_kill {
            process::send_signal(pid, Signal::SIGKILL);
        }
        for pid in aborted {
            if let Some(worker) = self.workers.get_mut(pid) {
                worker.abort_sent_ms = Some(now);
            }
        }
    }

    fn manage_workers(&mut self) {
        for pid in self.workers.excess(self.target) {
            if let Some(worker) = self.workers.get_mut(pid) {
                worker.retiring = true;
            }
            process::send_signal(pid, Signal::SIGTERM);
        }
        if monotonic_ms() < self.next_spawn_ms {
            return;
        }
        for _ in 0..self.workers.missing(self.target) {
            if !self.spawn_worker() || self.boot_failures > 0 {
                break;
            }
        }
    }

    fn spawn_worker(&mut self) -> bool {
        let Some(slot) = self.workers.free_slot() else {
            return false;
        };
        self.heartbeats.reset_worker(slot, monotonic_ms());
        let mask = signals::block_all();
        let forked = match &self.preloaded {
            Some(_) => wsgi::fork_with_python(process::fork, |r| matches!(r, Ok(Forked::Child))),
            None => process::fork(),
        };
        match forked {
            Ok(Forked::Child) => self.become_worker(slot, &mask),
            Ok(Forked::Parent { child }) => {
                signals::restore_mask(&mask);
                self.workers.add(child, slot, monotonic_ms());
                true
            }
            Err(error) => {
                signals::restore_mask(&mask);
                tracing::error!("{error}");
                false
            }
        }
    }

    fn become_worker(&mut self, slot: usize, mask: &nix::sys::signal::SigSet) -> ! {
        if let Some(queue) = self.signals.take() {
            queue.forget_in_child();
        }
        signals::restore_mask(mask);
        let code = worker::run(WorkerContext {
            settings: &self.settings,
            listeners: &self.listeners,
            heartbeats: self.heartbeats.clone(),
            slot,
            preloaded: self.preloaded.as_ref(),
        });
        std::process::exit(code)
    }
}

fn signal_name(signal: Signal) -> String {
    signal
        .as_str()
        .trim_start_matches("SIG")
        .to_ascii_lowercase()
}
