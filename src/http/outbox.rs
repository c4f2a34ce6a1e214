//! Every byte the worker writes to its clients, and the one rule about their order: complete small
//! responses may be held back so they leave in bursts (the flusher task sends them once the ready
//! connections of a turn have run their requests, so clients on loopback wake once per burst),
//! and every other write — a response, `100 Continue`, an error, a file, a close — first sends
//! what is held, so no connection's bytes ever overtake its own held response. One per worker,
//! shared by its connections. Never parses and never decides framing.
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use super::buffers::recycle;
use super::conn::Stream;
use crate::sockets::io as sockio;

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    held: Vec<Held>,
    /// The flusher task, while it waits for the first response of the next burst.
    flusher: Option<Waker>,
}

/// A complete response and the connection it is for.
struct Held {
    stream: Arc<Stream>,
    io_timeout: Duration,
    response: Vec<u8>,
}

impl Outbox {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while the lock was held left at worst a queue of whole responses behind.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Holds a complete response for the flusher (`run_flusher`) to send after the other ready
    /// connections of this turn; the connection stays open until it has gone.
    pub fn hold(&self, stream: Arc<Stream>, io_timeout: Duration, response: Vec<u8>) {
        let flusher = {
            let mut queue = self.queue();
            queue.held.push(Held {
                stream,
                io_timeout,
                response,
            });
            queue.flusher.take()
        };
        if let Some(flusher) = flusher {
            flusher.wake();
        }
    }

    /// Sends every held response, oldest first. A connection whose response cannot be sent is
    /// shut down, which its own task then sees as the end of the connection.
    pub fn flush(&self) {
        let mut held = {
            let mut queue = self.queue();
            if queue.held.is_empty() {
                return;
            }
            std::mem::take(&mut queue.held)
        };
        for Held {
            stream,
            io_timeout,
            response,
        } in held.drain(..)
        {
            let deadline = sockio::Deadline::after(io_timeout);
            let sent = sockio::write_all(stream.as_fd(), &mut [IoSlice::new(&response)], deadline);
            if sent.is_err() {
                sockio::shutdown(stream.as_fd());
            }
            recycle(response);
        }
        // Hand the emptied vector back so the queue does not grow a new one every burst.
        let mut queue = self.queue();
        if queue.held.is_empty() {
            queue.held = held;
        }
    }

    /// Writes to one connection, after everything held.
    pub fn write(
        &self,
        stream: &Stream,
        io_timeout: Duration,
        slices: &mut [IoSlice<'_>],
    ) -> io::Result<()> {
        self.flush();
        sockio::write_all(stream.as_fd(), slices, sockio::Deadline::after(io_timeout))
    }

    /// Sends `count` bytes of a regular file from `offset` with sendfile(2), after everything held.
    pub fn send_file(
        &self,
        stream: &Stream,
        io_timeout: Duration,
        file: &impl AsFd,
        (offset, count): (u64, u64),
    ) -> io::Result<u64> {
        self.flush();
        let deadline = sockio::Deadline::after(io_timeout);
        sockio::send_file(stream.as_fd(), file, offset, count, deadline)
    }

    /// Ends the sending side of a connection, after everything held.
    pub fn shutdown_write(&self, stream: &Stream) {
        self.flush();
        sockio::shutdown_write(stream.as_fd())
    }

    /// The flusher: sends what was held each time it runs. Woken by the first response of a
    /// burst, it runs after the tasks already queued, the other connections of the same turn.
    pub async fn run_flusher(self: Arc<Self>) {
        std::future::poll_fn(|cx| {
            self.flush();
            self.queue().flusher = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::io::{IoSlice, Read};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;

    use super::Outbox;
    use crate::http::conn::{ConnIo, Stream};

    fn connection(outbox: &Arc<Outbox>) -> (ConnIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let stream = Arc::new(Stream::Plain(server));
        let conn = ConnIo::new(stream, Duration::from_secs(5), outbox.clone());
        (conn, client)
    }

    fn received(conn: ConnIo, mut client: TcpStream) -> String {
        conn.close();
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        got
    }

    fn hold(outbox: &Outbox, conn: &ConnIo, bytes: &[u8]) {
        outbox.hold(conn.stream.clone(), conn.io_timeout, bytes.to_vec());
    }

    #[test]
    fn held_responses_leave_before_any_later_write() {
        let outbox = Arc::new(Outbox::default());
        let (conn, client) = connection(&outbox);
        hold(&outbox, &conn, b"first ");
        hold(&outbox, &conn, b"second ");
        conn.write_all(&mut [IoSlice::new(b"third")]).unwrap();
        assert_eq!(received(conn, client), "first second third");
    }

    #[test]
    fn a_write_on_one_connection_sends_what_another_held_first() {
        let outbox = Arc::new(Outbox::default());
        let (one, one_client) = connection(&outbox);
        let (two, two_client) = connection(&outbox);
        hold(&outbox, &one, b"held");
        two.write_all(&mut [IoSlice::new(b"direct")]).unwrap();
        assert_eq!(
            Arc::strong_count(&one.stream),
            1,
            "the held response was sent"
        );
        assert_eq!(received(two, two_client), "direct");
        assert_eq!(received(one, one_client), "held");
    }

    #[test]
    fn closing_a_connection_sends_its_held_response_first() {
        let outbox = Arc::new(Outbox::default());
        let (conn, client) = connection(&outbox);
        hold(&outbox, &conn, b"last words");
        assert_eq!(received(conn, client), "last words");
    }

    #[test]
    fn a_flush_sends_and_lets_go_of_the_connection() {
        let outbox = Arc::new(Outbox::default());
        let (conn, client) = connection(&outbox);
        hold(&outbox, &conn, b"only");
        outbox.flush();
        assert_eq!(Arc::strong_count(&conn.stream), 1);
        assert_eq!(received(conn, client), "only");
    }
}
