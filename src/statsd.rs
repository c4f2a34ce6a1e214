//! statsd with gunicorn's names, so an existing dashboard keeps working: gunicorn.requests,
//! gunicorn.request.duration (ms), gunicorn.request.status.<code> (batched per worker), the
//! master's gunicorn.workers, and gunicorn.log.<level> from the error log. Datagrams over UDP or a
//! unix socket, never blocking: a failed send is counted (rgunicorn_statsd_send_errors_total) and
//! logged at most once a minute; it never fails a request.
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::config::{Settings, StatsdTarget};
use crate::metrics::Lane;
use crate::{Error, Result};

/// At most this many bytes per datagram over a network: one Ethernet frame's payload, as statsd
/// clients send, so that nothing is fragmented.
const MAX_DATAGRAM: usize = 1432;
/// On loopback and unix sockets nothing fragments: fewer, larger datagrams (DogStatsD's
/// default buffer).
const MAX_LOCAL_DATAGRAM: usize = 8192;
/// Room left in a batch's datagram for the counts added when it goes out.
const COUNTS_ROOM: usize = 200;
/// Failed sends are logged at most this often.
const LOG_EVERY_MS: u64 = 60_000;

/// Where and how metrics are sent; one per process, made from its settings.
pub struct Client {
    socket: Socket,
    /// "" or "app." (gunicorn's normalised statsd_prefix).
    prefix: String,
    /// "" or "|#key:value,..." (dogstatsd_tags).
    tags: String,
    target: String,
    max_datagram: usize,
    /// `{prefix}gunicorn.request.duration:` and `|ms{tags}\n`, the parts of the line every
    /// request sends around its value.
    duration_parts: (Vec<u8>, Vec<u8>),
}

enum Socket {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram, PathBuf),
}

impl Client {
    /// A client for `settings`; None when statsd is off.
    pub fn from_settings(settings: &Settings) -> Result<Option<Client>> {
        let Some(target) = &settings.statsd_host else {
            return Ok(None);
        };
        let fail = |e| Error::io(format!("statsd_host {target}"), e);
        let socket = match target {
            StatsdTarget::Udp { host, port } => {
                let addr = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(fail)?
                    .next()
                    .ok_or_else(|| fail(std::io::ErrorKind::NotFound.into()))?;
                let local: SocketAddr = match addr {
                    SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
                    SocketAddr::V6(_) => ([0u16; 8], 0).into(),
                };
                let socket = UdpSocket::bind(local).map_err(fail)?;
                socket.set_nonblocking(true).map_err(fail)?;
                Socket::Udp(socket, addr)
            }
            StatsdTarget::Unix(path) => {
                let socket = UnixDatagram::unbound().map_err(fail)?;
                socket.set_nonblocking(true).map_err(fail)?;
                Socket::Unix(socket, path.clone())
            }
        };
        let tags = match settings.dogstatsd_tags.as_str() {
            "" => String::new(),
            tags => format!("|#{tags}"),
        };
        let max_datagram = match &socket {
            Socket::Udp(_, addr) if !addr.ip().is_loopback() => MAX_DATAGRAM,
            _ => MAX_LOCAL_DATAGRAM,
        };
        let duration_parts = (
            format!("{}gunicorn.request.duration:", settings.statsd_prefix).into_bytes(),
            format!("|ms{tags}\n").into_bytes(),
        );
        Ok(Some(Client {
            socket,
            prefix: settings.statsd_prefix.clone(),
            duration_parts,
            tags,
            target: target.to_string(),
            max_datagram,
        }))
    }

    /// One line in gunicorn's format: `{prefix}{name}:{value}|{kind}{tags}\n`.
    fn line(&self, out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display, kind: &str) {
        let _ = writeln!(out, "{}{name}:{value}|{kind}{}", self.prefix, self.tags);
    }

    /// gunicorn.request.duration in ms, written without the formatting machinery (per request).
    fn duration_line(&self, out: &mut Vec<u8>, elapsed: Duration) {
        let (head, tail) = &self.duration_parts;
        out.extend_from_slice(head);
        crate::logging::json::push_millis(out, elapsed);
        out.extend_from_slice(tail);
    }

