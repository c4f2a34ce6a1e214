//! The master (gunicorn's arbiter): binds the listeners, forks and supervises the workers, and
//! turns signals into actions. Single-threaded, no tokio, and no Python unless preload_app; it
//! decides with the pure functions of `workers` and acts through `process` and `signals`.
mod reexec;
mod signals;
mod spawn;
mod startup;
mod supervise;
mod workers;
mod zygote;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::{self, Environment, Settings};
use crate::heartbeat::Heartbeats;
use crate::process::{self, current_pid, monotonic_ms};
use crate::sockets::Listener;
use crate::wsgi::App;
use crate::{Error, Result};

/// The master wakes at least this often to reap, check heartbeats and keep the worker count.
const TICK: Duration = Duration::from_secs(1);
use signals::SignalQueue;
use workers::WorkerSet;

/// Heartbeat slots beyond the configured workers, room for TTIN.
const SPARE_SLOTS: usize = 64;

/// One configuration and its heartbeat table; each HUP starts a new one.
struct Generation {
    id: u64,
    settings: Arc<Settings>,
    heartbeats: Arc<Heartbeats>,
    /// Whether any worker of this generation finished booting.
    booted: bool,
    /// The process its workers are forked from, once started.
    zygote: Option<zygote::Zygote>,
}

impl Generation {
    fn new(id: u64, settings: Settings) -> Result<Self> {
        let slots = settings.workers as usize + SPARE_SLOTS;
        let heartbeats = Arc::new(Heartbeats::new(slots, settings.threads.max(1) as usize)?);
        Ok(Generation {
            id,
            settings: Arc::new(settings),
            heartbeats,
            booted: false,
            zygote: None,
        })
    }
}

enum Phase {
    Running,
    Stopping { deadline_ms: u64 },
}

/// How the master was started, kept to re-read the configuration and to re-exec itself.
struct Launch {
    argv: Vec<OsString>,
    env: Environment,
    /// The directory rgunicorn was started in: relative paths given on the command line are
    /// resolved against it, also on reload after chdir.
    dir: PathBuf,
}

struct Arbiter {
    launch: Launch,
    generations: Vec<Generation>,
    listeners: Vec<Listener>,
    signals: Option<SignalQueue>,
    workers: WorkerSet,
    target: usize,
    preloaded: Option<App>,
    phase: Phase,
    /// A HUP's new generation is booting; the older ones retire once it serves.
    reloading: bool,
    boot_failures: u32,
    next_spawn_ms: u64,
    exit_code: i32,
    /// The new master started by USR2, while it runs.
    reexec_pid: Option<i32>,
    notifier: crate::systemd::Notifier,
    pidfile: Option<crate::pidfile::Pidfile>,
    /// The workers' user and group, when they drop privileges.
    identity: Option<crate::privileges::Identity>,
    sockets_from_systemd: bool,
    /// How many booted workers systemd was last told about (None before READY=1).
    announced_workers: Option<usize>,
    next_watchdog_ms: u64,
}

/// Runs the server until it is told to stop; returns the process exit code.
pub fn run(settings: Settings, argv: Vec<OsString>, env: Environment) -> Result<i32> {
    tracing::info!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION"));
    let dir = std::env::current_dir().map_err(|e| Error::io("read working directory", e))?;
    let settings = resolve_paths(settings, &dir)?;
    let prepared = startup::prepare(&settings)?;
    let listeners = prepared.listeners;
    for listener in &listeners {
        tracing::info!("Listening at: {} ({})", listener.describe(), current_pid());
    }
    tracing::info!("Using worker: {}", settings.worker_class.as_str());
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
    let mut arbiter = Arbiter {
        target: settings.workers as usize,
        workers: WorkerSet::new(settings.workers as usize + SPARE_SLOTS),
        generations: vec![Generation::new(0, settings)?],
        signals: Some(SignalQueue::install()?),
        launch: Launch { argv, env, dir },
        listeners,
        preloaded,
        phase: Phase::Running,
        reloading: false,
        boot_failures: 0,
        next_spawn_ms: 0,
        exit_code: 0,
        reexec_pid: None,
        notifier: crate::systemd::Notifier::from_env(),
        pidfile: prepared.pidfile,
        identity: prepared.identity,
        sockets_from_systemd: prepared.sockets_from_systemd,
        announced_workers: None,
        next_watchdog_ms: 0,
    };
    if reexec::is_upgrade() {
        arbiter.notifier.main_pid(current_pid());
    }
    arbiter.run_loop();
    arbiter.clean_up();
    tracing::info!("Shutting down: Master");
    Ok(arbiter.exit_code)
}

