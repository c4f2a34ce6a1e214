//! OS: how many connections wait in a listener's accept queue, and its limit (the backlog the
//! kernel applies). TCP asks the socket itself (TCP_INFO); unix sockets ask the kernel's socket
//! diagnostics over netlink (UNIX_DIAG_RQLEN). Reads only, never blocks; None when unknown.
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use super::Listener;

/// A listen queue as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenQueue {
    /// Connections complete and not yet accepted.
    pub depth: u32,
    /// The most it holds (the effective backlog).
    pub limit: u32,
}

impl Listener {
    pub fn listen_queue(&self) -> Option<ListenQueue> {
        match self {
            Listener::Tcp(listener) => tcp_queue(listener),
            Listener::Unix { listener, .. } => unix_queue(listener),
        }
    }
}

/// For a listening TCP socket, Linux reports the accept queue's length in tcpi_unacked and its
/// limit in tcpi_sacked.
fn tcp_queue(listener: &impl AsRawFd) -> Option<ListenQueue> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large and
    // zero-initialised; the descriptor is borrowed from a live listener.
    let result = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        return None;
    }
    // SAFETY: zero-initialised, then filled by the kernel; every bit pattern is a valid tcp_info.
    let info = unsafe { info.assume_init() };
    Some(ListenQueue {
        depth: info.tcpi_unacked,
        limit: info.tcpi_sacked,
    })
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const TCP_LISTEN: u32 = 10;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
const HEADER: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

fn unix_queue(listener: &impl AsFd) -> Option<ListenQueue> {
    let inode = nix::sys::stat::fstat(listener.as_fd()).ok()?.st_ino;
    let diag = socket::socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .ok()?;
    let request = unix_diag_request(u32::try_from(inode).ok()?);
    let kernel = NetlinkAddr::new(0, 0);
    socket::sendto(diag.as_raw_fd(), &request, &kernel, MsgFlags::empty()).ok()?;
    // The kernel answers a diagnostics request before sendto returns.
    let mut reply = [0u8; 512];
    let len = socket::recv(diag.as_raw_fd(), &mut reply, MsgFlags::MSG_DONTWAIT).ok()?;
    parse_rqlen(&reply[..len])
}

/// nlmsghdr + unix_diag_req for one listening socket by inode, asking for its queue lengths.
fn unix_diag_request(inode: u32) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER + 24);
    message.extend_from_slice(&((HEADER + 24) as u32).to_ne_bytes());
    message.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    message.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    message.extend_from_slice(&[0u8; 8]);
    message.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    message.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    message.extend_from_slice(&inode.to_ne_bytes());
    message.extend_from_slice(&UDIAG_SHOW_RQLEN.to_ne_bytes());
    message.extend_from_slice(&[0xff; 8]);
    message
}

/// The UNIX_DIAG_RQLEN attribute of a reply: for a listener, the queue length and its limit.
fn parse_rqlen(reply: &[u8]) -> Option<ListenQueue> {
    let u16_at = |at: usize| Some(u16::from_ne_bytes(reply.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_ne_bytes(reply.get(at..at + 4)?.try_into().ok()?));
    let total = (u32_at(0)? as usize).min(reply.len());
    if u16_at(4)? == NLMSG_ERROR {
        return None;
    }
    let mut at = HEADER + UNIX_DIAG_MSG;
    while at + 4 <= total {
        let len = u16_at(at)? as usize;
        if len < 4 {
            return None;
        }
        if u16_at(at + 2)? == UNIX_DIAG_RQLEN {
            return Some(ListenQueue {
                depth: u32_at(at + 4)?,
                limit: u32_at(at + 8)?,
            });
        }
        at += len.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn both_kinds_count_what_waits_to_be_accepted() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let _waiting: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let queue = tcp_queue(&tcp).unwrap();
        assert_eq!(queue.depth, 3);
        assert!(queue.limit >= 3);
        let path =
            std::env::temp_dir().join(format!("rgunicorn-queue-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = UnixListener::bind(&path).unwrap();
        let _waiting: Vec<_> = (0..2)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        let queue = unix_queue(&unix).unwrap();
        assert_eq!(queue.depth, 2);
        assert!(queue.limit >= 2);
        let _ = std::fs::remove_file(path);
    }
}
