//! A worker process, from just after fork to exit: Python and the app, its hooks, the request
//! threads, and the reactor thread with its duties (reactor.rs). Returns an exit code; never forks
//! and never touches other workers.
mod hooks;
pub mod link;
mod observe;
mod reactor;
mod wall_clock;
pub mod zygote;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::config::{LogFormat, Settings, WorkerClass};
use crate::error::{APP_LOAD_ERROR, EXIT_FAILURE, EXIT_OK, WORKER_BOOT_ERROR};
use crate::heartbeat::{Heartbeats, Standing};
use crate::http::server::{pool_thread_loop, ServeEnd};
use crate::http::TrustedPeers;
use crate::http::{ExchangeConfig, Handler, HeadRules, Local, Runner, ServeConfig};
use crate::logging::AccessLog;
use crate::process::{current_pid, monotonic_ms, set_process_title};
use crate::sockets::Listener;
use crate::wsgi::{self, App, EnvironSettings, PythonSetup};
use observe::{Observed, Reporting, Sinks};
use reactor::{reactor, Duties};

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
    if !known_to_master(&ctx, pid) {
        tracing::warn!("Worker (pid:{pid}) was forked for a request the master gave up on (its answer was lost); exiting without serving");
        return EXIT_OK;
    }
    let me = hooks::Me::of(&ctx);
    let reporting = Reporting::new(ctx.settings, pid);
    let mut config = serve_config(ctx.settings);
    config.on_connection = reporting.lane.map(observe::count_connections);
    let code = match boot(&ctx, &me, &config, &reporting) {
        Ok(handler) => serve_booted(&ctx, handler, config, &reporting),
        Err(code) => code,
    };
    tracing::info!("Worker exiting (pid: {pid})");
    hooks::worker_exit(&me);
    code
}

/// Waits until the master has recorded this worker's pid. A worker whose fork answer never
/// reached the master (its zygote died between fork and answer) must exit before it accepts a
/// connection: unseen, it would serve beside its replacement, unbounded by any timeout, and drop
/// what it held when it found its slot taken. The master records the pid within microseconds of
/// reading the answer, so the wait is short unless the worker is such a ghost.
fn known_to_master(ctx: &WorkerContext<'_>, pid: i32) -> bool {
    let slot = ctx.heartbeats.slot(ctx.slot, 0);
    let deadline = monotonic_ms() + link::FORK_REPLY_TIMEOUT.as_millis() as u64 + 1_000;
    loop {
        match slot.standing(ctx.owner, pid) {
            Standing::Known => return true,
            Standing::Replaced => return false,
            Standing::Pending if monotonic_ms() >= deadline => return false,
            Standing::Pending => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn serve_booted(
    ctx: &WorkerContext<'_>,
    handler: Arc<dyn Handler>,
    config: ServeConfig,
    reporting: &Reporting,
) -> i32 {
    ctx.heartbeats.slot(ctx.slot, 0).set_booted(monotonic_ms());
    let served = serve_until_stopped(ctx, handler, config, reporting);
    observe::flush_reports(reporting.statsd.as_deref());
    match served {
        Ok(ServeEnd::MaxRequests) => tracing::info!("Autorestarting worker after current request."),
        Ok(ServeEnd::Shutdown) => {}
        Err(error) => {
            tracing::error!("worker failed: {error}");
            return EXIT_FAILURE;
        }
    }
    EXIT_OK
}

fn title(settings: &Settings) -> String {
    let name = settings.proc_name.as_deref().unwrap_or(&settings.wsgi_app);
    format!("rgunicorn: worker [{name}]")
}

/// post_fork (before the privileges drop, as in gunicorn), Python, the app, post_worker_init and
/// the request handler; Err is the exit code that tells the master why.
fn boot(
    ctx: &WorkerContext<'_>,
    me: &hooks::Me<'_>,
    config: &ServeConfig,
    reporting: &Reporting,
) -> Result<Arc<dyn Handler>, i32> {
    let settings = ctx.settings;
    // RGUNICORN_WORKER_ID is set for post_fork when there is Python already, and before the app
    // is imported either way.
    let identify = || reporting.worker_id.map(wsgi::identify_worker);
    if wsgi::is_running() {
        identify();
    }
    hooks::post_fork(me)?;
    if let Some(identity) = ctx.identity {
        crate::privileges::drop_to(identity).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    }
    tracing::info!("Booting worker with pid: {}", current_pid());
    start_python(settings).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    identify();
    let loaded;
    let app = match ctx.preloaded {
        Some(app) => app,
        None => {
            loaded = App::load(&settings.wsgi_app).map_err(|e| boot_failed(&e, APP_LOAD_ERROR))?;
            &loaded
        }
    };
    let hook_thread =
        hooks::watch_signals(me).map_err(|e| crate::Error::io("start the hook thread", e));
    hook_thread.map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let tracebacks = match settings.log_format {
        LogFormat::Json => crate::logging::traceback_file(current_pid()),
        LogFormat::Text => None,
    };
    wsgi::enable_fault_handler(tracebacks.as_deref())
        .map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    hooks::post_worker_init(me)?;
    let request_hooks = wsgi::hooks::for_requests(&me.worker(true));
    let wsgi_handler = app
        .handler(environ_settings(settings, ctx.listeners), request_hooks)
        .map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let sinks = Sinks {
        access: AccessLog::open(settings).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?,
        reporting: reporting.clone(),
    };
    Ok(Arc::new(Observed::new(
        wsgi_handler,
        (ctx.heartbeats.clone(), ctx.slot),
        (config.started.clone(), config.max_requests),
        sinks.any(),
    )))
}

/// Logs why the process cannot boot, and keeps the message where the master can answer a reload
/// with it (`rgunicorn ctl reload`).
pub(crate) fn boot_failed(error: &crate::Error, code: i32) -> i32 {
    tracing::error!("{error}");
    if let Some(shared) = crate::metrics::shared() {
        shared.set_boot_error(&error.to_string());
    }
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
    })?;
    wsgi::install_prometheus_identity();
    Ok(())
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
        on_connection: None,
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
    config: ServeConfig,
    reporting: &Reporting,
) -> std::io::Result<ServeEnd> {
    let settings = ctx.settings;
    let listeners = ctx
        .listeners
        .iter()
        .map(Listener::try_clone)
        .collect::<crate::Result<Vec<_>>>();
    let listeners = listeners.map_err(|e| std::io::Error::other(e.to_string()))?;
    let duties = Duties {
        heartbeats: ctx.heartbeats.clone(),
        slot: ctx.slot,
        owner: ctx.owner,
        reload: settings.reload,
        reporting: reporting.clone(),
        access_log: settings.accesslog.is_some(),
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
