//! The master's own small servers (/metrics and the control socket): a listener and its clients,
//! all non-blocking and served from the master's poll loop with bounded work per wake-up, so a
//! slow, idle or hostile client never delays supervision. Moves bytes only; what they mean is for
//! `scrape.rs` and `control.rs`.
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::PollFlags;

use crate::sockets::Listener;

/// Clients served at once per endpoint; more wait in the listen queue.
const MAX_CLIENTS: usize = 16;
/// Connections accepted per wake-up.
const ACCEPTS_PER_WAKE: usize = 4;
/// Bytes read from one client per wake-up, and the most it may have sent and not had answered.
const READ_PER_WAKE: usize = 16 * 1024;
const MAX_INPUT: usize = 64 * 1024;

enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

pub(super) struct Client {
    pub id: u64,
    stream: Stream,
    /// Bytes received and not yet taken by the protocol.
    pub input: Vec<u8>,
    output: Vec<u8>,
    /// Close once the output is written.
    closing: bool,
    /// Closed at this time, unless the protocol moves it.
    pub deadline_ms: u64,
    /// The peer closed its side (or the connection failed).
    pub ended: bool,
}

/// The master's endpoints; each is off unless its setting is given.
#[derive(Default)]
pub(super) struct Endpoints {
    pub metrics: Option<Endpoint>,
    pub control: Option<Endpoint>,
}

/// The control socket, mode 0600. A master already answering there is an error, except for the
/// new master of a USR2 upgrade, which takes the path over from the old one.
fn bind_control(path: &std::path::Path, upgrade: bool) -> crate::Result<Listener> {
    if !upgrade && std::os::unix::net::UnixStream::connect(path).is_ok() {
        let in_use = std::io::Error::from(io::ErrorKind::AddrInUse);
        return Err(crate::Error::io(
            format!(
                "control socket {} (another server answers there)",
                path.display()
            ),
            in_use,
        ));
    }
    crate::sockets::bind_private(path)
}

/// A scraper sends one request and reads one answer: this is generous.
const SCRAPE_MS: u64 = 10_000;

