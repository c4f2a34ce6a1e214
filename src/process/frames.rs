//! OS: the zygote link's pipes, one-way streams of fixed-size messages with deadlines. Moves
//! bytes only: the messages' meaning is in `worker::link`, the policy in the master.
use crate::{Error, Result};

/// Messages on a zygote link are this many bytes: a pipe write of up to PIPE_BUF bytes is
/// atomic, so a reader never sees half a message.
pub const FRAME: usize = 16;

/// A one-way pipe of fixed-size messages; each end is its own value, so after fork each side
/// keeps only the ends it uses and a dead peer reads as end of file.
pub fn frame_pipe() -> Result<(FrameReader, FrameWriter)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("create a pipe", e.into()))?;
    Ok((FrameReader(read), FrameWriter(write)))
}

pub struct FrameReader(std::os::fd::OwnedFd);
pub struct FrameWriter(std::os::fd::OwnedFd);

/// Why no message came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    TimedOut,
    /// The writing side is gone (or the pipe broke).
    Closed,
}

impl FrameWriter {
    pub fn send(&self, frame: &[u8; FRAME]) -> Result<()> {
        loop {
            match nix::unistd::write(&self.0, frame) {
                Ok(FRAME) => return Ok(()),
                Ok(_) => {
                    return Err(Error::io(
                        "write a message",
                        std::io::ErrorKind::WriteZero.into(),
                    ))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::io("write a message", e.into())),
            }
        }
    }
}

impl FrameReader {
    /// Waits up to `timeout` for one message; a signal during the wait resumes it with the time
    /// that is left, so an interrupted wait never passes for a missing answer.
    pub fn receive(
        &self,
        timeout: std::time::Duration,
    ) -> std::result::Result<[u8; FRAME], Receive> {
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut fds = [nix::poll::PollFd::new(
                self.0.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let wait =
                nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
            match nix::poll::poll(&mut fds, wait) {
                Ok(0) => return Err(Receive::TimedOut),
                Ok(_) => return self.read_frame(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Err(Receive::Closed),
            }
        }
    }

    fn read_frame(&self) -> std::result::Result<[u8; FRAME], Receive> {
        let mut frame = [0u8; FRAME];
        loop {
            match nix::unistd::read(&self.0, &mut frame) {
                Ok(FRAME) => return Ok(frame),
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return Err(Receive::Closed),
            }
        }
    }
}

impl std::os::fd::AsFd for FrameReader {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}