    pub fn gauge(&self, name: &str, value: u64) {
        let mut text = Vec::new();
        self.line(&mut text, name, value, "g");
        self.send(&text);
    }

    pub fn increment(&self, name: &str, by: u64) {
        let mut text = Vec::new();
        self.line(&mut text, name, by, "c|@1.0");
        self.send(&text);
    }

    /// Sends whole lines, as few datagrams as fit.
    fn send(&self, text: &[u8]) {
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.len().min(self.max_datagram);
            if end < rest.len() {
                let last = rest[..end].iter().rposition(|b| *b == b'\n');
                end = last.map_or(end, |at| at + 1);
            }
            let (datagram, after) = rest.split_at(end);
            let sent = match &self.socket {
                Socket::Udp(socket, addr) => socket.send_to(datagram, addr),
                Socket::Unix(socket, path) => socket.send_to(datagram, path),
            };
            if let Err(error) = sent {
                self.failed(&error);
            }
            rest = after;
        }
    }

    fn failed(&self, error: &std::io::Error) {
        if let Some(lane) = error_lane() {
            lane.count_statsd_error();
        }
        let now = crate::process::monotonic_ms();
        let last = LAST_LOGGED.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY_MS;
        if due
            && LAST_LOGGED
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "statsd: cannot send to {}: {error} (logged once a minute)",
                self.target
            );
        }
    }
}

static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
static ERROR_LANE: OnceLock<Lane<'static>> = OnceLock::new();

/// Where this process counts its failed sends: a worker's own lane, else the shared spare one.
fn error_lane() -> Option<Lane<'static>> {
    ERROR_LANE
        .get()
        .copied()
        .or_else(|| crate::metrics::shared().map(|shared| shared.lane(None)))
}

/// A worker counts its failed sends in its own lane.
pub fn count_errors_in(lane: Lane<'static>) {
    let _ = ERROR_LANE.set(lane);
}

/// This process's client, for the error log's counts and the master's gauge.
static CLIENT: RwLock<Option<Arc<Client>>> = RwLock::new(None);

/// Makes (or drops) this process's client from `settings`: at start, on reload, in a worker.
pub fn configure(settings: &Settings) -> Result<Option<Arc<Client>>> {
    let client = Client::from_settings(settings)?.map(Arc::new);
    *CLIENT.write().unwrap_or_else(PoisonError::into_inner) = client.clone();
    Ok(client)
}

pub fn client() -> Option<Arc<Client>> {
    CLIENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// One worker's requests, sent a datagram at a time: counts add up, durations go one per line.
pub struct Batch {
    client: Arc<Client>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    durations: Vec<u8>,
    requests: u64,
    /// (status, count) of the requests since the last send.
    statuses: Vec<(u16, u64)>,
}

impl Batch {
    pub fn new(client: Arc<Client>) -> Batch {
        Batch {
            client,
            pending: Mutex::default(),
        }
    }

    /// One finished request: gunicorn.requests, gunicorn.request.status.<code> and
    /// gunicorn.request.duration in milliseconds.
    pub fn request(&self, status: u16, elapsed: Duration) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.requests += 1;
        match pending.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => pending.statuses.push((status, 1)),
        }
        self.client.duration_line(&mut pending.durations, elapsed);
        if pending.durations.len() + COUNTS_ROOM >= self.client.max_datagram {
            let text = self.take(&mut pending);
            drop(pending);
            self.client.send(&text);
        }
    }

    /// Sends what has gathered (the worker does every quarter second, and before it exits).
    pub fn flush(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.requests == 0 {
            return;
        }
        let text = self.take(&mut pending);
        drop(pending);
        self.client.send(&text);
    }

    fn take(&self, pending: &mut Pending) -> Vec<u8> {
        // A buffer of a datagram's size from the start: one grown from empty would be copied
        // a dozen times per datagram.
        let room = Vec::with_capacity(self.client.max_datagram);
        let mut text = std::mem::replace(&mut pending.durations, room);
        self.client
            .line(&mut text, "gunicorn.requests", pending.requests, "c|@1.0");
        for (status, n) in pending.statuses.drain(..) {
            let name = format!("gunicorn.request.status.{status}");
            self.client.line(&mut text, &name, n, "c|@1.0");
        }
        pending.requests = 0;
        text
    }
}

