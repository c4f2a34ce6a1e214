//! Complete small responses held back so they leave in bursts: a per-thread queue the reactor's
//! flusher task empties once the ready connections of a turn have run their requests. Clients on
//! loopback then wake once per burst rather than once per response, and a connection needs no
//! second turn of its own to send its response. Every other write on the thread empties the queue
//! first, so a connection's bytes always leave in order. Never parses and never decides framing.
use std::cell::RefCell;
use std::io::IoSlice;
use std::task::{Poll, Waker};

use super::buffers::recycle;
use super::conn::Sender;

#[derive(Default)]
struct Queue {
    responses: Vec<(Sender, Vec<u8>)>,
    /// The flusher task, while it waits for the first response of the next burst.
    flusher: Option<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Queues a complete response for the flusher (`run_flusher`) to send after the other ready
/// connections of this turn.
pub fn hold(sender: Sender, response: Vec<u8>) {
    let flusher = QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        queue.responses.push((sender, response));
        queue.flusher.take()
    });
    if let Some(flusher) = flusher {
        flusher.wake();
    }
}

/// Sends every held response of this thread, oldest first. A connection whose response cannot be
/// sent is shut down, which its own task then sees as the end of the connection.
pub fn flush() {
    let responses = QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        (!queue.responses.is_empty()).then(|| std::mem::take(&mut queue.responses))
    });
    let Some(mut responses) = responses else {
        return;
    };
    for (sender, response) in responses.drain(..) {
        if sender.write_raw(&mut [IoSlice::new(&response)]).is_err() {
            sender.shutdown();
        }
        recycle(response);
    }
    // Hand the emptied vector back so the queue does not grow a new one every burst.
    QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        if queue.responses.is_empty() {
            queue.responses = responses;
        }
    });
}

/// The flusher: sends what was held each time it runs. Woken by the first response of a burst,
/// it runs after the tasks already queued, the other connections of the same turn.
pub async fn run_flusher() {
    std::future::poll_fn(|cx| {
        flush();
        QUEUE.with(|queue| queue.borrow_mut().flusher = Some(cx.waker().clone()));
        Poll::<()>::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::io::{IoSlice, Read};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;

    use super::{flush, hold};
    use crate::http::conn::{ConnIo, Stream};

    fn connection() -> (ConnIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let conn = ConnIo::new(Arc::new(Stream::Plain(server)), Duration::from_secs(5));
        (conn, client)
    }

    fn received(conn: ConnIo, mut client: TcpStream) -> String {
        drop(conn);
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        got
    }

    #[test]
    fn held_responses_leave_before_any_later_write() {
        let (conn, client) = connection();
        hold(conn.sender(), b"first ".to_vec());
        hold(conn.sender(), b"second ".to_vec());
        conn.write_all(&mut [IoSlice::new(b"third")]).unwrap();
        assert_eq!(received(conn, client), "first second third");
    }

    #[test]
    fn a_flush_sends_and_lets_go_of_the_connection() {
        let (conn, client) = connection();
        hold(conn.sender(), b"only".to_vec());
        flush();
        assert_eq!(Arc::strong_count(&conn.stream), 1);
        assert_eq!(received(conn, client), "only");
    }
}
