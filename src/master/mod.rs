//! The master (gunicorn's arbiter): binds the listeners, forks and supervises the workers, and
//! turns signals into actions. Single-threaded, no tokio, and no Python unless preload_app; it
//! decides with the pure functions of `workers` and acts through `process` and `signals`.
mod control;
mod control_show;
mod converge;
mod deadlines;
mod effects;
mod endpoint;
mod events;
mod exits;
mod hooks;
mod invariants;
mod model;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod model_world;
mod observe;
mod reexec;
mod scrape;
mod signals;
mod spawn;
mod startup;
#[cfg(test)]
mod tally_tests;
mod telemetry;
mod workers;
mod zygote;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Environment, Settings};
use crate::heartbeat::Heartbeats;
use crate::process::{self, current_pid};
use crate::sockets::Listener;
use crate::wsgi::App;
use crate::{Error, Result};
use events::{Event, GenSpec};
use model::Model;
use signals::SignalQueue;

/// The master wakes at least this often to reap, check heartbeats and keep the worker count.
const TICK: Duration = Duration::from_secs(1);

/// While a worker boots, the master looks at its heartbeat this often.
const BOOT_POLL: Duration = Duration::from_millis(20);

/// Heartbeat slots beyond the configured workers, room for TTIN.
const SPARE_SLOTS: usize = 64;

/// One configuration generation's settings and heartbeat table (the model has the rest).
struct Table {
    id: u64,
    settings: Arc<Settings>,
    heartbeats: Arc<Heartbeats>,
}

impl Table {
    fn new(id: u64, settings: Settings) -> Result<Self> {
        let slots = settings.workers as usize + SPARE_SLOTS;
        let heartbeats = Arc::new(Heartbeats::new(slots, settings.threads.max(1) as usize)?);
        Ok(Table {
            id,
            settings: Arc::new(settings),
            heartbeats,
        })
    }

    fn spec(&self) -> GenSpec {
        let settings = &self.settings;
        GenSpec {
            id: self.id,
            workers: settings.workers as usize,
            graceful_ms: settings.graceful_timeout.as_millis() as u64,
            slots: self.heartbeats.worker_slots(),
            zygote: !settings.preload_app && !settings.reload,
            boot_timeout_ms: settings.timeout.as_millis() as u64,
        }
    }
}

/// How the master was started, kept to re-read the configuration and to re-exec itself.
struct Launch {
    argv: Vec<OsString>,
    env: Environment,
    program: crate::cli::Program,
    /// The directory rgunicorn was started in: relative paths given on the command line are
    /// resolved against it, also on reload after chdir.
    dir: PathBuf,
}

/// The effects side of the master: everything the model decides is carried out through this.
struct Arbiter {
    launch: Launch,
    model: Model,
    tables: Vec<Table>,
    zygotes: Vec<zygote::Link>,
    listeners: Vec<Listener>,
    signals: Option<SignalQueue>,
    preloaded: Option<App>,
    /// Ids of fork requests (and the workers' claims on their heartbeat slots); never reused.
    next_request: u64,
    exit: Option<i32>,
    notifier: crate::systemd::Notifier,
    pidfile: Option<crate::pidfile::Pidfile>,
    /// The workers' user and group, when they drop privileges.
    identity: Option<crate::privileges::Identity>,
    sockets_from_systemd: bool,
    /// The listeners were handed to a new master (USR2): their files are not ours to remove.
    handed_over: bool,
    next_watchdog_ms: u64,
    hook_state: hooks::HookState,
    telemetry: telemetry::Telemetry,
    endpoints: endpoint::Endpoints,
    control: control::Control,
}

