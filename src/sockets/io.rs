//! OS: blocking reads, writes and sendfile on a non-blocking connected socket, each bounded by a
//! deadline, for the thread that runs a request. Knows nothing of HTTP.
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;

thread_local! {
    static WAIT_HOOK: std::cell::Cell<Option<fn(bool)>> = const { std::cell::Cell::new(None) };
}

/// Registers a function called with `true` when this thread starts waiting on a peer and `false`
/// when the wait ends, so time spent on a slow client can be told apart from the app's time.
pub fn set_wait_hook(hook: fn(bool)) {
    WAIT_HOOK.with(|cell| cell.set(Some(hook)));
}

/// How long the peer may keep us waiting without any progress: each wait gets the whole of it,
/// so a long transfer to a slow but live client is fine, and an operation that never has to
/// wait never reads the clock.
#[derive(Clone, Copy)]
pub struct Deadline(pub std::time::Duration);

impl Deadline {
    pub fn after(timeout: std::time::Duration) -> Self {
        Deadline(timeout)
    }
}

/// Waits until `fd` is ready for `events`, or TimedOut when the idle timeout passes first.
fn wait_ready(fd: BorrowedFd<'_>, events: PollFlags, idle: &mut Deadline) -> io::Result<()> {
    let deadline = Instant::now() + idle.0;
    let hook = WAIT_HOOK.with(std::cell::Cell::get);
    if let Some(hook) = hook {
        hook(true);
    }
    let ready = poll_until(fd, events, deadline);
    if let Some(hook) = hook {
        hook(false);
    }
    ready
}

fn poll_until(fd: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Reads what is available (at least one byte, or 0 at end of stream), waiting up to `deadline`.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8], mut deadline: Deadline) -> io::Result<usize> {
    loop {
        match recv(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLIN, &mut deadline)?,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// One non-blocking read for a reactor's `try_io`: a read that fills less than `buf` stores its
/// count in `short` and reports WouldBlock, which tells the reactor the socket is drained.
pub fn read_unless_short(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    short: &mut usize,
) -> io::Result<usize> {
    loop {
        match recv(fd, buf) {
            Ok(n) if n > 0 && n < buf.len() => {
                *short = n;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// recv(2) and send(2) rather than read(2) and write(2): on a socket they do the same, but skip
/// the file layer's work (position lock, access checks, notifications) on every request.
fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    nix::sys::socket::recv(fd.as_raw_fd(), buf, MsgFlags::empty())
}

fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> nix::Result<usize> {
    nix::sys::socket::send(fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)
}

/// Writes every byte of every slice, in order, with as few writev calls as the kernel allows.
pub fn write_all(
    fd: BorrowedFd<'_>,
    mut slices: &mut [IoSlice<'_>],
    mut deadline: Deadline,
) -> io::Result<()> {
    while !slices.is_empty() {
        // One buffer (a whole small response) takes send(2), a little cheaper than writev(2).
        let written = match slices {
            [only] => send(fd, only),
            _ => nix::sys::uio::writev(fd, slices),
        };
        match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLOUT, &mut deadline)?,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Sends `count` bytes of `file` from `offset` with sendfile(2); returns the bytes sent, which is
/// less than `count` only when the file is shorter.
pub fn send_file(
    fd: BorrowedFd<'_>,
    file: &impl AsFd,
    mut offset: u64,
    count: u64,
    mut deadline: Deadline,
) -> io::Result<u64> {
    let mut sent = 0;
    while sent < count {
        let chunk = usize::try_from(count - sent)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        match nix::sys::sendfile::sendfile64(fd, file.as_fd(), Some(&mut off), chunk) {
            Ok(0) => break,
            Ok(n) => {
                sent += n as u64;
                offset += n as u64;
            }
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLOUT, &mut deadline)?,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(sent)
}

/// Half-closes the sending side so the client sees the end of a close-delimited response before
/// the socket is dropped (avoids a reset when unread request bytes remain).
pub fn shutdown_write(fd: BorrowedFd<'_>) {
    let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Write);
}

/// Both directions: a reader of the socket then sees the end of the stream.
pub fn shutdown(fd: BorrowedFd<'_>) {
    let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

/// A regular file's own descriptor (dup'ed from one another object owns, e.g. a Python file's
/// fileno()) and its size; None when `raw` is not an open regular file.
pub fn dup_regular_file(raw: std::os::fd::RawFd) -> Option<(std::fs::File, u64)> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup(2) accepts any integer; a non-negative result is a new descriptor we own.
    let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return None;
    }
    // SAFETY: `dup` was just returned by the kernel and nothing else refers to it.
    let file = unsafe { std::fs::File::from_raw_fd(dup) };
    let meta = file.metadata().ok()?;
    let len = meta.len();
    meta.is_file().then_some((file, len))
}
