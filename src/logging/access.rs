//! The access log: one line per response in `access_log_format`, shared by all threads of a
//! worker. Never panics and never reports write errors to the request path.
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::format::Format;
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
    pub started: SystemTime,
    pub duration: Duration,
    pub pid: u32,
}

/// An open access log with its compiled format.
#[derive(Debug)]
pub struct AccessLog {
    format: Format,
    sink: Arc<Sink>,
}

thread_local! {
    /// Reused per thread so that logging a request does not allocate once warmed up.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl AccessLog {
    /// Opens `accesslog` ("-" = stdout); None when the setting is unset.
    pub fn open(settings: &Settings) -> Result<Option<AccessLog>> {
        let Some(name) = settings.accesslog.as_deref() else {
            return Ok(None);
        };
        Ok(Some(AccessLog {
            format: Format::compile(&settings.access_log_format),
            sink: Sink::open(name, Console::Stdout)?,
        }))
    }

    /// Writes one line for `record`.
    pub fn log(&self, record: &AccessRecord<'_>) {
        let write = |line: &mut String| {
            line.clear();
            self.format.render(line, record);
            line.push('\n');
            self.sink.write_line(line.as_bytes());
        };
        // A thread being torn down, or a nested call, gets a fresh buffer instead of a panic.
        let reused = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                true
            }
            Err(_) => false,
        });
        if !matches!(reused, Ok(true)) {
            write(&mut String::new());
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
            started: SystemTime::now(),
            duration: Duration::from_millis(3),
            pid: 1,
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..50).for_each(|_| log.log(&record)));
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(text.lines().all(|line| line == "GET /a 200"), "{text}");
        let _ = std::fs::remove_file(path);
    }
}
