//! Response framing: decides Content-Length, chunked or close-delimited framing from the app's
//! validated headers (`app_headers`), and writes head and body with as few syscalls as possible
//! (head and body in one write, or held back for a burst). Never decides what the body is.
use std::io::{self, IoSlice};
use std::os::fd::AsFd;

pub use super::app_headers::{validate_header, validate_status, HeaderBlock, ResponseError};
use super::conn::Sender;
use super::request::Version;
use super::{buffers, date};
use crate::digits::push_u64;

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
    NoBody,
}

/// Largest complete response (app headers and body) that `hold_complete_responses` holds back.
const HOLD_LIMIT: usize = 16 * 1024;

/// Writes one response; created per request by whoever runs the app.
pub struct ResponseWriter {
    sender: Sender,
    version: Version,
    is_head: bool,
    keep_alive: bool,
    status: u16,
    headers: Option<HeaderBlock>,
    framing: Option<Framing>,
    remaining: u64,
    body_bytes: u64,
    hold: bool,
    held: Vec<u8>,
}

impl ResponseWriter {
    /// `keep_alive`: the request allows reuse and the worker keeps connections open.
    pub fn new(sender: Sender, version: Version, is_head: bool, keep_alive: bool) -> Self {
        ResponseWriter {
            sender,
            version,
            is_head,
            keep_alive,
            status: 0,
            headers: None,
            framing: None,
            remaining: 0,
            body_bytes: 0,
            hold: false,
            held: Vec::new(),
        }
    }

    /// A small response that is complete in one write is kept in memory instead of sent, for the
    /// caller to send with `take_held` once other connections' requests have run: responses
    /// then leave in bursts and the clients wake once per burst, not once per response.
    pub fn hold_complete_responses(&mut self) {
        self.hold = true;
    }

    /// The held-back bytes of a complete response (empty when it was sent directly).
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Writes `slices` after anything held back.
    fn send(&mut self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.flush_held()?;
        self.sender.write_all(slices)
    }

    fn flush_held(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.sender.write_all(&mut [IoSlice::new(&held)])
    }

    pub fn headers_sent(&self) -> bool {
        self.framing.is_some()
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The app's status and headers so far (for post_request).
    pub fn headers(&self) -> Option<&HeaderBlock> {
        self.headers.as_ref()
    }

    /// The app's headers, handed over once the response is complete (for the access log).
    pub fn take_headers(&mut self) -> Option<HeaderBlock> {
        self.headers.take()
    }

    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whether the connection may carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.framing != Some(Framing::Close) && self.remaining == 0
    }

    /// Sets (or, before anything was sent, replaces) the status and headers.
    pub fn start(&mut self, headers: HeaderBlock) {
        self.status = headers.status;
        self.headers = Some(headers);
    }

    /// The app's own Content-Length.
    fn app_length(&self) -> Option<u64> {
        self.headers.as_ref().and_then(|block| block.app_length)
    }

    fn body_allowed(&self) -> bool {
        !(self.is_head || self.status < 200 || self.status == 204 || self.status == 304)
    }

    fn choose_framing(&self, known_total: Option<u64>) -> Framing {
        if !self.body_allowed() {
            return Framing::NoBody;
        }
        match (self.app_length(), known_total) {
            (Some(n), _) | (None, Some(n)) => Framing::Length(n),
            (None, None) if self.version == Version::Http11 => Framing::Chunked,
            (None, None) => Framing::Close,
        }
    }

