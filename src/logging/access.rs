//! The access log: one line per response in `access_log_format` (or JSON), shared by all threads
//! of a worker and written in batches of whole lines: a batch goes out when it would pass what
//! one write(2) keeps whole, or on `flush` (the worker's timer, every BATCH_MS, and its exit).
//! Never panics and never reports write errors to the request path.
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use super::format::Format;
use super::json_access::{self, Template};
use super::sink::{Console, Sink};
use crate::config::Settings;
use crate::Result;

/// What the access log needs to know about one finished request.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    /// The request target as sent, query included.
    pub raw_uri: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// "HTTP/1.1"
    pub version: &'a str,
    pub status: u16,
    /// Body bytes sent; None when unknown.
    pub response_length: Option<u64>,
    /// Names upper-case, as received.
    pub request_headers: &'a [(String, Vec<u8>)],
    pub response_headers: &'a [(String, String)],
    /// When the response ended (the JSON line's `ts`; the text's `%(t)s` is this less `duration`).
    pub ended: SystemTime,
    pub duration: Duration,
    pub pid: u32,
    /// The worker's id (`RGUNICORN_WORKER_ID`), when it has one.
    pub worker: Option<u32>,
}

/// A line waits at most this long before it is written (the worker flushes as often).
pub const BATCH_MS: u64 = 100;

/// An open access log with its compiled format.
#[derive(Debug)]
pub struct AccessLog {
    style: Style,
    batch: Arc<Batch>,
}

/// Lines not written yet.
#[derive(Debug)]
struct Batch {
    sink: Arc<Sink>,
    lines: Mutex<Lines>,
}

/// The batch's bytes, and what its JSON lines share (rendered straight into the batch, under its
/// lock).
#[derive(Debug, Default)]
struct Lines {
    bytes: Vec<u8>,
    json: Template,
}

/// Every batch of this process, for `flush_all` (the worker's timer, exit and USR1).
static BATCHES: Mutex<Vec<Weak<Batch>>> = Mutex::new(Vec::new());

/// `access_log_format`: gunicorn's atoms, or "json" for one JSON object per request.
#[derive(Debug)]
enum Style {
    Text(Format),
    Json,
}

/// The `access_log_format` value that selects JSON lines.
pub const JSON_FORMAT: &str = "json";

thread_local! {
    /// Reused per thread so that logging a request does not allocate once warmed up.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `write` with this thread's buffer; a thread being torn down, or a nested call, gets a
/// fresh one instead of a panic.
fn with_buffer<T: Default + 'static>(
    buffer: &'static std::thread::LocalKey<RefCell<T>>,
    write: impl FnOnce(&mut T),
) {
    let mut write = Some(write);
    let _ = buffer.try_with(|cell| {
        if let (Ok(mut reused), Some(write)) = (cell.try_borrow_mut(), write.take()) {
            write(&mut reused);
        }
    });
    if let Some(write) = write {
        write(&mut T::default());
    }
}

impl AccessLog {
    /// Opens `accesslog` ("-" = stdout); None when the setting is unset.
    pub fn open(settings: &Settings) -> Result<Option<AccessLog>> {
        let Some(name) = settings.accesslog.as_deref() else {
            return Ok(None);
        };
        let style = match settings.access_log_format.as_str() {
            JSON_FORMAT => Style::Json,
            format => Style::Text(Format::compile(format)),
        };
        let batch = Arc::new(Batch {
            sink: Sink::open(name, Console::Stdout)?,
            lines: Mutex::default(),
        });
        let mut batches = BATCHES.lock().unwrap_or_else(PoisonError::into_inner);
        batches.retain(|b| b.strong_count() > 0);
        batches.push(Arc::downgrade(&batch));
        Ok(Some(AccessLog { style, batch }))
    }

    /// Whether the format shows response headers (building them costs, so only then).
    pub fn wants_response_headers(&self) -> bool {
        matches!(&self.style, Style::Text(format) if format.has_response_headers())
    }

    /// Writes the lines waiting in this log.
    pub fn flush(&self) {
        self.batch.flush();
    }

    /// Writes one line for `record`.
    pub fn log(&self, record: &AccessRecord<'_>) {
        match &self.style {
            Style::Text(format) => with_buffer(&LINE, |line: &mut String| {
                line.clear();
                format.render(line, record);
                self.batch.add(line.as_bytes());
            }),
            Style::Json => self.batch.render(|lines| {
                json_access::render_access(&mut lines.bytes, &mut lines.json, record);
            }),
        }
    }
}

/// Writes every access log's waiting lines (before a reopen, at exit, on the worker's timer).
pub fn flush_all() {
    let batches: Vec<Arc<Batch>> = {
        let batches = BATCHES.lock().unwrap_or_else(PoisonError::into_inner);
        batches.iter().filter_map(Weak::upgrade).collect()
    };
    for batch in batches {
        batch.flush();
    }
}

/// Lines still waiting when the log goes (the worker's handler is dropped at its end).
impl Drop for Batch {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Batch {
    fn add(&self, line: &[u8]) {
        self.render(|lines| lines.bytes.extend_from_slice(line));
    }

    /// Appends one line, made by `line` (without its newline) at the end of the batch: the
    /// lines before it go out first when it would take the batch past what one write keeps
    /// whole.
    fn render(&self, line: impl FnOnce(&mut Lines)) {
        let limit = self.sink.whole_write_limit();
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let start = lines.bytes.len();
        line(&mut lines);
        lines.bytes.push(b'\n');
        if lines.bytes.len() > limit && start > 0 {
            self.sink.write_line(&lines.bytes[..start]);
            lines.bytes.drain(..start);
        }
        if lines.bytes.len() >= limit {
            self.write_out(&mut lines.bytes);
        }
    }

    fn flush(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_out(&mut lines.bytes);
    }

    /// One write(2) of whole lines, under the lock so that batches keep their order.
    fn write_out(&self, bytes: &mut Vec<u8>) {
        if !bytes.is_empty() {
            self.sink.write_line(bytes);
            bytes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_settings;
    use crate::logging::sink::tests::temp_log;

    #[test]
    fn shared_by_the_threads_of_a_worker() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AccessLog>();
    }

    #[test]
    fn no_setting_no_log() {
        assert!(AccessLog::open(&default_settings()).unwrap().is_none());
    }

    #[test]
    fn one_line_per_request_from_many_threads() {
        let path = temp_log("access");
        let settings = Settings {
            accesslog: Some(path.to_string_lossy().into_owned()),
            access_log_format: "%(m)s %(U)s %(s)s".to_owned(),
            ..default_settings()
        };
        let log = AccessLog::open(&settings).unwrap().unwrap();
        let record = AccessRecord {
            remote_addr: "10.0.0.1",
            method: "GET",
            raw_uri: "/a?b",
            path: "/a",
            query: "b",
            version: "HTTP/1.1",
            status: 200,
            response_length: Some(5),
            request_headers: &[],
            response_headers: &[],
            ended: SystemTime::now(),
            duration: Duration::from_millis(3),
            pid: 1,
            worker: None,
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..50).for_each(|_| log.log(&record)));
            }
        });
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(text.lines().all(|line| line == "GET /a 200"), "{text}");
        let _ = std::fs::remove_file(path);
    }
}
