//! The request body as a blocking byte stream for the thread running the request: applies the
//! framing (Content-Length or chunked), the body size limit and `Expect: 100-continue`. Made by
//! the reactor, which may decode a small body ahead (`prefetch`) into the same reader, so a body
//! is decoded once whoever reads it first. Never buffers more than one read's worth beyond that;
//! knows nothing of WSGI.
use std::io::{self, IoSlice};

use super::chunked::ChunkedDecoder;
use super::conn::{ConnIo, Sender};
use super::request::{BodyFraming, ParseError};

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("error reading request body: {0}")]
    Io(#[from] io::Error),
    #[error("invalid request body: {0}")]
    Parse(ParseError),
    #[error("request body larger than limit_request_body ({0} bytes)")]
    TooLarge(u64),
    #[error("client closed the connection before the end of the request body")]
    Truncated,
}

enum Framing {
    Length(u64),
    Chunked {
        decoder: ChunkedDecoder,
        decoded: Vec<u8>,
        pos: usize,
    },
}

pub struct BodyReader {
    conn: ConnIo,
    framing: Framing,
    continue_pending: bool,
    limit: u64,
    received: u64,
    failed: bool,
}

impl BodyReader {
    /// Fails at once with TooLarge when a declared Content-Length is over `limit` (0 = none).
    pub fn new(
        conn: ConnIo,
        framing: &BodyFraming,
        expect_continue: bool,
        limit: u64,
    ) -> Result<Self, (ConnIo, BodyError)> {
        let framing = match framing {
            BodyFraming::Empty => Framing::Length(0),
            BodyFraming::Length(n) if limit > 0 && *n > limit => {
                return Err((conn, BodyError::TooLarge(limit)));
            }
            BodyFraming::Length(n) => Framing::Length(*n),
            BodyFraming::Chunked => Framing::Chunked {
                decoder: ChunkedDecoder::default(),
                decoded: Vec::new(),
                pos: 0,
            },
        };
        let continue_pending = expect_continue && !matches!(framing, Framing::Length(0));
        Ok(BodyReader {
            conn,
            framing,
            continue_pending,
            limit,
            received: 0,
            failed: false,
        })
    }

    pub fn is_done(&self) -> bool {
        match &self.framing {
            Framing::Length(left) => *left == 0,
            Framing::Chunked {
                decoder,
                decoded,
                pos,
            } => decoder.is_done() && *pos == decoded.len(),
        }
    }

    /// True while the client waits for `100 Continue` that we have not sent (the app never read).
    pub fn continue_pending(&self) -> bool {
        self.continue_pending
    }

    /// The connection's writing half, for the response.
    pub fn sender(&self) -> Sender {
        self.conn.sender()
    }

    pub(super) fn conn(&self) -> &ConnIo {
        &self.conn
    }

    pub(super) fn conn_mut(&mut self) -> &mut ConnIo {
        &mut self.conn
    }

    /// For the reactor, before the request runs: decodes the chunked bytes already buffered into
    /// the reader's own buffer, where the app's reads find them; returns the bytes consumed as
    /// sent. Nothing to do for a Content-Length body, which stays in the connection buffer.
    pub(super) fn decode_ahead(&mut self) -> Result<usize, BodyError> {
        let Framing::Chunked {
            decoder, decoded, ..
        } = &mut self.framing
        else {
            return Ok(0);
        };
        let used =
            (decoder.decode(self.conn.unread(), decoded, usize::MAX)).map_err(BodyError::Parse)?;
        self.conn.consume(used);
        if self.limit > 0 && decoded.len() as u64 > self.limit {
            return Err(BodyError::TooLarge(self.limit));
        }
        Ok(used)
    }

    /// Whether the whole body is buffered (for the reactor), or too long to be: a Content-Length
    /// over `max` is left to stream.
    pub(super) fn buffered_whole(&self, max: u64) -> bool {
        match &self.framing {
            Framing::Length(left) => *left > max || self.conn.unread().len() as u64 >= *left,
            Framing::Chunked { decoder, .. } => decoder.is_done(),
        }
    }

    /// Appends up to `max` body bytes to `out`; returns how many, 0 only at the end of the body.
    pub fn read(&mut self, max: usize, out: &mut Vec<u8>) -> Result<usize, BodyError> {
        self.read_guarded(max, out, false)
    }

