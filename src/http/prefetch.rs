//! Reads a small request body ahead in the reactor, before the request takes a Python thread: a
//! slow upload then never pins a thread, and a body whose chunked framing is broken, that is cut
//! short, or that is over limit_request_body is refused before the app runs. Bodies larger than
//! `READ_AHEAD_MAX`, and those a client sends only after `100 Continue`, stream to the app as
//! before. Parses nothing itself: chunked bytes are decoded by the request's own `BodyReader`,
//! where the app then reads them, so no body is decoded twice.
use std::io;
use std::time::Duration;

use tokio::time::Instant;

use super::body::{BodyError, BodyReader};
use super::response::reason;

/// The most body bytes, as sent (chunk framing included), read before the app runs.
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

impl From<BodyError> for Refusal {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Parse(error) => Refusal::new(error.status(), error.to_string()),
            BodyError::TooLarge(_) => Refusal::new(413, reason(413)),
            BodyError::Io(_) | BodyError::Truncated => {
                Refusal::new(400, "connection closed before the end of the body")
            }
        }
    }
}

/// Waits until the whole body is buffered in `body`, or decides it is not ours to buffer.
/// `idle` bounds each wait for more bytes.
pub async fn read_body_ahead(body: &mut BodyReader, idle: Duration) -> Result<(), Refusal> {
    if body.continue_pending() {
        return Ok(());
    }
    let mut read = 0;
    loop {
        read += body.decode_ahead()?;
        if read >= READ_AHEAD_MAX || body.buffered_whole(READ_AHEAD_MAX as u64) {
            return Ok(());
        }
        let conn = body.conn_mut();
        let deadline = Instant::now() + idle;
        tokio::select! {
            ready = conn.readable() => ready.map_err(BodyError::Io)?,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Refusal::new(408, "timed out reading the request body"));
            }
        }
        match conn.read_available() {
            Ok(0) => return Err(BodyError::Truncated.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(BodyError::Io(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::{ConnIo, Stream};
    use crate::http::outbox::Outbox;
    use crate::http::rules_tests::rules;
    use crate::http::{parse_head, ProxyPolicy};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    /// What the reactor made of a request, and what the app then reads of its body.
    #[derive(Debug, PartialEq)]
    struct Ahead {
        status: u16,
        /// Bytes still in the connection buffer once the head was read and the body read ahead.
        raw_left: usize,
        /// The body as the app reads it, and what is left for the next request.
        body: Vec<u8>,
        next: Vec<u8>,
    }

    /// Sends `sent` (then EOF if `close`), reads the head and the body ahead as the reactor does,
    /// then reads the body as the app would (from what is buffered only).
    fn ahead(sent: &[u8], close: bool, limit: u64) -> Ahead {
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
            let outbox = Arc::new(Outbox::default());
            let mut conn = ConnIo::new(stream, Duration::from_secs(5), outbox);
            let head = loop {
                let parsed = parse_head(
                    conn.unread(),
                    &rules(&["--permit-missing-host"]),
                    ProxyPolicy::Off,
                );
                if let Some((head, used)) = parsed.unwrap() {
                    conn.consume(used);
                    break head;
                }
                conn.readable().await.unwrap();
                let _ = conn.read_available();
            };
            let framing = (&head.framing, head.expect_continue);
            let mut body = match BodyReader::new(conn, framing.0, framing.1, limit) {
                Ok(body) => body,
                Err((conn, _)) => return outcome(413, conn.unread().len(), None),
            };
            let verdict = read_body_ahead(&mut body, Duration::from_millis(300)).await;
            let raw_left = body.conn().unread().len();
            drop(client);
            match verdict {
                Err(refusal) => outcome(refusal.status, raw_left, None),
                Ok(()) => outcome(200, raw_left, Some(body)),
            }
        })
    }

    fn outcome(status: u16, raw_left: usize, body: Option<BodyReader>) -> Ahead {
        let mut out = Vec::new();
        let whole = body.filter(|body| body.buffered_whole(u64::MAX));
        let next = whole.map_or_else(Vec::new, |mut body| {
            while body.read(1 << 20, &mut out).unwrap() > 0 {}
            let (conn, _, _) = body.finish(0);
            conn.unread().to_vec()
        });
        Ahead {
            status,
            raw_left,
            body: out,
            next,
        }
    }

    fn status(sent: &[u8], close: bool, limit: u64) -> u16 {
        ahead(sent, close, limit).status
    }

    #[test]
    fn a_whole_body_and_what_follows_stay_buffered() {
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
        let got = ahead(sent, false, 0);
        assert_eq!((got.status, got.raw_left), (200, 5 + 18));
        assert_eq!((&got.body[..], &got.next[..]), (&b"hello"[..], &sent[43..]));
    }

    #[test]
    fn a_chunked_body_is_decoded_once_into_the_reader() {
        let next = b"GET / HTTP/1.1\r\n\r\n";
        let sent = [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
            next,
        ]
        .concat();
        let got = ahead(&sent, false, 0);
        // The chunk framing is gone from the connection buffer: only the next request is left
        // there, and the app reads the decoded body from the reader itself.
        assert_eq!((got.status, got.raw_left), (200, next.len()));
        assert_eq!((&got.body[..], &got.next[..]), (&b"hello"[..], &next[..]));
    }

    #[test]
    fn broken_chunked_framing_is_refused_before_the_app() {
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-1\r\n\r\n";
        assert_eq!(status(sent, false, 0), 400);
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: x\r\n\r\n";
        assert_eq!(status(sent, false, 0), 400);
    }

    #[test]
    fn bodies_over_the_limit_are_413() {
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello!\r\n0\r\n\r\n";
        assert_eq!(status(sent, false, 5), 413);
        assert_eq!(status(sent, false, 6), 200);
        let declared = b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n";
        assert_eq!(status(declared, false, 10), 413);
    }

    #[test]
    fn a_body_cut_short_is_400_and_a_stalled_one_408() {
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello";
        assert_eq!(status(sent, true, 0), 400);
        assert_eq!(status(sent, false, 0), 408);
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        assert_eq!(status(sent, true, 0), 400);
    }

    #[test]
    fn expect_continue_and_large_bodies_are_left_to_stream() {
        let expect = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(ahead(expect, false, 0).raw_left, 0);
        let large = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            READ_AHEAD_MAX + 1
        );
        assert_eq!(ahead(large.as_bytes(), false, 0).status, 200);
    }

    #[test]
    fn chunk_framing_counts_against_the_read_ahead() {
        // One body byte per chunk, each behind a long extension: the body is small, what was
        // sent is not, and the reactor stops reading ahead at READ_AHEAD_MAX bytes as sent.
        let chunk = format!("1;{}=v\r\nx\r\n", "e".repeat(1000));
        let mut sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        while sent.len() < 2 * READ_AHEAD_MAX {
            sent.extend_from_slice(chunk.as_bytes());
        }
        // Never finished: were the reactor to wait for the end, this would be a 408.
        assert_eq!(status(&sent, false, 0), 200);
    }
}
