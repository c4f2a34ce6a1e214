//! OS: accept(2) of TCP connections straight to non-blocking, close-on-exec sockets that no
//! reactor knows yet, with the peer's address; the listener waits in the worker's reactor. Knows
//! nothing of HTTP.
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsRawFd, FromRawFd};

use tokio::io::unix::AsyncFd;

/// A non-blocking listener registered with the current tokio reactor.
pub struct TcpAcceptor(AsyncFd<TcpListener>);

impl TcpAcceptor {
    /// Must run inside a tokio runtime.
    pub fn new(listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        // SAFETY: the TcpListener owns its descriptor, which stays open, and is the same one,
        // for as long as the AsyncFd owns the listener.
        let registered = unsafe { AsyncFd::register(listener) };
        registered.map(TcpAcceptor).map_err(io::Error::from)
    }

    /// The next connection, unregistered.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let mut ready = self.0.readable().await?;
            if let Ok(accepted) = ready.try_io(|l| accept_nonblocking(l.get_ref())) {
                return accepted;
            }
        }
    }
}

/// TCP_DEFER_ACCEPT: the kernel completes a connection for accept(2) only once its first bytes
/// arrived (or `seconds` passed), so the request is there when the worker accepts it.
pub fn defer_accept(listener: &TcpListener, seconds: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: passes a c_int of the size given, for an option that takes one, on an open socket.
    let done = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One accept4(2) on a non-blocking listener: WouldBlock when no connection is waiting.
pub fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let fd = loop {
        // SAFETY: `storage` and `len` describe a writable sockaddr_storage of that size, and the
        // listener's descriptor stays open for the call.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                storage.as_mut_ptr().cast::<libc::sockaddr>(),
                &mut len,
                flags,
            )
        };
        if fd >= 0 {
            break fd;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: zero-initialised, then filled in by accept4.
    let storage = unsafe { storage.assume_init() };
    Ok((stream, peer_address(&storage)?))
}

fn peer_address(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    let pointer: *const libc::sockaddr_storage = storage;
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which fits in it.
            let v4 = unsafe { &*pointer.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Ok(SocketAddrV4::new(ip, u16::from_be(v4.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which fits in it.
            let v6 = unsafe { &*pointer.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            let port = u16::from_be(v6.sin6_port);
            Ok(SocketAddrV6::new(ip, port, v6.sin6_flowinfo, v6.sin6_scope_id).into())
        }
        family => Err(io::Error::other(format!(
            "accepted a socket of family {family}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_with_the_peer_address_and_would_block_when_none_waits() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = TcpListener::bind(bind) else {
                continue;
            };
            listener.set_nonblocking(true).unwrap();
            let err = accept_nonblocking(&listener).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_, peer) = accept_nonblocking(&listener).unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
        }
    }
}
