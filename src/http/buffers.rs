//! A per-thread stock of byte buffers for response heads and held responses, which every request
//! needs and which are done with once the response is out. Memory only: never touches a socket.
use std::cell::RefCell;

/// Buffers kept per thread, and the largest capacity worth keeping: bigger ones are freed, so the
/// stock never holds more than about this many times that size. A burst of held responses takes
/// one buffer per ready connection, and a loaded worker has dozens ready in one turn.
const STOCK: usize = 64;
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// The least capacity a buffer is made with: enough for the usual head or small response, so a
/// recycled buffer rarely has to grow for its next use.
const MIN_CAPACITY: usize = 1024;

/// An empty buffer with room for at least `capacity` bytes.
pub fn take(capacity: usize) -> Vec<u8> {
    let mut buffer = SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(MIN_CAPACITY));
    buffer.reserve(capacity);
    buffer
}

/// Gives a buffer back for `take` to hand out again.
pub fn recycle(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > KEEP_CAPACITY {
        return;
    }
    buffer.clear();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < STOCK {
            spare.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{recycle, take, KEEP_CAPACITY, MIN_CAPACITY, STOCK};

    #[test]
    fn buffers_come_back_empty_and_the_stock_stays_bounded() {
        let mut used = take(10);
        used.extend_from_slice(b"response");
        let address = used.as_ptr();
        recycle(used);
        let again = take(4);
        assert_eq!((again.len(), again.as_ptr()), (0, address));
        recycle(Vec::with_capacity(KEEP_CAPACITY + 1));
        for _ in 0..STOCK * 2 {
            recycle(Vec::with_capacity(8));
        }
        let stock: Vec<Vec<u8>> = (0..STOCK + 1).map(|_| take(0)).collect();
        let recycled = stock.iter().filter(|b| b.capacity() == 8).count();
        assert_eq!(recycled, STOCK);
        assert_eq!(stock[STOCK].capacity(), MIN_CAPACITY);
    }
}
