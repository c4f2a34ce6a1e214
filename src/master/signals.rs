//! OS: the master's signals. Each delivery increments a per-signal counter and writes a byte to a
//! self-pipe that wakes the arbiter loop, so no signal is lost or merged however fast they come
//! (gunicorn keeps at most five in a queue). No policy: what a signal means is decided elsewhere.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use signal_hook::low_level::{register, unregister};
use signal_hook::SigId;

use crate::{Error, Result};

/// The signals the master acts on, in the order it handles a batch of them.
pub const HANDLED: [Signal; 10] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGUSR1,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCHLD,
];

static COUNTS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

pub struct SignalQueue {
    wake_read: OwnedFd,
    wake_write: OwnedFd,
    ids: Vec<SigId>,
}

impl SignalQueue {
    pub fn install() -> Result<Self> {
        let fail = |e: Errno| Error::io("set up signal handling", e.into());
        let (wake_read, wake_write) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(fail)?;
        let write_fd = wake_write.as_raw_fd();
        let mut ids = Vec::new();
        for signal in HANDLED {
            let number = signal as i32;
            // SAFETY: the action only touches an atomic and calls write(2), both async-signal-safe.
            let id = unsafe { register(number, move || on_signal(number, write_fd)) };
            ids.push(id.map_err(|e| Error::io("register signal handler", e))?);
        }
        Ok(SignalQueue {
            wake_read,
            wake_write,
            ids,
        })
    }

    /// Waits up to `timeout` for signals or for one of `extra` to be ready for what it is polled
    /// for; returns each signal as many times as it was delivered, and which of `extra` are ready.
    pub fn wait(
        &self,
        timeout: Duration,
        extra: &[(BorrowedFd<'_>, PollFlags)],
    ) -> (Vec<Signal>, Vec<bool>) {
        let mut fds = vec![PollFd::new(self.wake_read.as_fd(), PollFlags::POLLIN)];
        fds.extend(extra.iter().map(|(fd, flags)| PollFd::new(*fd, *flags)));
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let polled = nix::poll::poll(&mut fds, timeout).unwrap_or(0);
        let readable = |fd: &PollFd| polled > 0 && fd.any().unwrap_or(false);
        let ready = fds[1..].iter().map(readable).collect();
        let mut sink = [0u8; 256];
        while matches!(nix::unistd::read(&self.wake_read, &mut sink), Ok(n) if n > 0) {}
        (self.pending(), ready)
    }

    fn pending(&self) -> Vec<Signal> {
        let mut signals = Vec::new();
        for signal in HANDLED {
            let count = COUNTS[signal as usize].swap(0, Ordering::AcqRel);
            signals.extend(std::iter::repeat_n(signal, count));
        }
        signals
    }

    /// In a freshly forked worker: drops the master's handlers and closes the self-pipe, so the
    /// worker can install its own (DESIGN.md: "drops the master's signal registrations first").
    pub fn forget_in_child(self) {
        for id in self.ids {
            unregister(id);
        }
        for signal in HANDLED {
            COUNTS[signal as usize].store(0, Ordering::Relaxed);
        }
        drop(self.wake_read);
        drop(self.wake_write);
    }
}

fn on_signal(number: i32, write_fd: RawFd) {
    COUNTS[number as usize].fetch_add(1, Ordering::AcqRel);
    // SAFETY: write(2) on a pipe we own; a full pipe just means a wake-up is already pending.
    let _ = unsafe { libc::write(write_fd, [1u8].as_ptr().cast(), 1) };
}

/// Blocks the master's signals around fork so none runs in the child before it has reset them.
pub fn block_all() -> nix::sys::signal::SigSet {
    let mut old = nix::sys::signal::SigSet::empty();
    let all = nix::sys::signal::SigSet::all();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut old),
    );
    old
}

pub fn restore_mask(old: &nix::sys::signal::SigSet) {
    let _ =
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(old), None);
}
