//! The master's side of observability that follows its events: counting the model's tallies in
//! shared memory, giving a reaped worker's id back, prometheus_client's multiprocess directory
//! (emptied at start, a dead worker's live gauges removed), and the JSON record of a timed-out
//! worker with its Python traceback. Acts on what the model decided; decides nothing itself.
use std::path::{Path, PathBuf};

use super::events::Tally;
use super::workers::Timeout;
use crate::config::{LogFormat, Settings};
use crate::logging::CRITICAL;
use crate::metrics::Shared;
use crate::process::ExitStatus;

/// prometheus_client's live gauge modes: their files go with the process that wrote them.
const LIVE_GAUGE_MODES: [&str; 5] = ["liveall", "livesum", "livemax", "livemin", "livemostrecent"];

pub(super) struct Telemetry {
    shared: &'static Shared,
    /// prometheus_client's multiprocess directory, when the workers use one.
    multiproc: Option<PathBuf>,
    /// Reported timeouts (JSON logs) waiting for the worker's exit and traceback.
    awaiting: Vec<Timeout>,
    /// Where JSON-logging workers' tracebacks go (the master made it, and removes it).
    tracebacks: Option<PathBuf>,
    /// When gunicorn.workers goes to statsd next.
    next_gauge_ms: u64,
}

impl Telemetry {
    pub fn new(
        shared: &'static Shared,
        settings: &Settings,
        owner: Option<&crate::privileges::Identity>,
    ) -> Self {
        let mut telemetry = Telemetry {
            shared,
            multiproc: multiproc_dir(settings),
            awaiting: Vec::new(),
            tracebacks: None,
            next_gauge_ms: 0,
        };
        if let Some(dir) = &telemetry.multiproc {
            empty_multiproc_dir(dir);
        }
        telemetry.configure(settings, owner);
        telemetry
    }

    /// A configuration (start or HUP): statsd as it says, and JSON logs need the traceback
    /// directory.
    pub fn configure(&mut self, settings: &Settings, owner: Option<&crate::privileges::Identity>) {
        if let Err(error) = crate::statsd::configure(settings) {
            tracing::error!("statsd is off: {error}");
        }
        if settings.log_format != LogFormat::Json || self.tracebacks.is_some() {
            return;
        }
        match make_traceback_dir(owner) {
            Ok(dir) => {
                crate::logging::set_traceback_dir(dir.clone());
                self.tracebacks = Some(dir);
            }
            Err(error) => tracing::warn!("tracebacks of timed-out workers stay on stderr: {error}"),
        }
    }

    /// gunicorn.workers to statsd, once a second as gunicorn's arbiter sends it.
    pub fn tick(&mut self, now_ms: u64, workers: usize) {
        if now_ms < self.next_gauge_ms {
            return;
        }
        self.next_gauge_ms = now_ms + 1_000;
        if let Some(client) = crate::statsd::client() {
            client.gauge("gunicorn.workers", workers as u64);
        }
    }

    pub fn shared(&self) -> &'static Shared {
        self.shared
    }

    pub fn count(&self, tally: Tally) {
        match tally {
            Tally::Restart(reason) => self.shared.count_restart(reason),
            Tally::Timeout => self.shared.count_timeout(),
            Tally::BootFailure => self.shared.count_boot_failure(),
            Tally::Reload { outcome, .. } => self.shared.count_reload(outcome),
        }
    }

    /// The model reports a timeout: at once as a text line, or with JSON logs once the worker's
    /// traceback is written (at its exit).
    pub fn report_timeout(&mut self, timeout: Timeout) {
        if self.tracebacks.is_none() || !crate::logging::is_json() {
            let Timeout { pid, reason, .. } = timeout;
            return tracing::error!(target: CRITICAL, "WORKER TIMEOUT (pid:{pid}): {reason}");
        }
        self.awaiting.push(timeout);
    }

    /// A child was reaped: its worker id is free again, its live gauges are gone, and a
    /// traceback it wrote goes into the log.
    pub fn reaped(&mut self, pid: i32, status: ExitStatus) {
        let id = self.shared.release(pid);
        if let Some(dir) = &self.multiproc {
            remove_live_gauges(dir, id, pid);
        }
        let traceback = self.take_traceback(pid);
        match self.awaiting.iter().position(|t| t.pid == pid) {
            Some(i) => log_timeout(&self.awaiting.swap_remove(i), traceback.as_deref()),
            None => {
                if let (Some(traceback), ExitStatus::Signal(signal)) = (traceback, status) {
                    tracing::error!(
                        worker_pid = pid,
                        signal,
                        traceback = traceback.as_str(),
                        "Worker (pid:{pid}) was killed by signal {signal}"
                    );
                }
            }
        }
    }

    /// Timeouts still waiting when the master exits are logged without their traceback.
    pub fn flush(&mut self) {
        for timeout in std::mem::take(&mut self.awaiting) {
            log_timeout(&timeout, None);
        }
        if let Some(dir) = self.tracebacks.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn take_traceback(&self, pid: i32) -> Option<String> {
        self.tracebacks.as_ref()?;
        let path = crate::logging::traceback_file(pid)?;
        let text = std::fs::read_to_string(&path).ok();
        let _ = std::fs::remove_file(&path);
        text.filter(|t| !t.trim().is_empty())
    }
}

