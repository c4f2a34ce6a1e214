//! Wraps the app's handler with what the master and the operator see of each request: the
//! heartbeat record of the running thread (for timeouts that name the request), the worker's
//! counters in shared memory and the access log. Never blocks a request on any of them.
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::wall_clock::WallClock;
use crate::config::Settings;
use crate::heartbeat::Heartbeats;
use crate::http::{Exchange, Finished, Handler, Peer};
use crate::logging::{AccessLog, AccessRecord};
use crate::metrics::Lane;
use crate::process::{monotonic_ms, monotonic_ns};
use crate::statsd;

/// Nanoseconds in a heartbeat's millisecond.
const NS_PER_MS: u64 = 1_000_000;

thread_local! {
    static WALL_CLOCK: WallClock = WallClock::default();
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
    /// Requests started so far and the worker's max_requests (0: none).
    started: Arc<AtomicU64>,
    max_requests: u64,
    /// None: only the heartbeat sees the request (the hot path of a server with nothing on).
    sinks: Option<Sinks>,
}

/// What this worker reports to besides its heartbeat, set up once after fork.
#[derive(Clone, Default)]
pub struct Reporting {
    pub pid: u32,
    /// Its id (`RGUNICORN_WORKER_ID`), claimed in shared memory.
    pub worker_id: Option<u32>,
    /// Its counters in shared memory, when the master reports them (/metrics).
    pub lane: Option<Lane<'static>>,
    pub statsd: Option<Arc<statsd::Batch>>,
}

impl Reporting {
    pub fn new(settings: &Settings, pid: i32) -> Reporting {
        let shared = crate::metrics::shared();
        let worker_id = shared.and_then(|shared| shared.claim(pid));
        if let Some(shared) = shared {
            statsd::count_errors_in(shared.lane(worker_id));
        }
        let client = statsd::configure(settings).unwrap_or_else(|error| {
            tracing::error!("statsd is off: {error}");
            None
        });
        Reporting {
            pid: pid as u32,
            worker_id,
            lane: shared
                .filter(|_| reported(settings))
                .map(|shared| shared.lane(worker_id)),
            statsd: client.map(|client| Arc::new(statsd::Batch::new(client))),
        }
    }
}

/// Whether the master reads this worker's lane: for /metrics, the control socket, or to hold
/// it to max_worker_memory.
fn reported(settings: &Settings) -> bool {
    settings.metrics_bind.is_some()
        || settings.control_socket.is_some()
        || settings.max_worker_memory > 0
}

/// Where a finished request is reported besides the heartbeat.
pub struct Sinks {
    pub access: Option<AccessLog>,
    pub reporting: Reporting,
}

impl Sinks {
    /// One finished request, timed by two CLOCK_MONOTONIC readings in ns, to every sink.
    fn report(&self, finished: &Finished, peer: &Peer, (started, ended): (u64, u64)) {
        let elapsed = Duration::from_nanos(ended.saturating_sub(started));
        let report = &finished.report;
        let reporting = &self.reporting;
        if let Some(lane) = &reporting.lane {
            let method = &report.head.method;
            let (read, sent) = (report.request_body_bytes, report.body_bytes);
            lane.record(method, report.status, elapsed, read, sent);
        }
        if let Some(batch) = &reporting.statsd {
            batch.request(report.status, elapsed);
        }
        if let Some(access) = &self.access {
            let ended = WALL_CLOCK.with(|clock| clock.at(ended));
            log_access(access, finished, peer, (ended, elapsed), reporting);
        }
    }

    /// None when there is nothing to report to.
    pub fn any(self) -> Option<Sinks> {
        let reporting = &self.reporting;
        let any = self.access.is_some() || reporting.lane.is_some() || reporting.statsd.is_some();
        any.then_some(self)
    }
}

/// The lane connection events go to (set once, before the reactor starts).
static CONNECTIONS: OnceLock<Lane<'static>> = OnceLock::new();

/// Counts connections in `lane` from now on; returns the hook for the reactor.
pub fn count_connections(lane: Lane<'static>) -> fn(bool) {
    let _ = CONNECTIONS.set(lane);
    connection_event
}