/// The error log's counts: gunicorn.log.critical, .error, .warning and .exception (an error
/// that carries a traceback).
pub struct LogCounts;

impl<S: Subscriber> Layer<S> for LogCounts {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let name = match *metadata.level() {
            _ if metadata.target() == crate::logging::CRITICAL => "gunicorn.log.critical",
            Level::ERROR if metadata.fields().field("traceback").is_some() => {
                "gunicorn.log.exception"
            }
            Level::ERROR => "gunicorn.log.error",
            Level::WARN => "gunicorn.log.warning",
            _ => return,
        };
        if let Some(client) = client() {
            client.increment(name, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_settings;

    fn receiver() -> (UdpSocket, Settings) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let settings = Settings {
            statsd_host: Some(StatsdTarget::Udp {
                host: "127.0.0.1".into(),
                port: socket.local_addr().unwrap().port(),
            }),
            statsd_prefix: "app.".into(),
            dogstatsd_tags: "env:test".into(),
            ..default_settings()
        };
        (socket, settings)
    }

    fn receive(socket: &UdpSocket) -> String {
        let mut buf = [0u8; 16384];
        let n = socket.recv(&mut buf).unwrap();
        assert!(n <= MAX_LOCAL_DATAGRAM, "{n} bytes");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_batch_adds_up_counts_and_keeps_each_duration() {
        let (socket, settings) = receiver();
        let batch = Batch::new(Arc::new(Client::from_settings(&settings).unwrap().unwrap()));
        batch.request(200, Duration::from_micros(1_500));
        batch.request(404, Duration::from_micros(20));
        batch.request(200, Duration::from_millis(3));
        batch.flush();
        let text = receive(&socket);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "app.gunicorn.request.duration:1.500|ms|#env:test",
                "app.gunicorn.request.duration:0.020|ms|#env:test",
                "app.gunicorn.request.duration:3.000|ms|#env:test",
                "app.gunicorn.requests:3|c|@1.0|#env:test",
                "app.gunicorn.request.status.200:2|c|@1.0|#env:test",
                "app.gunicorn.request.status.404:1|c|@1.0|#env:test",
            ]
        );
        batch.flush();
        socket.set_nonblocking(true).unwrap();
        assert!(socket.recv(&mut [0u8; 16]).is_err(), "nothing left to send");
    }

    #[test]
    fn a_full_batch_goes_out_in_datagrams_of_whole_lines() {
        let (socket, settings) = receiver();
        let batch = Batch::new(Arc::new(Client::from_settings(&settings).unwrap().unwrap()));
        let mut requests = 0;
        while requests < 400 {
            batch.request(200, Duration::from_millis(1));
            requests += 1;
        }
        batch.flush();
        let mut durations = 0;
        let mut counted = 0;
        while durations < 400 || counted < 400 {
            for line in receive(&socket).lines() {
                assert!(line.ends_with("|#env:test"), "{line}");
                durations += usize::from(line.starts_with("app.gunicorn.request.duration:"));
                if let Some(n) = line.strip_prefix("app.gunicorn.requests:") {
                    counted += n.split('|').next().unwrap().parse::<usize>().unwrap();
                }
            }
        }
        assert_eq!((durations, counted), (400, 400));
    }

    #[test]
    fn sending_to_nowhere_never_fails() {
        let settings = Settings {
            statsd_host: Some(StatsdTarget::Unix("/nonexistent/statsd.sock".into())),
            ..default_settings()
        };
        let client = Client::from_settings(&settings).unwrap().unwrap();
        client.increment("gunicorn.requests", 1);
        assert!(Client::from_settings(&default_settings())
            .unwrap()
            .is_none());
    }
}