/// A directory only the workers' user can read, for their tracebacks.
fn make_traceback_dir(owner: Option<&crate::privileges::Identity>) -> crate::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let name = format!("rgunicorn-{}-tracebacks", std::process::id());
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| crate::Error::io(format!("create {}", dir.display()), e))?;
    if let Some(owner) = owner {
        crate::privileges::chown_path(&dir, owner)?;
    }
    Ok(dir)
}

fn log_timeout(timeout: &Timeout, traceback: Option<&str>) {
    let Timeout {
        pid,
        reason,
        request,
        thread,
        elapsed_ms,
    } = timeout;
    tracing::error!(
        target: CRITICAL,
        worker_pid = pid,
        request = request.as_deref(),
        thread = thread.map(|t| t as u64),
        seconds = *elapsed_ms as f64 / 1000.0,
        traceback = traceback.map(str::trim_end),
        "WORKER TIMEOUT (pid:{pid}): {reason}"
    );
}

/// PROMETHEUS_MULTIPROC_DIR as the workers will see it: raw_env first, then the environment.
fn multiproc_dir(settings: &Settings) -> Option<PathBuf> {
    let names = ["PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"];
    let from_raw_env = names.iter().find_map(|name| {
        settings
            .raw_env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    });
    let from_env = || names.iter().find_map(|name| std::env::var(name).ok());
    from_raw_env
        .or_else(from_env)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

/// prometheus_client wants the directory empty at start; only its own `*.db` files are removed.
fn empty_multiproc_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "db") {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!("cannot empty {}: {error}", path.display());
            }
        }
    }
}

/// What prometheus_client's `mark_process_dead` does, for the names a worker or another process
/// of ours writes under (see wsgi/worker_identity.py).
fn remove_live_gauges(dir: &Path, id: Option<u32>, pid: i32) {
    let names = id
        .map(|id| id.to_string())
        .into_iter()
        .chain([format!("pid{pid}"), pid.to_string()]);
    for name in names {
        for mode in LIVE_GAUGE_MODES {
            let _ = std::fs::remove_file(dir.join(format!("gauge_{mode}_{name}.db")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiproc_dir_prefers_raw_env_and_ignores_empty() {
        let mut settings = crate::config::default_settings();
        settings.raw_env = vec![("PROMETHEUS_MULTIPROC_DIR".into(), "/run/prom".into())];
        assert_eq!(multiproc_dir(&settings), Some(PathBuf::from("/run/prom")));
        settings.raw_env = vec![("PROMETHEUS_MULTIPROC_DIR".into(), String::new())];
        assert_eq!(multiproc_dir(&settings), None);
    }

    #[test]
    fn a_dead_worker_loses_its_live_gauges_only() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-multiproc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            "gauge_livesum_3.db",
            "gauge_all_3.db",
            "counter_3.db",
            "gauge_liveall_pid77.db",
            "gauge_livesum_4.db",
        ];
        for file in files {
            std::fs::write(dir.join(file), b"").unwrap();
        }
        remove_live_gauges(&dir, Some(3), 77);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["counter_3.db", "gauge_all_3.db", "gauge_livesum_4.db"]
        );
        std::fs::write(dir.join("keep.txt"), b"").unwrap();
        empty_multiproc_dir(&dir);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "only *.db files are removed");
        let _ = std::fs::remove_dir_all(dir);
    }
}