fn connection_event(opened: bool) {
    if let Some(lane) = CONNECTIONS.get() {
        match opened {
            true => lane.connection_opened(),
            false => lane.connection_closed(),
        }
    }
}

impl<H> Observed<H> {
    pub fn new(
        inner: H,
        (heartbeats, slot): (Arc<Heartbeats>, usize),
        (started, max_requests): (Arc<AtomicU64>, u64),
        sinks: Option<Sinks>,
    ) -> Self {
        Observed {
            inner,
            heartbeats,
            slot,
            started,
            max_requests,
            sinks,
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
        let (method, target) = (&exchange.head.method, &exchange.head.target);
        let Some(sinks) = &self.sinks else {
            record.begin(monotonic_ms(), method, target);
            let finished = self.inner.handle(exchange);
            record.end(monotonic_ms());
            return finished;
        };
        // The heartbeat takes its milliseconds from the two reads that time the request (the
        // same clock as the coarse one, a tick ahead at most) instead of two more.
        let started = monotonic_ns();
        record.begin(started / NS_PER_MS, method, target);
        let peer = exchange.peer.clone();
        let finished = self.inner.handle(exchange);
        let ended = monotonic_ns();
        record.end(ended / NS_PER_MS);
        sinks.report(&finished, &peer, (started, ended));
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

thread_local! {
    /// The text of the last client address this thread logged: the requests of a keep-alive
    /// connection, and all those that come through one proxy, repeat it.
    static PEER_TEXT: RefCell<(Option<IpAddr>, String)> = const { RefCell::new((None, String::new())) };
}

/// Runs `log` with the text of `peer`'s address ("" for a unix socket).
fn with_peer_text(peer: &Peer, log: impl FnOnce(&str)) {
    let Peer::Tcp(addr) = peer else {
        return log("");
    };
    let ip = addr.ip();
    let mut log = Some(log);
    let _ = PEER_TEXT.try_with(|cell| {
        if let (Ok(mut cached), Some(log)) = (cell.try_borrow_mut(), log.take()) {
            if cached.0 != Some(ip) {
                cached.1.clear();
                let _ = write!(cached.1, "{ip}");
                cached.0 = Some(ip);
            }
            log(&cached.1);
        }
    });
    if let Some(log) = log {
        log(&ip.to_string());
    }
}

fn log_access(
    access: &AccessLog,
    finished: &Finished,
    peer: &Peer,
    (ended, duration): (SystemTime, Duration),
    reporting: &Reporting,
) {
    let report = &finished.report;
    let response_headers = match access.wants_response_headers() {
        true => (report.response_headers.as_ref())
            .map(|block| block.pairs())
            .unwrap_or_default(),
        false => Vec::new(),
    };
    with_peer_text(peer, |remote| {
        access.log(&AccessRecord {
            remote_addr: remote,
            method: &report.head.method,
            raw_uri: &report.head.target,
            path: &report.head.path,
            query: &report.head.query,
            version: report.head.version.as_str(),
            status: report.status,
            response_length: Some(report.body_bytes),
            request_headers: &report.head.headers,
            response_headers: &response_headers,
            ended,
            duration,
            pid: reporting.pid,
            worker: reporting.worker_id,
        });
    });
}

/// Writes the access log lines and sends the statsd lines gathered since the last time, so that
/// none waits longer than BATCH_MS when requests stop coming.
pub async fn flush_often(statsd: Option<Arc<crate::statsd::Batch>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(crate::logging::BATCH_MS));
    loop {
        tick.tick().await;
        flush_reports(statsd.as_deref());
    }
}

pub fn flush_reports(statsd: Option<&crate::statsd::Batch>) {
    crate::logging::flush();
    if let Some(batch) = statsd {
        batch.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::{with_peer_text, Peer};

    #[test]
    fn addresses_as_text() {
        let ips = [
            "0.0.0.0",
            "127.0.0.1",
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "127.0.0.1",
        ];
        for ip in ips {
            let peer = Peer::Tcp((ip.parse::<std::net::IpAddr>().unwrap(), 80).into());
            with_peer_text(&peer, |text| assert_eq!(text, ip));
        }
        with_peer_text(&Peer::Unix, |text| assert_eq!(text, ""));
    }
}
