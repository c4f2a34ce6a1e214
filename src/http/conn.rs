//! A client connection as the request-running thread sees it: the socket (shared with the
//! reactor task that owns its registration) plus the bytes read ahead of the current parse
//! position. Blocking reads go through `sockets::io` with deadlines, and every write through the
//! worker's `Outbox`; no parsing here.
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::Interest;

use super::outbox::Outbox;
use crate::sockets::io as sockio;
pub use crate::sockets::io::{dup_regular_file, set_wait_hook};

/// A connected socket registered with the worker's reactor.
#[derive(Debug)]
pub enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    /// Accepted but not registered with the reactor yet (see `ConnIo::register`): a connection
    /// whose one request is already there is served and closed without any epoll call.
    Plain(std::net::TcpStream),
}

impl Stream {
    /// Waits until the socket is readable. Only the connection's own task waits, so the
    /// socket's single reader slot serves, without the queue of waiters `readable()` keeps.
    async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
            Stream::Plain(_) => Poll::Ready(Err(io::ErrorKind::Unsupported.into())),
        })
        .await
    }

    /// Non-blocking read that keeps the reactor's readiness bookkeeping right. A short read means
    /// the socket is empty, so readiness is cleared then too: the next wait goes to epoll instead
    /// of a recv that would fail with EAGAIN (what tokio's own `poll_read` does).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut short = 0;
        let mut read = || sockio::read_unless_short(self.as_fd(), buf, &mut short);
        let result = match self {
            Stream::Tcp(s) => s.try_io(Interest::READABLE, read),
            Stream::Unix(s) => s.try_io(Interest::READABLE, read),
            Stream::Plain(_) => read(),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
            other => other,
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Plain(s) => s.as_fd(),
        }
    }
}

/// The connection plus read-ahead buffer, handed from the reactor to the request thread and back.
/// `buf[pos..end]` is received but unread; the buffer keeps its length (zeroed once when it
/// grows) so reads never clear memory.
pub struct ConnIo {
    pub stream: Arc<Stream>,
    buf: Vec<u8>,
    pub pos: usize,
    end: usize,
    pub io_timeout: Duration,
    outbox: Arc<Outbox>,
}

/// Room kept free at the end of the buffer before each read.
const READ_ROOM: usize = 16 * 1024;
/// Blocking reads (request bodies) ask for more at once.
const BODY_READ_ROOM: usize = 64 * 1024;

impl ConnIo {
    pub fn new(stream: Arc<Stream>, io_timeout: Duration, outbox: Arc<Outbox>) -> Self {
        ConnIo {
            stream,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            io_timeout,
            outbox,
        }
    }

    pub fn unread(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Moves unread bytes to the front so the buffer does not grow across pipelined requests.
    pub fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Makes the free tail to read into (`buf[end..]`) at least `room` bytes.
    fn make_room(&mut self, room: usize) {
        self.compact();
        if self.buf.len() < self.end + room {
            self.buf.resize(self.end + room, 0);
        }
    }

    fn deadline(&self) -> sockio::Deadline {
        sockio::Deadline::after(self.io_timeout)
    }

    /// Non-blocking: appends what the socket has (WouldBlock when nothing), for the reactor.
    pub fn read_available(&mut self) -> io::Result<usize> {
        self.make_room(READ_ROOM);
        let got = self.stream.try_read(&mut self.buf[self.end..])?;
        self.end += got;
        Ok(got)
    }

    /// Blocking: appends at least one byte from the socket to the buffer; Ok(0) at end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
        let deadline = self.deadline();
        self.make_room(BODY_READ_ROOM);
        let got = sockio::read_some(self.stream.as_fd(), &mut self.buf[self.end..], deadline)?;
        self.end += got;
        Ok(got)
    }

    pub fn is_registered(&self) -> bool {
        !matches!(*self.stream, Stream::Plain(_))
    }

    /// Hands a `Plain` socket to the reactor, which it needs to wait for the socket.
    pub fn register(&mut self) -> io::Result<()> {
        if let Stream::Plain(plain) = &*self.stream {
            // A duplicate, since others may still hold the plain socket; this copy is closed
            // when the last of them lets go.
            let registered = tokio::net::TcpStream::from_std(plain.try_clone()?)?;
            self.stream = Arc::new(Stream::Tcp(registered));
        }
        Ok(())
    }

    /// Waits until the socket has something to read (registering it first if need be).
    pub async fn readable(&mut self) -> io::Result<()> {
        self.register()?;
        self.stream.readable().await
    }

    /// Writes on the request's own thread, like `Sender::write_all`.
    pub fn write_all(&self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.outbox.write(&self.stream, self.io_timeout, slices)
    }

    /// Holds a complete response for the outbox to send in the next burst.
    pub fn hold(&self, response: Vec<u8>) {
        (self.outbox).hold(self.stream.clone(), self.io_timeout, response)
    }

    pub fn shutdown_write(&self) {
        self.outbox.shutdown_write(&self.stream)
    }

    /// Ends the connection after its last response. Dropping the only handle closes the socket,
    /// which sends the FIN; when something else still holds it (a write() callable the app kept),
    /// shutting down the write side tells the client now. Held responses go out first.
    pub fn close(self) {
        self.outbox.flush();
        if Arc::strong_count(&self.stream) > 1 {
            self.shutdown_write();
        }
    }

    pub fn sender(&self) -> Sender {
        Sender {
            stream: self.stream.clone(),
            io_timeout: self.io_timeout,
            outbox: self.outbox.clone(),
        }
    }
}

/// The writing half of a connection, owned by the response while a request runs.
#[derive(Clone)]
pub struct Sender {
    stream: Arc<Stream>,
    io_timeout: Duration,
    outbox: Arc<Outbox>,
}

impl Sender {
    pub fn write_all(&self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.outbox.write(&self.stream, self.io_timeout, slices)
    }

    pub fn send_file(&self, file: &impl AsFd, offset: u64, count: u64) -> io::Result<u64> {
        (self.outbox).send_file(&self.stream, self.io_timeout, file, (offset, count))
    }
}
