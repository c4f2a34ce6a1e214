//! A worker process, from just after fork to exit: Python and the app, the tokio reactor, the
//! request threads, the heartbeat and the worker's own signals. Returns an exit code; never forks
//! and never touches other workers.
pub mod link;
mod observe;
pub mod zygote;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::{Settings, WorkerClass};
use crate::error::{APP_LOAD_ERROR, EXIT_FAILURE, EXIT_OK, WORKER_BOOT_ERROR};
use crate::heartbeat::Heartbeats;
use crate::http::server::{pool_thread_loop, ServeEnd, Shutdown};
use crate::http::{serve, ExchangeConfig, Handler, HeadRules, Local, Runner, ServeConfig};
use crate::logging::AccessLog;
use crate::process::{current_pid, monotonic_ms, parent_pid, set_process_title};
use crate::sockets::Listener;
use crate::wsgi::{self, App, EnvironSettings, PythonSetup, TrustedPeers};
use observe::Observed;

/// Everything a freshly forked worker receives from the master.
pub struct WorkerContext<'a> {
    pub settings: &'a Settings,
    pub listeners: &'a [Listener],
    pub heartbeats: Arc<Heartbeats>,
    pub slot: usize,
    /// The fork request this worker was started for: its claim on the heartbeat slot.
    pub owner: u64,
    /// The app the master imported itself (preload_app).
    pub preloaded: Option<&'a App>,
    /// The user and group to run as (the master keeps its own, to bind and re-exec).
    pub identity: Option<&'a crate::privileges::Identity>,
}

/// Runs the worker to the end and returns its exit code.
pub fn run(ctx: WorkerContext<'_>) -> i32 {
    let pid = current_pid();
    set_process_title(&title(ctx.settings));
    if let Some(identity) = ctx.identity {
        if let Err(error) = crate::privileges::drop_to(identity) {
            return boot_failed(&error, WORKER_BOOT_ERROR);
        }
    }
    tracing::info!("Booting worker with pid: {pid}");
    let handler = match boot(&ctx) {
        Ok(handler) => handler,
        Err(code) => return code,
    };
    ctx.heartbeats
        .slot(ctx.slot, 0)
        .set_booted(pid, monotonic_ms());
    match serve_until_stopped(&ctx, handler) {
        Ok(ServeEnd::MaxRequests) => tracing::info!("Autorestarting worker after current request."),
        Ok(ServeEnd::Shutdown) => {}
        Err(error) => {
            tracing::error!("worker failed: {error}");
            return EXIT_FAILURE;
        }
    }
    tracing::info!("Worker exiting (pid: {pid})");
    EXIT_OK
}

fn title(settings: &Settings) -> String {
    let name = settings.proc_name.as_deref().unwrap_or(&settings.wsgi_app);
    format!("rgunicorn: worker [{name}]")
}

/// Python, the app and the request handler; Err is the exit code that tells the master why.
fn boot(ctx: &WorkerContext<'_>) -> Result<Arc<dyn Handler>, i32> {
    let settings = ctx.settings;
    start_python(settings).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let loaded;
    let app = match ctx.preloaded {
        Some(app) => app,
        None => {
            loaded = App::load(&settings.wsgi_app).map_err(|e| boot_failed(&e, APP_LOAD_ERROR))?;
            &loaded
        }
    };
    wsgi::enable_fault_handler().map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let wsgi_handler = app
        .handler(environ_settings(settings, ctx.listeners))
        .map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let access = AccessLog::open(settings).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    Ok(Arc::new(Observed::new(
        wsgi_handler,
        ctx.heartbeats.clone(),
        ctx.slot,
        access,
    )))
}

pub(crate) fn boot_failed(error: &crate::Error, code: i32) -> i32 {
    tracing::error!("{error}");
    code
}

/// The environment and the interpreter an app is imported into: raw_env, the working directory
/// (the master already changed to it; a reload may name another), sys.path and the virtualenv.
/// Used by workers, the zygote, and the master itself with preload_app.
pub fn start_python(settings: &Settings) -> crate::Result<()> {
    for (key, value) in &settings.raw_env {
        std::env::set_var(key, value);
    }
    if let Some(dir) = &settings.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| crate::Error::io(format!("chdir to {}", dir.display()), e))?;
    }
    wsgi::initialize(&PythonSetup {
        virtualenv: settings.virtualenv.clone(),
        chdir: settings.chdir.clone(),
        pythonpath: settings.pythonpath.clone(),
    })
}

