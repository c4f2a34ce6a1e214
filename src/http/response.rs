//! Response framing: validates the status and headers an app gives, decides Content-Length,
//! chunked or close-delimited framing, and writes head and body with as few syscalls as possible
//! (head and first body bytes in one writev). Never decides what the body is.
use std::io::{self, IoSlice};
use std::os::fd::AsFd;

use super::conn::Sender;
use super::date;
use super::request::Version;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("invalid status line {0:?}")]
    InvalidStatus(String),
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    #[error("invalid value for header {0:?}")]
    InvalidHeaderValue(String),
}

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
    NoBody,
}

/// What kind of header an app header is, for framing purposes (gunicorn's rules).
#[derive(Debug, PartialEq, Eq)]
enum HeaderKind {
    ContentLength,
    Connection,
    HopByHop,
    Normal,
}

fn classify(name: &str) -> HeaderKind {
    const HOP_BY_HOP: [&str; 7] = [
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    ];
    if name.eq_ignore_ascii_case("content-length") {
        HeaderKind::ContentLength
    } else if name.eq_ignore_ascii_case("connection") {
        HeaderKind::Connection
    } else if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        HeaderKind::HopByHop
    } else {
        HeaderKind::Normal
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A status like `200 OK`: three digits, then a reason of visible latin-1 text.
pub fn validate_status(status: &str) -> Result<u16, ResponseError> {
    let bad = || ResponseError::InvalidStatus(status.to_string());
    let code = status
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(bad)?;
    let rest = &status[3..];
    if !(rest.is_empty() || rest.starts_with(' ')) || !is_field_text(rest) {
        return Err(bad());
    }
    let code: u16 = code.parse().map_err(|_| bad())?;
    if code < 100 {
        return Err(bad());
    }
    Ok(code)
}

/// Field text may hold HTAB, visible ASCII and latin-1, never CR, LF, NUL or other controls.
fn is_field_text(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

pub fn validate_header(name: &str, value: &str) -> Result<(), ResponseError> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ResponseError::InvalidHeaderName(name.to_string()));
    }
    if !is_field_text(value) {
        return Err(ResponseError::InvalidHeaderValue(name.to_string()));
    }
    Ok(())
}

/// Appends `n` in decimal without going through `fmt` (this runs for every response).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_latin1(out: &mut Vec<u8>, text: &str) {
    if text.is_ascii() {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend(text.chars().map(|c| c as u32 as u8));
    }
}