/// gunicorn's chdir happens in the master before anything loads; paths given relative to where
/// rgunicorn was started (virtualenv, chdir itself) are made absolute first.
fn resolve_paths(mut settings: Settings, launch_dir: &Path) -> Result<Settings> {
    settings.virtualenv = settings.virtualenv.map(|venv| launch_dir.join(venv));
    if let Some(dir) = settings.chdir.take() {
        let dir = launch_dir.join(dir);
        std::env::set_current_dir(&dir)
            .map_err(|e| Error::io(format!("chdir to {}", dir.display()), e))?;
        settings.chdir = Some(dir);
    }
    Ok(settings)
}

fn preload(settings: &Settings) -> Result<App> {
    crate::worker::start_python(settings)?;
    App::load(&settings.wsgi_app)
}

impl Arbiter {
    fn current(&self) -> &Generation {
        self.generations
            .last()
            .expect("there is always a current generation")
    }

    fn settings(&self) -> &Settings {
        &self.current().settings
    }

    fn generation(&self, id: u64) -> Option<&Generation> {
        self.generations.iter().find(|g| g.id == id)
    }

    fn run_loop(&mut self) {
        loop {
            let delivered = self
                .signals
                .as_ref()
                .map(|s| s.wait(self.until_next_duty()))
                .unwrap_or_default();
            for signal in delivered {
                self.handle_signal(signal);
            }
            self.reap_workers();
            self.note_boots();
            self.murder_workers();
            self.tell_systemd();
            match self.phase {
                Phase::Running => self.manage_workers(),
                Phase::Stopping { deadline_ms } => {
                    if self.workers.is_empty() {
                        return;
                    }
                    if monotonic_ms() >= deadline_ms {
                        for pid in self.workers.pids() {
                            self.kill(pid);
                        }
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
            Signal::SIGHUP => self.reload(),
            Signal::SIGTTIN => self.target += 1,
            Signal::SIGTTOU => self.target = self.target.saturating_sub(1).max(1),
            Signal::SIGUSR1 => {
                let _ = crate::logging::reopen();
                self.signal_all(Signal::SIGUSR1);
            }
            Signal::SIGUSR2 => self.reexec(),
            Signal::SIGWINCH => {
                tracing::info!("graceful stop of workers");
                self.target = 0;
            }
            _ => {}
        }
    }

    /// Graceful (TERM) or fast (QUIT) stop of every worker, bounded by graceful_timeout.
    fn stop(&mut self, signal: Signal) {
        if let Phase::Running = self.phase {
            self.notifier.stopping();
            let deadline_ms = monotonic_ms() + self.settings().graceful_timeout.as_millis() as u64;
            self.phase = Phase::Stopping { deadline_ms };
        }
        self.signal_all(signal);
    }

    fn signal_all(&self, signal: Signal) {
        for pid in self.workers.pids() {
            process::send_signal(pid, signal);
        }
    }

    /// HUP: re-read the configuration and start a new generation of workers beside the running
    /// one; the old generation retires only once the new one serves (see `supervise`).
    fn reload(&mut self) {
        self.notifier.reloading();
        self.announced_workers = None;
        let fresh = config::reload(self.settings(), self.launch.argv.clone(), &self.launch.env)
            .and_then(|settings| resolve_paths(settings, &self.launch.dir));
        let settings = match fresh {
            Ok(settings) => settings,
            Err(error) => {
                return tracing::error!("reload failed, the running workers keep serving: {error}")
            }
        };
        if let Err(error) = crate::logging::init(&settings) {
            tracing::error!("reload could not reopen the logs: {error}");
        }
        let id = self.current().id + 1;
        match Generation::new(id, settings) {
            Ok(generation) => {
                self.target = generation.settings.workers as usize;
                self.generations.push(generation);
                self.reloading = true;
                self.boot_failures = 0;
                self.next_spawn_ms = 0;
            }
            Err(error) => tracing::error!("reload failed: {error}"),
        }
    }

    fn clean_up(&mut self) {
        if self.reexec_pid.is_none() && !self.sockets_from_systemd {
            for listener in &self.listeners {
                listener.remove_file();
            }
        }
    }
}

fn signal_name(signal: Signal) -> String {
    signal
        .as_str()
        .trim_start_matches("SIG")
        .to_ascii_lowercase()
}
