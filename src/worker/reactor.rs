//! The worker's reactor thread: `http::serve` on a current-thread tokio runtime, and the duties
//! beside it (the worker's signals, the heartbeat, code reload, idle heap trim, flushing the access
//! log and statsd). Never runs the app itself: requests go to the handler the runner holds.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use super::hooks;
use super::observe::{self, Reporting};
use crate::error::EXIT_OK;
use crate::heartbeat::Heartbeats;
use crate::http::server::{ServeEnd, Shutdown};
use crate::http::{serve, Runner, ServeConfig};
use crate::process::{monotonic_ms, parent_pid};
use crate::sockets::Listener;
use crate::wsgi;
/// The tokio side: serves until TERM (graceful), INT/QUIT (immediate) or max_requests.
pub(super) fn reactor(
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
        watch_signals(stop_tx.clone(), !hooks::takes_interrupts())?;
        crate::process::unblock_all_signals();
        tokio::spawn(trim_when_idle(config.started.clone()));
        if duties.reload {
            tokio::spawn(watch_code(stop_tx));
        }
        if duties.access_log || duties.reporting.statsd.is_some() {
            tokio::spawn(observe::flush_often(duties.reporting.statsd.clone()));
        }
        tokio::spawn(beat(duties));
        serve(listeners, runner, config, stop_rx).await
    })
}

/// What the reactor thread does besides serving.
pub(super) struct Duties {
    pub(super) heartbeats: Arc<Heartbeats>,
    pub(super) slot: usize,
    pub(super) owner: u64,
    /// `reload`: stop (and so be replaced with fresh code) when an imported Python file changes.
    pub(super) reload: bool,
    /// Its memory goes to the lane each beat.
    pub(super) reporting: Reporting,
    /// Access log lines and statsd batches wait at most BATCH_MS.
    pub(super) access_log: bool,
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
/// the worker at once, even mid-request (gunicorn's fast stop; with `interrupts` false the hook
/// thread takes INT and QUIT, to run worker_int first); USR1 reopens the logs.
fn watch_signals(stop: watch::Sender<Shutdown>, interrupts: bool) -> std::io::Result<()> {
    if interrupts {
        crate::process::exit_on_interrupt_or_quit()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    crate::process::exit_on_second_term().map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { let _ = stop.send(Shutdown::Drain); }
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

/// Set when the worker decides to stop by itself (code reload); max_requests is reported by the
/// request that reaches it (`observe.rs`), since an inline request keeps the reactor busy.
static RETIRING_ON_OWN: AtomicBool = AtomicBool::new(false);

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
/// the master went away or gave the slot to another worker (two workers must never share a slot;
/// a fork whose answer the master never got already exits before serving, in `known_to_master`).
async fn beat(duties: Duties) {
    let master = parent_pid();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let record = duties.heartbeats.slot(duties.slot, 0);
    loop {
        tick.tick().await;
        record.beat(monotonic_ms());
        if let Some(lane) = &duties.reporting.lane {
            lane.set_memory(crate::process::unshared_memory().unwrap_or(0));
        }
        if RETIRING_ON_OWN.load(Ordering::Relaxed) {
            record.set_retiring_code_changed();
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