    /// Appends bytes up to and including the next `\n`, at most `max`; returns how many.
    pub fn read_line(&mut self, max: usize, out: &mut Vec<u8>) -> Result<usize, BodyError> {
        let start = out.len();
        while out.len() - start < max {
            let before = out.len();
            if self.read_guarded(max - (before - start), out, true)? == 0
                || out.last() == Some(&b'\n')
            {
                break;
            }
        }
        Ok(out.len() - start)
    }

    /// A failed body stays failed: the stream position is unknown after an error.
    fn read_guarded(
        &mut self,
        max: usize,
        out: &mut Vec<u8>,
        line: bool,
    ) -> Result<usize, BodyError> {
        if self.failed {
            return Err(BodyError::Truncated);
        }
        let result = self.read_inner(max, out, line);
        self.failed = result.is_err();
        result
    }

    fn read_inner(
        &mut self,
        max: usize,
        out: &mut Vec<u8>,
        line: bool,
    ) -> Result<usize, BodyError> {
        if max == 0 || self.is_done() {
            return Ok(0);
        }
        loop {
            let got = self.take_buffered(max, out, line)?;
            if got > 0 {
                self.count(got)?;
                return Ok(got);
            }
            if self.is_done() {
                return Ok(0);
            }
            self.fill()?;
        }
    }

    /// Moves buffered body bytes to `out`: at most `max`, and with `line` no further than the
    /// first `\n`, so nothing is ever read past what the caller takes.
    fn take_buffered(
        &mut self,
        max: usize,
        out: &mut Vec<u8>,
        line: bool,
    ) -> Result<usize, BodyError> {
        let window = |available: &[u8]| {
            let window = &available[..available.len().min(max)];
            match window.iter().position(|&b| b == b'\n') {
                Some(nl) if line => nl + 1,
                _ => window.len(),
            }
        };
        match &mut self.framing {
            Framing::Length(left) => {
                let limit = usize::try_from(*left).unwrap_or(usize::MAX);
                let unread = self.conn.unread();
                let n = window(&unread[..unread.len().min(limit)]);
                out.extend_from_slice(&unread[..n]);
                self.conn.consume(n);
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked {
                decoder,
                decoded,
                pos,
            } => {
                if *pos == decoded.len() {
                    decoded.clear();
                    *pos = 0;
                    let used = decoder
                        .decode(self.conn.unread(), decoded, 64 * 1024)
                        .map_err(BodyError::Parse)?;
                    self.conn.consume(used);
                }
                let n = window(&decoded[*pos..]);
                out.extend_from_slice(&decoded[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
        }
    }

    fn count(&mut self, got: usize) -> Result<(), BodyError> {
        self.received += got as u64;
        if self.limit > 0 && self.received > self.limit {
            return Err(BodyError::TooLarge(self.limit));
        }
        Ok(())
    }

    /// Blocking: gets more bytes from the client, first sending `100 Continue` if it is waiting.
    fn fill(&mut self) -> Result<(), BodyError> {
        if self.continue_pending {
            self.continue_pending = false;
            let line = b"HTTP/1.1 100 Continue\r\n\r\n";
            self.conn.sender().write_all(&mut [IoSlice::new(line)])?;
        }
        match self.conn.fill()? {
            0 => Err(BodyError::Truncated),
            _ => Ok(()),
        }
    }

    /// Reads and discards what is left of the body, up to `max` bytes, so the connection can serve
    /// the next request; returns the connection, whether it is positioned at the next request, and
    /// the body bytes read in all.
    pub fn finish(mut self, max: u64) -> (ConnIo, bool, u64) {
        let reusable = !self.continue_pending && !self.failed && self.discard_rest(max);
        self.conn.compact();
        (self.conn, reusable, self.received)
    }

    fn discard_rest(&mut self, max: u64) -> bool {
        let mut sink = Vec::new();
        let mut drained = 0u64;
        while !self.is_done() {
            sink.clear();
            match self.read(64 * 1024, &mut sink) {
                Ok(0) => break,
                Ok(n) => drained += n as u64,
                Err(_) => return false,
            }
            if drained > max {
                return false;
            }
        }
        self.is_done()
    }
}
