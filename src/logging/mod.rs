//! Logging: the error log (a global tracing subscriber, gunicorn's text or JSON lines) and the
//! access log. Owns log formatting and the log files; never decides what to log or when to reopen.
use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::{reload, Registry};

use crate::config::{LogFormat, LogLevel, Settings};
use crate::{Error, Result};
use sink::{Console, Sink};

mod access;
mod clock;
mod format;
pub mod json;
mod json_access;
mod sink;

pub use access::{AccessLog, AccessRecord, BATCH_MS, JSON_FORMAT};

/// The error log's destination, swapped in place when `init` runs again (HUP reload).
type SinkSlot = Arc<RwLock<Arc<Sink>>>;

struct Installed {
    sink: SinkSlot,
    level: reload::Handle<LevelFilter, Registry>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The target of events gunicorn logs as CRITICAL (tracing has no such level): they show as
/// CRITICAL and count as gunicorn.log.critical.
pub const CRITICAL: &str = "critical";

/// The error log writes JSON objects (`log_format = "json"`); switched by `init`.
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether the error log of this process writes JSON lines.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Where workers write Python tracebacks when the error log is JSON: the master reads them into
/// the records of the timeouts and crashes they explain. Set by the master before it forks.
static TRACEBACKS: OnceLock<std::path::PathBuf> = OnceLock::new();

pub fn set_traceback_dir(dir: std::path::PathBuf) {
    let _ = TRACEBACKS.set(dir);
}

/// The traceback file of process `pid`, when the master made the directory.
pub fn traceback_file(pid: i32) -> Option<std::path::PathBuf> {
    TRACEBACKS
        .get()
        .map(|dir| dir.join(format!("traceback.{pid}")))
}

/// Sends `tracing` events to `errorlog` at `loglevel`. A second call (HUP reload) switches the
/// file and the level of the subscriber installed by the first.
pub fn init(settings: &Settings) -> Result<()> {
    let sink = Sink::open(&settings.errorlog, Console::Stderr)?;
    JSON.store(settings.log_format == LogFormat::Json, Ordering::Relaxed);
    if let Some(installed) = INSTALLED.get() {
        *installed
            .sink
            .write()
            .unwrap_or_else(PoisonError::into_inner) = sink;
        set_level(settings.loglevel);
        return Ok(());
    }
    let slot: SinkSlot = Arc::new(RwLock::new(sink));
    let (filter, level) = reload::Layer::new(level_filter(settings.loglevel));
    let subscriber = Registry::default()
        .with(filter)
        .with(ErrorLog {
            sink: Arc::clone(&slot),
            json: &JSON,
        })
        .with(crate::statsd::LogCounts);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| Error::io("install the error log", std::io::Error::other(e)))?;
    let _ = INSTALLED.set(Installed { sink: slot, level });
    Ok(())
}

/// Changes the error log level; does nothing before `init`.
pub fn set_level(level: LogLevel) {
    if let Some(installed) = INSTALLED.get() {
        // Fails only once the global subscriber is gone, when nothing logs any more.
        let _ = installed.level.reload(level_filter(level));
    }
}

/// Reopens the error log and access log files of this process (SIGUSR1, after logrotate); the
/// access lines still waiting go to the old files first.
pub fn reopen() -> Result<()> {
    access::flush_all();
    sink::reopen_all()
}

/// Writes the access log lines waiting in this process (its timer, and before it exits).
pub fn flush() {
    access::flush_all();
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
    }
}

/// The layer that writes `[time] [pid] [LEVEL] message key=value` lines, or JSON objects.
struct ErrorLog {
    sink: SinkSlot,
    json: &'static AtomicBool,
}

thread_local! {
    /// Reused per thread: the line, and the fields that go after the message.
    static BUFFERS: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
}

impl<S: Subscriber> Layer<S> for ErrorLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // Read at each event: workers fork after init and must show their own pid.
        let pid = std::process::id();
        let sink = || Arc::clone(&self.sink.read().unwrap_or_else(PoisonError::into_inner));
        if self.json.load(Ordering::Relaxed) {
            let level = level_name(event).to_ascii_lowercase();
            let mut line = Vec::with_capacity(256);
            json::render_event(&mut line, event, &level, SystemTime::now(), pid);
            line.push(b'\n');
            return sink().write_line(&line);
        }
        let write = |(line, fields): &mut (String, String)| {
            line.clear();
            fields.clear();
            format_event(line, fields, event, SystemTime::now(), pid);
            sink().write_line(line.as_bytes());
        };
        let reused = BUFFERS.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => {
                write(&mut buffers);
                true
            }
            Err(_) => false,
        });
        if !matches!(reused, Ok(true)) {
            write(&mut Default::default());
        }
    }
}