impl Endpoints {
    /// Binds the endpoints the settings ask for, before any fork. A new master of a USR2 upgrade
    /// serves without the ones it cannot bind (the old master still has them).
    pub fn open(settings: &crate::config::Settings, upgrade: bool) -> crate::Result<Endpoints> {
        let mut endpoints = Endpoints::default();
        if let Some(spec) = &settings.metrics_bind {
            match crate::sockets::bind_all(std::slice::from_ref(spec), 64, false) {
                Ok(mut bound) => {
                    let listener = bound.remove(0);
                    tracing::info!("Serving metrics at: {}/metrics", listener.describe());
                    endpoints.metrics = Some(Endpoint::new(listener, SCRAPE_MS));
                }
                Err(error) if upgrade => {
                    tracing::error!("metrics endpoint not served: {error}")
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(path) = &settings.control_socket {
            let listener = bind_control(path, upgrade)?;
            tracing::info!("Control socket at: {}", path.display());
            endpoints.control = Some(Endpoint::new(listener, super::control::IDLE_MS));
        }
        Ok(endpoints)
    }

    /// Removes the unix socket files (on the master's final exit).
    pub fn remove_files(&self) {
        for endpoint in self.each() {
            endpoint.listener.remove_file();
        }
    }

    fn each(&self) -> impl Iterator<Item = &Endpoint> {
        self.metrics.iter().chain(self.control.iter())
    }

    pub fn interest(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        self.each().flat_map(Endpoint::interest).collect()
    }

    /// Serves each endpoint with its share of `ready` (in the order of `interest`).
    pub fn service(&mut self, ready: &[bool], now_ms: u64) {
        let mut rest = ready;
        for endpoint in self.metrics.iter_mut().chain(self.control.iter_mut()) {
            let (mine, others) = rest.split_at((endpoint.clients.len() + 1).min(rest.len()));
            let fresh = endpoint.service(mine, now_ms);
            endpoint.fresh.extend(fresh);
            rest = others;
        }
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.each().filter_map(Endpoint::next_deadline).min()
    }
}

pub(super) struct Endpoint {
    listener: Listener,
    pub clients: Vec<Client>,
    /// Clients with input not yet looked at.
    pub fresh: Vec<u64>,
    /// How long a client may take to send what it has to say.
    idle_ms: u64,
    next_id: u64,
}

impl Endpoint {
    pub fn new(listener: Listener, idle_ms: u64) -> Self {
        Endpoint {
            listener,
            clients: Vec::new(),
            fresh: Vec::new(),
            idle_ms,
            next_id: 1,
        }
    }

    /// The descriptors to poll and for what, listener first.
    pub fn interest(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::with_capacity(self.clients.len() + 1);
        let room = self.clients.len() < MAX_CLIENTS;
        let accept = if room {
            PollFlags::POLLIN
        } else {
            PollFlags::empty()
        };
        fds.push((self.listener.as_fd(), accept));
        for client in &self.clients {
            let mut flags = PollFlags::empty();
            if !client.closing && !client.ended && client.input.len() < MAX_INPUT {
                flags |= PollFlags::POLLIN;
            }
            if !client.output.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push((client.stream.as_fd(), flags));
        }
        fds
    }

    /// Accepts, reads and writes what `ready` (one flag per `interest` entry) allows; returns
    /// the ids of the clients that have new input.
    pub fn service(&mut self, ready: &[bool], now_ms: u64) -> Vec<u64> {
        let mut fresh = Vec::new();
        for (client, ready) in self.clients.iter_mut().zip(ready.iter().skip(1)) {
            if !*ready {
                continue;
            }
            client.write_some();
            if client.read_some() {
                fresh.push(client.id);
            }
        }
        if ready.first().copied().unwrap_or(false) {
            self.accept(now_ms, &mut fresh);
        }
        fresh
    }

    fn accept(&mut self, now_ms: u64, fresh: &mut Vec<u64>) {
        for _ in 0..ACCEPTS_PER_WAKE {
            if self.clients.len() >= MAX_CLIENTS {
                return;
            }
            let stream = match &self.listener {
                Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
                Listener::Unix { listener, .. } => listener.accept().map(|(s, _)| Stream::Unix(s)),
            };
            let Ok(stream) = stream else { return };
            if stream.set_nonblocking().is_err() {
                continue;
            }
            let mut client = Client {
                id: self.next_id,
                stream,
                input: Vec::new(),
                output: Vec::new(),
                closing: false,
                deadline_ms: now_ms + self.idle_ms,
                ended: false,
            };
            self.next_id += 1;
            if client.read_some() {
                fresh.push(client.id);
            }
            self.clients.push(client);
        }
    }

    pub fn client(&mut self, id: u64) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    /// Drops the clients that are done, failed or past their deadline.
    pub fn sweep(&mut self, now_ms: u64) {
        self.clients.retain(|c| {
            let done = (c.closing || c.ended) && c.output.is_empty();
            !done && now_ms < c.deadline_ms
        });
    }

    /// The earliest client deadline, for the loop's sleep.
    pub fn next_deadline(&self) -> Option<u64> {
        self.clients.iter().map(|c| c.deadline_ms).min()
    }
}

impl Client {
    /// Queues `bytes` and writes what the socket takes now; `close` ends the connection after.
    pub fn send(&mut self, bytes: &[u8], close: bool) {
        self.output.extend_from_slice(bytes);
        self.closing |= close;
        self.write_some();
    }

    /// Writes what the socket takes without blocking.
    fn write_some(&mut self) {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return self.fail(),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.fail(),
            }
        }
    }

    /// Reads what is there (at most READ_PER_WAKE); true when something arrived.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while got < READ_PER_WAKE && self.input.len() < MAX_INPUT && !self.ended {
            match self.stream.read(&mut buf) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.fail(),
            }
        }
        got > 0
    }

    fn fail(&mut self) {
        self.ended = true;
        self.output.clear();
    }

    /// Whether the client sent more than the protocol allows unanswered.
    pub fn overflowing(&self) -> bool {
        self.input.len() >= MAX_INPUT
    }
}

impl Stream {
    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(true),
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}
