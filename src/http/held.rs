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
