//! Reading one request head off a connection in the reactor: parse what is buffered, read more
//! when the socket has it, and wait with the keep-alive or head timeout. Never runs a request.
use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::conn::ConnIo;
use super::parser::parse_head_into;
use super::request::{ParseError, ProxyPolicy, RequestHead};
use super::server::ServeConfig;

/// How long a stopping worker without keep-alive still waits for the first request of a
/// connection it accepted: that request is normally on its way already, so a round trip would
/// do; gunicorn's default keep-alive time bounds what a silent client can add to the drain.
const LAST_REQUEST_GRACE: Duration = Duration::from_secs(2);

pub(super) enum HeadRead {
    /// The next request's head is in the connection's `RequestHead`.
    Head,
    /// Clean end: EOF, idle timeout, or the worker stopping before a whole head came.
    Closed,
    Invalid(ParseError),
    TimedOut,
}

/// `(first, proxy)`: whether this is the connection's first request, and what a PROXY preamble
/// before it means.
pub(super) async fn read_head(
    conn: &mut ConnIo,
    head: &mut RequestHead,
    config: &ServeConfig,
    (first, proxy): (bool, ProxyPolicy),
    mut timer: Pin<&mut Sleep>,
    stopping: &mut watch::Receiver<bool>,
) -> HeadRead {
    // Set at the first wait: reading the clock costs more than parsing a small head.
    let mut head_deadline = None;
    loop {
        if !conn.unread().is_empty() {
            match parse_head_into(conn.unread(), &config.rules, proxy, head) {
                Ok(Some(used)) => {
                    conn.consume(used);
                    return HeadRead::Head;
                }
                Ok(None) => {}
                Err(error) => return HeadRead::Invalid(error),
            }
        }
        let idle = conn.unread().is_empty();
        if !conn.is_registered() {
            match conn.read_available() {
                Ok(0) => return HeadRead::Closed,
                Ok(_) => continue,
                // Nothing yet: the reactor has to wait for it (`readable` registers the socket).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return HeadRead::Closed,
            }
        }
        // A stopping worker does not wait for a head that is half sent: that would hold the
        // drain until the head timeout. A connection with nothing sent yet keeps at most its
        // (short) keep-alive time, or LAST_REQUEST_GRACE for its first request, for one last
        // request, answered with Connection: close: closing it at once would race a request
        // already on its way (a proxy connects, then writes; the worker may accept in between).
        let waits_for_one_more = idle && (first || config.keepalive.is_some());
        let stop_now = *stopping.borrow();
        if stop_now && !waits_for_one_more {
            return HeadRead::Closed;
        }
        let now = Instant::now();
        let deadline = match (idle && (!first || stop_now), config.keepalive) {
            (true, Some(keepalive)) => now + keepalive,
            (true, None) => now + LAST_REQUEST_GRACE,
            (false, _) => *head_deadline.get_or_insert(now + config.head_timeout),
        };
        timer.as_mut().reset(deadline);
        tokio::select! {
            biased;
            ready = conn.readable() => if ready.is_err() { return HeadRead::Closed },
            _ = timer.as_mut() => return if idle { HeadRead::Closed } else { HeadRead::TimedOut },
            _ = stopping.wait_for(|stop| *stop), if !stop_now => continue,
        }
        match conn.read_available() {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return HeadRead::Closed,
        }
    }
}
