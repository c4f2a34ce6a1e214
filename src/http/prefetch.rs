//! Reads a small request body ahead in the reactor, before the request takes a Python thread: a
//! slow upload then never pins a thread, and a body whose chunked framing is broken, that is cut
//! short, or that is over limit_request_body is refused before the app runs. Bodies larger than
//! `READ_AHEAD_MAX`, and those a client sends only after `100 Continue`, stream to the app as
//! before. Parses nothing itself: it runs the body reader's own `ChunkedDecoder` over the
//! buffered bytes and discards the output; the bytes stay in the connection buffer.
use std::io;
use std::time::Duration;

use tokio::time::Instant;

use super::chunked::ChunkedDecoder;
use super::conn::ConnIo;
use super::request::{BodyFraming, RequestHead};
use super::response::reason;

/// The most body bytes, as sent (chunk framing included), buffered before the app runs.
pub const READ_AHEAD_MAX: usize = 64 * 1024;

/// Why a request is answered with an error instead of reaching the app.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub detail: String,
}

impl Refusal {
    fn new(status: u16, detail: impl Into<String>) -> Self {
        Refusal {
            status,
            detail: detail.into(),
        }
    }
}

/// Waits until the body of `head` is in `conn`'s buffer, or decides it is not ours to buffer.
/// `idle` bounds each wait for more bytes; `limit` is limit_request_body (0 = none).
pub async fn read_body_ahead(
    conn: &mut ConnIo,
    head: &RequestHead,
    idle: Duration,
    limit: u64,
) -> Result<(), Refusal> {
    if head.expect_continue {
        return Ok(());
    }
    let mut decoder = ChunkedDecoder::default();
    let (mut checked, mut decoded, mut scratch) = (0, 0u64, Vec::new());
    loop {
        let complete = match head.framing {
            BodyFraming::Empty => true,
            // Over the limit: refused before reading (BodyReader::new); too big: streamed.
            BodyFraming::Length(n) if n > READ_AHEAD_MAX as u64 || (limit > 0 && n > limit) => true,
            BodyFraming::Length(n) => conn.unread().len() as u64 >= n,
            BodyFraming::Chunked => {
                scratch.clear();
                let used = decoder
                    .decode(&conn.unread()[checked..], &mut scratch, usize::MAX)
                    .map_err(|error| Refusal::new(error.status(), error.to_string()))?;
                checked += used;
                decoded += scratch.len() as u64;
                if limit > 0 && decoded > limit {
                    return Err(Refusal::new(413, reason(413)));
                }
                decoder.is_done() || checked >= READ_AHEAD_MAX
            }
        };
        if complete {
            return Ok(());
        }
        let deadline = Instant::now() + idle;
        let truncated = || Refusal::new(400, "connection closed before the end of the body");
        tokio::select! {
            ready = conn.readable() => ready.map_err(|_| truncated())?,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Refusal::new(408, "timed out reading the request body"));
            }
        }
        match conn.read_available() {
            Ok(0) => return Err(truncated()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(truncated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::Stream;
    use crate::http::{parse_head, Limits};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    /// Sends `sent` (then EOF if `close`), reads the head as the reactor does, then reads the
    /// body ahead: the verdict and how many bytes wait unread in the connection buffer.
    fn ahead(sent: &[u8], close: bool, limit: u64) -> (Result<(), Refusal>, usize) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (server, mut client) = tokio::net::UnixStream::pair().unwrap();
            client.write_all(sent).await.unwrap();
            if close {
                client.shutdown().await.unwrap();
            }
            let stream = Arc::new(Stream::Unix(server));
            let mut conn = ConnIo::new(stream, Duration::from_secs(5));
            let head = loop {
                let parsed = parse_head(conn.unread(), &Limits::default(), false).unwrap();
                if let Some((head, used)) = parsed {
                    conn.consume(used);
                    break head;
                }
                conn.readable().await.unwrap();
                let _ = conn.read_available();
            };
            let idle = Duration::from_millis(300);
            let verdict = read_body_ahead(&mut conn, &head, idle, limit).await;
            drop(client);
            (verdict, conn.unread().len())
        })
    }

    fn status(verdict: Result<(), Refusal>) -> u16 {
        verdict.map_or_else(|refusal| refusal.status, |()| 200)
    }

    #[test]
    fn a_whole_body_and_what_follows_stay_buffered() {
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
        assert_eq!(ahead(sent, false, 0), (Ok(()), 5 + 18));
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(ahead(sent, false, 0), (Ok(()), 15));
    }

    #[test]
    fn broken_chunked_framing_is_refused_before_the_app() {
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-1\r\n\r\n";
        assert_eq!(status(ahead(sent, false, 0).0), 400);
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: x\r\n\r\n";
        assert_eq!(status(ahead(sent, false, 0).0), 400);
    }

    #[test]
    fn a_chunked_body_over_the_limit_is_413() {
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello!\r\n0\r\n\r\n";
        assert_eq!(status(ahead(sent, false, 5).0), 413);
        assert_eq!(status(ahead(sent, false, 6).0), 200);
    }

    #[test]
    fn a_body_cut_short_is_400_and_a_stalled_one_408() {
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello";
        assert_eq!(status(ahead(sent, true, 0).0), 400);
        assert_eq!(status(ahead(sent, false, 0).0), 408);
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        assert_eq!(status(ahead(sent, true, 0).0), 400);
    }

    #[test]
    fn expect_continue_large_and_over_limit_bodies_are_left_alone() {
        let expect = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(ahead(expect, false, 0), (Ok(()), 0));
        let large = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            READ_AHEAD_MAX + 1
        );
        assert_eq!(ahead(large.as_bytes(), false, 0), (Ok(()), 0));
        let over = b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n";
        assert_eq!(ahead(over, false, 10), (Ok(()), 0));
    }
}
