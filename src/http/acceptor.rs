//! A worker's listeners as the reactor accepts from them: TCP (accept4 straight to unregistered
//! sockets, TCP_NODELAY inherited, TCP_DEFER_ACCEPT for one-request connections) and unix.
//! Reads nothing from a connection.
use std::io;
use std::net::SocketAddr;

use super::conn::Stream;
use super::{Local, Peer};
use crate::sockets::accept::TcpAcceptor;
use crate::sockets::Listener;

/// A listener and its own address (SERVER_NAME and SERVER_PORT, as gunicorn takes them from the
/// listening socket), read once.
pub enum Acceptor {
    /// `plain`: hand connections over unregistered (`Stream::Plain`).
    Tcp {
        listener: TcpAcceptor,
        local: SocketAddr,
        plain: bool,
    },
    Unix(tokio::net::UnixListener, std::sync::Arc<str>),
}

impl Local {
    /// The address connections accepted from `listener` arrived on.
    pub fn of(listener: &Listener) -> io::Result<Local> {
        Ok(match listener {
            Listener::Tcp(l) => Local::Tcp(l.local_addr()?),
            Listener::Unix { path, .. } => Local::Unix(unix_path(path)),
        })
    }
}

fn unix_path(path: &std::path::Path) -> std::sync::Arc<str> {
    path.display().to_string().into()
}

impl Acceptor {
    pub fn new(listener: Listener, plain: bool) -> io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(l) => {
                let local = l.local_addr()?;
                // Accepted sockets inherit it: one setsockopt here instead of one per connection.
                socket2::SockRef::from(&l).set_tcp_nodelay(true)?;
                if plain {
                    crate::sockets::accept::defer_accept(&l, 1)?;
                }
                Acceptor::Tcp {
                    listener: TcpAcceptor::new(l)?,
                    local,
                    plain,
                }
            }
            Listener::Unix { listener, path } => Acceptor::Unix(
                tokio::net::UnixListener::from_std(listener)?,
                unix_path(&path),
            ),
        })
    }

    pub async fn accept(&self) -> io::Result<(Stream, Peer, Local)> {
        match self {
            Acceptor::Tcp {
                listener,
                local,
                plain,
            } => {
                let (stream, peer) = listener.accept().await?;
                let stream = match plain {
                    true => Stream::Plain(stream),
                    false => Stream::Tcp(tokio::net::TcpStream::from_std(stream)?),
                };
                Ok((stream, Peer::Tcp(peer), Local::Tcp(*local)))
            }
            Acceptor::Unix(l, path) => {
                let (stream, _) = l.accept().await?;
                Ok((Stream::Unix(stream), Peer::Unix, Local::Unix(path.clone())))
            }
        }
    }
}
