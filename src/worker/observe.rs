//! Wraps the app's handler with what the master and the operator see of each request: the
//! heartbeat record of the running thread (for timeouts that name the request) and the access log.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::heartbeat::Heartbeats;
use crate::http::{Exchange, Finished, Handler, Peer};
use crate::logging::{AccessLog, AccessRecord};
use crate::process::{current_pid, monotonic_ms};

thread_local! {
    static THREAD_INDEX: Cell<usize> = const { Cell::new(0) };
    static RECORD: std::cell::RefCell<Option<(Arc<Heartbeats>, usize)>> = const { std::cell::RefCell::new(None) };
}

/// Which heartbeat record of the worker this request thread writes.
pub fn set_thread_index(index: usize) {
    THREAD_INDEX.with(|cell| cell.set(index));
}

/// Pauses and resumes this thread's heartbeat record around waits on a slow client.
fn on_client_wait(waiting: bool) {
    RECORD.with(|record| {
        if let Some((heartbeats, slot)) = record.borrow().as_ref() {
            let record = heartbeats.slot(*slot, THREAD_INDEX.with(Cell::get));
            if waiting {
                record.pause(monotonic_ms());
            } else {
                record.resume(monotonic_ms());
            }
        }
    });
}

pub struct Observed<H> {
    inner: H,
    heartbeats: Arc<Heartbeats>,
    slot: usize,
    access: Option<AccessLog>,
    /// Requests started so far and the worker's max_requests (0: none).
    started: Arc<AtomicU64>,
    max_requests: u64,
}

impl<H> Observed<H> {
    pub fn new(
        inner: H,
        heartbeats: Arc<Heartbeats>,
        slot: usize,
        access: Option<AccessLog>,
        (started, max_requests): (Arc<AtomicU64>, u64),
    ) -> Self {
        Observed {
            inner,
            heartbeats,
            slot,
            access,
            started,
            max_requests,
        }
    }
}

impl<H: Handler> Handler for Observed<H> {
    fn handle(&self, exchange: Exchange) -> Finished {
        RECORD.with(|record| {
            if record.borrow().is_none() {
                *record.borrow_mut() = Some((self.heartbeats.clone(), self.slot));
                crate::http::conn::set_wait_hook(on_client_wait);
            }
        });
        self.report_last_request();
        let record = self
            .heartbeats
            .slot(self.slot, THREAD_INDEX.with(Cell::get));
        record.begin(monotonic_ms(), &exchange.head.method, &exchange.head.target);
        let Some(access) = &self.access else {
            let finished = self.inner.handle(exchange);
            record.end(monotonic_ms());
            return finished;
        };
        let started = (SystemTime::now(), Instant::now());
        let peer = exchange.peer.clone();
        let finished = self.inner.handle(exchange);
        record.end(monotonic_ms());
        log_access(access, &finished, &peer, started);
        finished
    }
}

impl<H> Observed<H> {
    /// The worker's last request under max_requests tells the master at once that the worker
    /// retires, so the master starts its replacement and bounds the rest by graceful_timeout;
    /// the reactor cannot tell it while an inline request keeps it busy.
    fn report_last_request(&self) {
        let limit = self.max_requests;
        if limit > 0 && self.started.load(Ordering::Relaxed) >= limit {
            self.heartbeats.slot(self.slot, 0).set_retiring();
        }
    }
}

fn log_access(
    access: &AccessLog,
    finished: &Finished,
    peer: &Peer,
    started: (SystemTime, Instant),
) {
    let report = &finished.report;
    let response_headers = report
        .response_headers
        .as_ref()
        .map(|block| block.pairs())
        .unwrap_or_default();
    let remote = match peer {
        Peer::Tcp(addr) => addr.ip().to_string(),
        Peer::Unix => String::new(),
    };
    access.log(&AccessRecord {
        remote_addr: &remote,
        method: &report.head.method,
        raw_uri: &report.head.target,
        path: &report.head.path,
        query: &report.head.query,
        version: report.head.version.as_str(),
        status: report.status,
        response_length: Some(report.body_bytes),
        request_headers: &report.head.headers,
        response_headers: &response_headers,
        started: started.0,
        duration: started.1.elapsed(),
        pid: current_pid() as u32,
    });
}