    fn build_head(&mut self, framing: Framing) -> Vec<u8> {
        let block = self
            .headers
            .as_ref()
            .expect("the head is built after start");
        let mut head = buffers::take(160 + block.rendered.len());
        head.extend_from_slice(self.version.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(&block.rendered[..block.status_len]);
        head.extend_from_slice(b"\r\nServer: rgunicorn\r\nDate: ");
        date::push_now(&mut head);
        head.extend_from_slice(block.fields());
        let wrote_length = block.app_length.is_some();
        if block.close {
            self.keep_alive = false;
        }
        if framing == Framing::Close {
            self.keep_alive = false;
        }
        match framing {
            Framing::Length(n) if !wrote_length => {
                head.extend_from_slice(b"\r\nContent-Length: ");
                push_u64(&mut head, n);
            }
            Framing::Chunked => head.extend_from_slice(b"\r\nTransfer-Encoding: chunked"),
            _ => {}
        }
        let connection: &[u8] = if self.keep_alive {
            b"keep-alive"
        } else {
            b"close"
        };
        head.extend_from_slice(b"\r\nConnection: ");
        head.extend_from_slice(connection);
        head.extend_from_slice(b"\r\n\r\n");
        head
    }

    /// Fixes the framing and returns the head bytes, or None when the head already went out.
    fn take_head(&mut self, known_total: Option<u64>) -> Option<Vec<u8>> {
        if self.framing.is_some() {
            return None;
        }
        let framing = self.choose_framing(known_total);
        self.remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let head = self.build_head(framing);
        self.framing = Some(framing);
        Some(head)
    }

    /// Sends body bytes (the head first, in the same syscall, if it has not gone yet).
    /// `known_total` is the whole body length when the caller holds the whole body.
    pub fn write(&mut self, data: &[u8], known_total: Option<u64>) -> io::Result<()> {
        self.write_parts(&[data], known_total)
    }

    /// Whether `write_parts(parts, known_total)` would only hold the response back (see
    /// `hold_complete_responses`), never touching the socket, so it cannot block.
    pub fn would_hold(&self, parts: &[&[u8]], known_total: Option<u64>) -> bool {
        let Some(block) = &self.headers else {
            return false;
        };
        if !self.hold || self.framing.is_some() || !self.held.is_empty() {
            return false;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let complete = match self.choose_framing(known_total) {
            Framing::Length(n) => n <= len as u64,
            Framing::NoBody => true,
            Framing::Chunked | Framing::Close => false,
        };
        complete && block.rendered.len() + len <= HOLD_LIMIT
    }

    /// Like `write` for several pieces, sent with one writev where the kernel allows.
    pub fn write_parts(&mut self, parts: &[&[u8]], known_total: Option<u64>) -> io::Result<()> {
        let hold = self.would_hold(parts, known_total);
        let head = self.take_head(known_total);
        let len = parts
            .iter()
            .map(|p| p.len())
            .sum::<usize>()
            .min(self.body_allowance());
        if let Some(Framing::Length(_)) = self.framing {
            self.remaining -= len as u64;
        }
        self.body_bytes += len as u64;
        if let Some(mut head) = head {
            if hold {
                cut_to(parts, len).for_each(|part| head.extend_from_slice(part));
                self.held = head;
                return Ok(());
            }
            let sent = self.send_framed(Some(&head), parts, len);
            buffers::recycle(head);
            return sent;
        }
        self.send_framed(None, parts, len)
    }

    /// How many more body bytes the framing lets out: none for bodiless responses, no more than
    /// the declared Content-Length.
    fn body_allowance(&self) -> usize {
        match self.framing {
            Some(Framing::NoBody) | None => 0,
            Some(Framing::Length(_)) => usize::try_from(self.remaining).unwrap_or(usize::MAX),
            Some(Framing::Chunked | Framing::Close) => usize::MAX,
        }
    }

    /// Sends the head (if given) and the first `len` bytes of `parts`, as one chunk when chunked.
    fn send_framed(&mut self, head: Option<&[u8]>, parts: &[&[u8]], len: usize) -> io::Result<()> {
        let chunked = self.framing == Some(Framing::Chunked) && len > 0;
        let size_line = if chunked {
            format!("{len:x}\r\n")
        } else {
            String::new()
        };
        let mut slices = Vec::with_capacity(parts.len() + 3);
        slices.extend(head.map(IoSlice::new));
        if chunked {
            slices.push(IoSlice::new(size_line.as_bytes()));
        }
        slices.extend(cut_to(parts, len).map(IoSlice::new));
        if chunked {
            slices.push(IoSlice::new(b"\r\n"));
        }
        if slices.is_empty() {
            return Ok(());
        }
        self.send(&mut slices)
    }

    /// Sends `count` bytes of a regular file from `offset` with sendfile(2).
    pub fn send_file(&mut self, file: &impl AsFd, offset: u64, count: u64) -> io::Result<()> {
        let total = if self.app_length().is_none() {
            Some(count)
        } else {
            None
        };
        if let Some(head) = self.take_head(total) {
            self.send(&mut [IoSlice::new(&head)])?;
        }
        if self.framing == Some(Framing::Chunked) {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let count = match self.framing {
            Some(Framing::Length(_)) => count.min(self.remaining),
            Some(Framing::NoBody) => 0,
            _ => count,
        };
        self.flush_held()?;
        let sent = self.sender.send_file(file, offset, count)?;
        if let Some(Framing::Length(_)) = self.framing {
            self.remaining -= sent;
        }
        self.body_bytes += sent;
        Ok(())
    }

    /// Whether the body can go through `send_file` (not when it would need chunking).
    pub fn can_send_file(&self) -> bool {
        match self.framing {
            None => {
                self.app_length().is_some()
                    || self.version == Version::Http11
                    || !self.body_allowed()
            }
            Some(f) => f != Framing::Chunked,
        }
    }

    /// Whether `finish` would neither write nor wait (the body is framed and out, or the whole
    /// response is only held back).
    pub fn finish_is_quiet(&self) -> bool {
        match self.framing {
            Some(Framing::Chunked) => false,
            Some(_) => true,
            None => self.would_hold(&[], Some(0)),
        }
    }

    /// Ends the response: sends the head if nothing was sent, and the last chunk when chunked.
    pub fn finish(&mut self) -> io::Result<()> {
        let hold = self.would_hold(&[], Some(0));
        if let Some(head) = self.take_head(Some(0)) {
            if hold {
                self.held = head;
                return Ok(());
            }
            return self.send(&mut [IoSlice::new(&head)]);
        }
        if self.framing == Some(Framing::Chunked) {
            return self.send(&mut [IoSlice::new(b"0\r\n\r\n")]);
        }
        Ok(())
    }

    /// Marks the connection for closing (an error after the head went out).
    pub fn abort(&mut self) {
        self.keep_alive = false;
    }
}

/// The non-empty leading pieces of `parts` holding its first `len` bytes.
fn cut_to<'a>(parts: &'a [&'a [u8]], mut len: usize) -> impl Iterator<Item = &'a [u8]> {
    parts
        .iter()
        .map(move |part| {
            let n = part.len().min(len);
            len -= n;
            &part[..n]
        })
        .filter(|part| !part.is_empty())
}

/// Writes a complete plain-text error response and asks for the connection to close.
pub fn write_error(sender: &Sender, version: Version, status: u16, reason: &str) -> io::Result<()> {
    let body = format!("{reason}\n");
    let mut head = format!(
        "{} {status} {reason}\r\nServer: rgunicorn\r\nDate: ",
        version.as_str()
    )
    .into_bytes();
    date::push_now(&mut head);
    head.extend_from_slice(
        format!(
            "\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    sender.write_all(&mut [IoSlice::new(&head), IoSlice::new(body.as_bytes())])
}

/// The reason phrase for the statuses this server produces itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