fn environ_settings(settings: &Settings, listeners: &[Listener]) -> EnvironSettings {
    EnvironSettings {
        only_listener: match listeners {
            [only] => Local::of(only).ok(),
            _ => None,
        },
        multithread: settings.worker_class == WorkerClass::Gthread,
        multiprocess: settings.workers > 1,
        script_name: std::env::var("SCRIPT_NAME").unwrap_or_default(),
        trusted: TrustedPeers::parse(&settings.forwarded_allow_ips),
        forwarder_headers: settings.forwarder_headers.clone(),
        secure_scheme_headers: settings.secure_scheme_headers.clone(),
    }
}

fn serve_config(settings: &Settings) -> ServeConfig {
    let timeout = if settings.timeout.is_zero() {
        Duration::from_secs(30)
    } else {
        settings.timeout
    };
    let gthread = settings.worker_class == WorkerClass::Gthread;
    let threads = settings.threads.max(1) as usize;
    ServeConfig {
        threads,
        keepalive: (gthread && !settings.keepalive.is_zero()).then_some(settings.keepalive),
        head_timeout: timeout,
        worker_connections: settings.worker_connections.max(1) as usize,
        rules: HeadRules::of(settings),
        proxy_allow: (settings.proxy_protocol)
            .then(|| TrustedPeers::parse(&settings.proxy_allow_ips)),
        max_requests: max_requests(settings),
        exchange: ExchangeConfig {
            io_timeout: timeout,
            limit_request_body: settings.limit_request_body,
            close_after_response: !gthread,
            hold_small_responses: threads == 1,
        },
        started: Arc::default(),
    }
}

/// max_requests plus a per-worker random share of the jitter, so workers do not all restart at once.
fn max_requests(settings: &Settings) -> u64 {
    if settings.max_requests == 0 {
        return 0;
    }
    let jitter = settings.max_requests_jitter;
    let spread = if jitter == 0 {
        0
    } else {
        u64::from(current_pid().unsigned_abs()) % (jitter + 1)
    };
    settings.max_requests + spread
}

fn serve_until_stopped(
    ctx: &WorkerContext<'_>,
    handler: Arc<dyn Handler>,
) -> std::io::Result<ServeEnd> {
    let settings = ctx.settings;
    let listeners = ctx
        .listeners
        .iter()
        .map(Listener::try_clone)
        .collect::<crate::Result<Vec<_>>>();
    let listeners = listeners.map_err(|e| std::io::Error::other(e.to_string()))?;
    let config = serve_config(settings);
    let duties = Duties {
        heartbeats: ctx.heartbeats.clone(),
        slot: ctx.slot,
        owner: ctx.owner,
        reload: settings.reload,
        started: config.started.clone(),
        max_requests: config.max_requests,
    };
    if config.threads == 1 {
        let runner = Runner::Inline(handler);
        return wsgi::hold_thread_state(move || reactor(listeners, runner, config, duties));
    }
    let (jobs, receiver) = mpsc::channel();
    let receiver = Arc::new(Mutex::new(receiver));
    let threads = (0..config.threads)
        .map(|index| spawn_request_thread(index, handler.clone(), receiver.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let end = reactor(listeners, Runner::Pool(jobs), config, duties);
    for thread in threads {
        let _ = thread.join();
    }
    end
}

fn spawn_request_thread(
    index: usize,
    handler: Arc<dyn Handler>,
    jobs: Arc<Mutex<mpsc::Receiver<crate::http::PoolJob>>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("request-{index}"))
        .spawn(move || {
            observe::set_thread_index(index);
            wsgi::hold_thread_state(|| pool_thread_loop(handler.as_ref(), &jobs));
        })
}

/// The tokio side: serves until TERM (graceful), INT/QUIT (immediate) or max_requests.
fn reactor(
    listeners: Vec<Listener>,
    runner: Runner,
    config: ServeConfig,
    duties: Duties,
) -> std::io::Result<ServeEnd> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(Shutdown::Serve);
        watch_signals(stop_tx.clone())?;
        crate::process::unblock_all_signals();
        tokio::spawn(trim_when_idle(config.started.clone()));
        if duties.reload {
            tokio::spawn(watch_code(stop_tx));
        }
        tokio::spawn(beat(duties));
        serve(listeners, runner, config, stop_rx).await
    })
}

