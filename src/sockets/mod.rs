//! OS: the listening sockets. Binds every `BindSpec` (TCP v4/v6, unix, inherited fd) in the
//! master before any fork, and removes unix socket files on exit. Never accepts or reads.
pub mod accept;
pub mod io;
mod queue;

use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::BindSpec;
use crate::{Error, Result};
pub use queue::ListenQueue;

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// The address as gunicorn prints it: `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => format!("http://{addr}"),
                Err(_) => "http://?".to_string(),
            },
            Listener::Unix { path, .. } => format!("unix:{}", path.display()),
        }
    }

    pub fn try_clone(&self) -> Result<Listener> {
        let clone_error = |e| Error::io("duplicate listening socket", e);
        Ok(match self {
            Listener::Tcp(listener) => Listener::Tcp(listener.try_clone().map_err(clone_error)?),
            Listener::Unix { listener, path } => Listener::Unix {
                listener: listener.try_clone().map_err(clone_error)?,
                path: path.clone(),
            },
        })
    }

    /// Lets the socket survive exec (for the new master of a USR2 upgrade), or not.
    pub fn set_inheritable(&self, inheritable: bool) -> Result<()> {
        let socket = socket2::SockRef::from(self);
        socket
            .set_cloexec(!inheritable)
            .map_err(|e| Error::io("change close-on-exec of a listening socket", e))
    }

    /// Removes the socket file of a unix listener; called by the master on final exit only.
    pub fn remove_file(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(listener) => listener.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Binds every address in order; the first failure aborts with the address that failed.
pub fn bind_all(specs: &[BindSpec], backlog: u32, reuse_port: bool) -> Result<Vec<Listener>> {
    specs
        .iter()
        .map(|spec| bind(spec, backlog, reuse_port))
        .collect()
}

fn bind(spec: &BindSpec, backlog: u32, reuse_port: bool) -> Result<Listener> {
    match spec {
        BindSpec::Tcp { host, port } => bind_tcp(host, *port, backlog, reuse_port),
        BindSpec::Unix(path) => bind_unix(path, backlog),
        BindSpec::Fd(fd) => inherit_fd(*fd),
    }
}

fn bind_tcp(host: &str, port: u16, backlog: u32, reuse_port: bool) -> Result<Listener> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let fail = |source| Error::Bind {
        address: shown.clone(),
        source,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(fail)?
        .next()
        .ok_or_else(|| fail(std::io::ErrorKind::AddrNotAvailable.into()))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if reuse_port {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(fail)?;
    }
    socket.bind(&SockAddr::from(addr)).map_err(fail)?;
    socket.listen(backlog_int(backlog)).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(Listener::Tcp(socket.into()))
}

fn bind_unix(path: &Path, backlog: u32) -> Result<Listener> {
    let fail = |source| Error::Bind {
        address: format!("unix:{}", path.display()),
        source,
    };
    remove_stale_socket(path).map_err(fail)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    socket
        .bind(&SockAddr::unix(path).map_err(fail)?)
        .map_err(fail)?;
    socket.listen(backlog_int(backlog)).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(Listener::Unix {
        listener: UnixListener::from(OwnedFd::from(socket)),
        path: path.to_path_buf(),
    })
}

/// A unix socket only its owner may connect to (the control socket): mode 0600, from the umask
/// in force while it is bound, so that it is never open to others even for a moment.
pub fn bind_private(path: &Path) -> Result<Listener> {
    use nix::sys::stat::{umask, Mode};
    let before = umask(Mode::from_bits_truncate(0o177));
    let bound = bind_unix(path, 16);
    umask(before);
    bound
}

/// A socket file left by a previous run would make bind fail; anything else at that path is
/// not ours to delete.
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes over an open listening socket by number (`fd://N`, systemd, or a USR2 handover).
pub fn inherit_fd(fd: RawFd) -> Result<Listener> {
    let fail = |source| Error::Bind {
        address: format!("fd://{fd}"),
        source,
    };
    // SAFETY: F_GETFD only reads the descriptor flags; any integer is a valid argument.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(fail(std::io::Error::from_raw_os_error(libc::EBADF)));
    }
    // SAFETY: the fd is open (checked above) and was handed to us to own by whoever started us
    // (`--bind fd://N` or systemd); nothing else in this process refers to it.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    socket.set_nonblocking(true).map_err(fail)?;
    socket.set_cloexec(true).map_err(fail)?;
    let local = socket.local_addr().map_err(fail)?;
    if let Some(path) = local.as_pathname() {
        let path = path.to_path_buf();
        let listener = UnixListener::from(OwnedFd::from(socket));
        return Ok(Listener::Unix { listener, path });
    }
    if local.as_socket().is_none() {
        return Err(fail(std::io::ErrorKind::InvalidInput.into()));
    }
    Ok(Listener::Tcp(socket.into()))
}

fn backlog_int(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}