fn format_event(
    line: &mut String,
    fields: &mut String,
    event: &Event<'_>,
    now: SystemTime,
    pid: u32,
) {
    line.push('[');
    clock::write_error_log_time(line, now);
    let _ = write!(line, "] [{pid}] [{}] ", level_name(event));
    event.record(&mut Fields {
        message: line,
        rest: fields,
    });
    line.push_str(fields);
    line.push('\n');
}

/// gunicorn's level names; tracing has no CRITICAL: those events have the CRITICAL target.
fn level_name(event: &Event<'_>) -> &'static str {
    if event.metadata().target() == CRITICAL {
        return "CRITICAL";
    }
    match *event.metadata().level() {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARNING",
        Level::ERROR => "ERROR",
    }
}

/// Puts the message in place and collects the other fields as ` key=value`; a `traceback` field
/// goes on the lines after the message, as gunicorn prints one.
struct Fields<'a> {
    message: &'a mut String,
    rest: &'a mut String,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if field.name() == "traceback" {
            self.rest.push('\n');
            self.rest.push_str(value.trim_end());
        } else if value.is_empty()
            || value.contains(|c: char| c.is_whitespace() || "\"=".contains(c))
        {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.message, "{value:?}"),
            "traceback" => write!(self.rest, "\n{value:?}"),
            name => write!(self.rest, " {name}={value:?}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_settings;
    use sink::tests::temp_log;

    #[test]
    fn lines_look_like_gunicorn() {
        let path = temp_log("error");
        let sink = Sink::open(path.to_str().unwrap(), Console::Stderr).unwrap();
        static TEXT: AtomicBool = AtomicBool::new(false);
        let layer = ErrorLog {
            sink: Arc::new(RwLock::new(sink)),
            json: &TEXT,
        };
        let subscriber = Registry::default().with(LevelFilter::INFO).with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(worker = 3, path = "/a b", "Booting worker");
            tracing::warn!(error = %std::io::Error::other("boom"), "failed");
            tracing::debug!("hidden");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let pid = std::process::id();
        assert_eq!(lines.len(), 2, "{text}");
        let tail = format!(" +0000] [{pid}] [INFO] Booting worker worker=3 path=\"/a b\"");
        assert!(
            lines[0].starts_with("[20") && lines[0].ends_with(&tail),
            "{text}"
        );
        assert!(
            lines[1].ends_with(&format!("] [{pid}] [WARNING] failed error=boom")),
            "{text}"
        );
        assert_eq!(lines[0].find(']'), Some(26), "{text}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn json_lines_carry_the_fields_with_their_types() {
        static JSON_ON: AtomicBool = AtomicBool::new(true);
        let path = temp_log("json");
        let sink = Sink::open(path.to_str().unwrap(), Console::Stderr).unwrap();
        let layer = ErrorLog {
            sink: Arc::new(RwLock::new(sink)),
            json: &JSON_ON,
        };
        let subscriber = Registry::default().with(LevelFilter::INFO).with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                worker_pid = 7,
                seconds = 2.5,
                traceback = "T\n\"q\"",
                "WORKER \x01"
            );
            tracing::warn!(ok = true, "w");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(lines[0]["msg"], "WORKER \u{1}");
        assert_eq!(lines[0]["level"], "error");
        assert_eq!(lines[0]["pid"], std::process::id());
        assert_eq!(lines[0]["worker_pid"], 7);
        assert_eq!(lines[0]["seconds"], 2.5);
        assert_eq!(lines[0]["traceback"], "T\n\"q\"");
        assert_eq!(
            (lines[1]["level"].as_str(), lines[1]["ok"].as_bool()),
            (Some("warning"), Some(true))
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn critical_and_warning_map_to_tracing_levels() {
        assert_eq!(level_filter(LogLevel::Critical), LevelFilter::ERROR);
        assert_eq!(level_filter(LogLevel::Warning), LevelFilter::WARN);
        assert_eq!(level_filter(default_settings().loglevel), LevelFilter::INFO);
    }

    #[test]
    fn init_twice_switches_file_and_level() {
        let (first, second) = (temp_log("init-1"), temp_log("init-2"));
        let mut settings = default_settings();
        settings.errorlog = first.to_string_lossy().into_owned();
        init(&settings).unwrap();
        settings.errorlog = second.to_string_lossy().into_owned();
        settings.loglevel = LogLevel::Error;
        init(&settings).unwrap();
        tracing::error!(marker = "init-twice", "after reload");
        let text = std::fs::read_to_string(&second).unwrap();
        assert!(
            text.contains("[ERROR] after reload marker=init-twice"),
            "{text}"
        );
        let _ = (std::fs::remove_file(first), std::fs::remove_file(second));
    }
}