/// What the reactor thread does besides serving.
struct Duties {
    heartbeats: Arc<Heartbeats>,
    slot: usize,
    owner: u64,
    /// `reload`: stop (and so be replaced with fresh code) when an imported Python file changes.
    reload: bool,
    started: Arc<AtomicU64>,
    max_requests: u64,
}

/// gunicorn's `--reload` for development: polls the files of the imported modules once a second.
async fn watch_code(stop: watch::Sender<Shutdown>) {
    let mut known = wsgi::module_mtimes();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for (path, mtime) in wsgi::module_mtimes() {
            if known.get(&path).is_some_and(|seen| *seen != mtime) {
                tracing::info!("Worker reloading: {} modified", path.display());
                RETIRING_ON_OWN.store(true, Ordering::Relaxed);
                let _ = stop.send(Shutdown::Retire);
                return;
            }
            known.insert(path, mtime);
        }
    }
}

/// TERM drains (the server stops: queued connections are served too); USR2 retires this worker
/// alone (the master sends it on reload and TTOU); a second TERM, and INT or QUIT at any time, end
/// the worker at once, even mid-request (gunicorn's fast stop); USR1 reopens the logs.
fn watch_signals(stop: watch::Sender<Shutdown>) -> std::io::Result<()> {
    crate::process::exit_on_interrupt_or_quit()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        let mut terms = 0u32;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    terms += 1;
                    if terms > 1 {
                        tracing::info!("Worker exiting at once (second TERM)");
                        crate::process::exit_immediately(EXIT_OK);
                    }
                    let _ = stop.send(Shutdown::Drain);
                }
                _ = usr2.recv() => {
                    if *stop.borrow() == Shutdown::Serve {
                        let _ = stop.send(Shutdown::Retire);
                    }
                }
                _ = usr1.recv() => { let _ = crate::logging::reopen(); }
            }
        }
    });
    Ok(())
}

/// Set when the worker decides to stop by itself (code reload); max_requests is read from the
/// request count.
static RETIRING_ON_OWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives back the heap memory requests freed once the worker has been quiet for a moment.
async fn trim_when_idle(started: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut idle = IdleTrim::default();
    loop {
        tick.tick().await;
        if idle.should_trim(started.load(Ordering::Relaxed)) {
            crate::process::release_free_heap();
        }
    }
}

/// Tells the master this worker's reactor is alive and whether it retires on its own; exits if
/// the master went away or gave the slot to another worker (a fork whose answer the master never
/// got must not serve beside the worker that replaced it).
async fn beat(duties: Duties) {
    let master = parent_pid();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let record = duties.heartbeats.slot(duties.slot, 0);
    loop {
        tick.tick().await;
        record.beat(monotonic_ms());
        let limit = duties.max_requests;
        let served_out = limit > 0 && duties.started.load(Ordering::Relaxed) >= limit;
        if served_out || RETIRING_ON_OWN.load(Ordering::Relaxed) {
            record.set_retiring();
        }
        if parent_pid() != master {
            tracing::info!("Parent changed, shutting down");
            std::process::exit(EXIT_OK);
        }
        if record.owner() != duties.owner {
            tracing::error!("Worker's heartbeat slot belongs to another worker; exiting");
            crate::process::exit_immediately(EXIT_OK);
        }
    }
}

/// Decides, tick by tick, when a worker that served requests has gone quiet: the heap memory
/// those requests freed is then given back, once per quiet spell.
#[derive(Debug, Default)]
struct IdleTrim {
    last_seen: u64,
    trimmed_at: u64,
}

impl IdleTrim {
    fn should_trim(&mut self, requests: u64) -> bool {
        let quiet = requests == self.last_seen;
        self.last_seen = requests;
        if quiet && requests != self.trimmed_at {
            self.trimmed_at = requests;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod idle_trim_tests {
    use super::IdleTrim;

    #[test]
    fn trims_once_per_quiet_spell_after_work() {
        let mut idle = IdleTrim::default();
        assert!(!idle.should_trim(0), "never served: nothing to give back");
        assert!(!idle.should_trim(5), "busy this second");
        assert!(idle.should_trim(5), "quiet after work");
        assert!(!idle.should_trim(5), "still quiet: already done");
        assert!(!idle.should_trim(9), "busy again");
        assert!(idle.should_trim(9), "quiet again");
    }
}