/// Writes one response; created per request by whoever runs the app.
pub struct ResponseWriter {
    sender: Sender,
    version: Version,
    is_head: bool,
    keep_alive: bool,
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    app_length: Option<u64>,
    framing: Option<Framing>,
    remaining: u64,
    body_bytes: u64,
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
            status_line: String::new(),
            headers: Vec::new(),
            app_length: None,
            framing: None,
            remaining: 0,
            body_bytes: 0,
        }
    }

    pub fn headers_sent(&self) -> bool {
        self.framing.is_some()
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The app's headers, handed over once the response is complete (for the access log).
    pub fn take_headers(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.headers)
    }

    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whether the connection may carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.framing != Some(Framing::Close) && self.remaining == 0
    }

    /// Sets (or, before anything was sent, replaces) the status and headers.
    pub fn start(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
    ) -> Result<(), ResponseError> {
        let code = validate_status(status)?;
        let mut app_length = None;
        for (name, value) in &headers {
            validate_header(name, value)?;
            if classify(name) == HeaderKind::ContentLength {
                let parsed = value
                    .trim()
                    .parse()
                    .map_err(|_| ResponseError::InvalidHeaderValue(name.clone()))?;
                app_length = Some(parsed);
            }
        }
        self.status = code;
        self.status_line = status.to_string();
        self.headers = headers;
        self.app_length = app_length;
        Ok(())
    }

    fn body_allowed(&self) -> bool {
        !(self.is_head || self.status < 200 || self.status == 204 || self.status == 304)
    }

    fn choose_framing(&self, known_total: Option<u64>) -> Framing {
        if !self.body_allowed() {
            return Framing::NoBody;
        }
        match (self.app_length, known_total) {
            (Some(n), _) | (None, Some(n)) => Framing::Length(n),
            (None, None) if self.version == Version::Http11 => Framing::Chunked,
            (None, None) => Framing::Close,
        }
    }

    fn build_head(&mut self, framing: Framing) -> Vec<u8> {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(self.version.as_str().as_bytes());
        head.push(b' ');
        push_latin1(&mut head, &self.status_line);
        head.extend_from_slice(b"\r\nServer: rgunicorn\r\nDate: ");
        date::push_now(&mut head);
        let mut wrote_length = false;
        for (name, value) in &self.headers {
            match classify(name) {
                HeaderKind::Connection => {
                    if value
                        .split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("close"))
                    {
                        self.keep_alive = false;
                    }
                    continue;
                }
                HeaderKind::HopByHop => continue,
                HeaderKind::ContentLength => wrote_length = true,
                HeaderKind::Normal => {}
            }
            head.extend_from_slice(b"\r\n");
            push_latin1(&mut head, name);
            head.extend_from_slice(b": ");
            push_latin1(&mut head, value);
        }
        if framing == Framing::Close {
            self.keep_alive = false;
        }
        match framing {
            Framing::Length(n) if !wrote_length => {
                head.extend_from_slice(b"\r\nContent-Length: ");
                push_decimal(&mut head, n);
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

    /// Like `write` for several pieces, sent with one writev where the kernel allows.
    pub fn write_parts(&mut self, parts: &[&[u8]], known_total: Option<u64>) -> io::Result<()> {
        let head = self.take_head(known_total);
        let parts = self.fit_to_framing(parts);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.body_bytes += len as u64;
        let chunked = self.framing == Some(Framing::Chunked) && len > 0;
        let size_line = if chunked {
            format!("{len:x}\r\n")
        } else {
            String::new()
        };
        let mut slices = Vec::with_capacity(parts.len() + 3);
        slices.extend(head.as_deref().map(IoSlice::new));
        if chunked {
            slices.push(IoSlice::new(size_line.as_bytes()));
        }
        slices.extend(
            parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| IoSlice::new(p)),
        );
        if chunked {
            slices.push(IoSlice::new(b"\r\n"));
        }
        if slices.is_empty() {
            return Ok(());
        }
        self.sender.write_all(&mut slices)
    }

    /// Drops what the framing forbids: everything for bodiless responses, and whatever goes past
    /// the declared Content-Length.
    fn fit_to_framing<'a>(&mut self, parts: &[&'a [u8]]) -> Vec<&'a [u8]> {
        match self.framing {
            Some(Framing::NoBody) | None => Vec::new(),
            Some(Framing::Length(_)) => parts
                .iter()
                .map(|part| {
                    let cut = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(part.len());
                    self.remaining -= cut as u64;
                    &part[..cut]
                })
                .collect(),
            Some(Framing::Chunked | Framing::Close) => parts.to_vec(),
        }
    }

    /// Sends `count` bytes of a regular file from `offset` with sendfile(2).
    pub fn send_file(&mut self, file: &impl AsFd, offset: u64, count: u64) -> io::Result<()> {
        let total = if self.app_length.is_none() {
            Some(count)
        } else {
            None
        };
        if let Some(head) = self.take_head(total) {
            self.sender.write_all(&mut [IoSlice::new(&head)])?;
        }
        if self.framing == Some(Framing::Chunked) {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let count = match self.framing {
            Some(Framing::Length(_)) => count.min(self.remaining),
            Some(Framing::NoBody) => 0,
            _ => count,
        };
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
                self.app_length.is_some() || self.version == Version::Http11 || !self.body_allowed()
            }
            Some(f) => f != Framing::Chunked,
        }
    }

    /// Ends the response: sends the head if nothing was sent, and the last chunk when chunked.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(head) = self.take_head(Some(0)) {
            return self.sender.write_all(&mut [IoSlice::new(&head)]);
        }
        if self.framing == Some(Framing::Chunked) {
            return self.sender.write_all(&mut [IoSlice::new(b"0\r\n\r\n")]);
        }
        Ok(())
    }

    /// Marks the connection for closing (an error after the head went out).
    pub fn abort(&mut self) {
        self.keep_alive = false;
    }
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

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