/// Runs the server until it is told to stop; returns the process exit code.
pub fn run(
    settings: Settings,
    argv: Vec<OsString>,
    env: Environment,
    program: crate::cli::Program,
) -> Result<i32> {
    tracing::info!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION"));
    let dir = std::env::current_dir().map_err(|e| Error::io("read working directory", e))?;
    let settings = resolve_paths(settings, &dir)?;
    let prepared = startup::prepare(&settings, || hooks::at_start(&settings))?;
    for listener in &prepared.listeners {
        tracing::info!("Listening at: {} ({})", listener.describe(), current_pid());
    }
    tracing::info!("Using worker: {}", settings.worker_class.as_str());
    let name = settings
        .proc_name
        .clone()
        .unwrap_or_else(|| settings.wsgi_app.clone());
    process::set_process_title(&format!("rgunicorn: master [{name}]"));
    let shared = crate::metrics::install()?;
    let telemetry = telemetry::Telemetry::new(shared, &settings, prepared.identity.as_ref());
    let upgrade = reexec::is_upgrade();
    let endpoints = endpoint::Endpoints::open(&settings, upgrade)?;
    let preloaded = settings
        .preload_app
        .then(|| preload(&settings))
        .transpose()?;
    let table = Table::new(0, settings)?;
    let mut arbiter = Arbiter {
        model: Model::new(table.spec()),
        tables: vec![table],
        zygotes: Vec::new(),
        signals: Some(SignalQueue::install()?),
        launch: Launch {
            argv,
            env,
            program,
            dir,
        },
        listeners: prepared.listeners,
        preloaded,
        next_request: 1,
        exit: None,
        notifier: crate::systemd::Notifier::from_env(),
        pidfile: prepared.pidfile,
        identity: prepared.identity,
        sockets_from_systemd: prepared.sockets_from_systemd,
        handed_over: false,
        next_watchdog_ms: 0,
        hook_state: hooks::HookState::new(),
        telemetry,
        endpoints,
        control: control::Control::default(),
    };
    if upgrade {
        arbiter.notifier.main_pid(current_pid());
    }
    let code = arbiter.run_loop();
    arbiter.answer_at_exit(code);
    arbiter.clean_up();
    tracing::info!("Shutting down: Master");
    Ok(code)
}

/// gunicorn's chdir happens in the master before anything loads; paths given relative to where
/// rgunicorn was started (virtualenv, chdir itself) are made absolute first.
fn resolve_paths(mut settings: Settings, launch_dir: &Path) -> Result<Settings> {
    settings.virtualenv = settings.virtualenv.map(|venv| launch_dir.join(venv));
    settings.control_socket = settings.control_socket.map(|path| launch_dir.join(path));
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
    /// Observe, decide, act, until the model says exit.
    fn run_loop(&mut self) -> i32 {
        let mut events = vec![Event::Tick];
        loop {
            for event in events.drain(..) {
                self.apply(event);
            }
            self.serve_scrapes();
            self.serve_control();
            let workers = self.model.workers().count();
            self.telemetry.tick(process::monotonic_ms(), workers);
            if let Some(code) = self.exit {
                return code;
            }
            self.ping_watchdog();
            events = self.observe(self.sleep_time());
        }
    }

    /// Feeds one event to the model and carries out its actions, and what those report back.
    fn apply(&mut self, event: Event) {
        let mut before = self.before(&event);
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            if let Event::Exited { pid, status } = event {
                self.telemetry.reaped(pid, status);
                self.control.saw_exit(pid, status);
            }
            let actions = self.model.step(event, process::monotonic_ms());
            self.child_exit(&mut before);
            for action in actions {
                self.before_action(&action);
                let age = self.next_request;
                let answer = self.execute(action);
                self.after_action(age, answer.as_ref());
                queue.extend(answer);
            }
        }
        self.forget_exited_zygotes();
        self.after(before);
    }

    fn sleep_time(&self) -> Duration {
        let now = process::monotonic_ms();
        let mut sleep = TICK;
        if let Some(wake) = self.model.next_wake(now) {
            sleep = sleep.min(Duration::from_millis(wake.saturating_sub(now)));
        }
        if let Some(deadline) = self.endpoints.next_deadline() {
            sleep = sleep.min(Duration::from_millis(deadline.saturating_sub(now)));
        }
        if let Some(interval) = self.notifier.watchdog_interval() {
            let left = self.next_watchdog_ms.saturating_sub(now);
            sleep = sleep.min(Duration::from_millis(left).min(interval));
        }
        if self
            .model
            .workers()
            .any(|w| w.state == workers::WorkerState::Booting)
        {
            sleep = sleep.min(BOOT_POLL);
        }
        sleep
    }

    fn ping_watchdog(&mut self) {
        let now = process::monotonic_ms();
        if let Some(interval) = self.notifier.watchdog_interval() {
            if now >= self.next_watchdog_ms {
                self.notifier.watchdog();
                self.next_watchdog_ms = now + interval.as_millis() as u64;
            }
        }
    }

    fn table(&self, id: u64) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// In a freshly forked child: drop what belongs to the master (its signal handlers, the
    /// other zygotes' links), so the child neither runs the master's handlers nor keeps a link
    /// open that should read as closed.
    fn become_child(&mut self) {
        if let Some(queue) = self.signals.take() {
            queue.forget_in_child();
        }
        self.zygotes.clear();
        self.endpoints = endpoint::Endpoints::default();
    }

    fn clean_up(&mut self) {
        self.telemetry.flush();
        if !self.handed_over {
            self.endpoints.remove_files();
        }
        if !self.handed_over && !self.sockets_from_systemd {
            for listener in &self.listeners {
                listener.remove_file();
            }
        }
    }
}
