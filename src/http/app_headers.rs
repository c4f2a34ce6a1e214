//! The status and headers an app hands over: validated (gunicorn's rules, no CR/LF/NUL, latin-1
//! only) and rendered for the wire at once, with the facts framing needs (Content-Length, the
//! app's own `Connection: close`). Never writes to a socket and never decides the framing.
use super::fields::is_tchar;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("invalid status line {0:?}")]
    InvalidStatus(String),
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    #[error("invalid value for header {0:?}")]
    InvalidHeaderValue(String),
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
    let visible = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
    if value.bytes().all(visible) {
        return true;
    }
    value
        .chars()
        .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

pub fn validate_header(name: &str, value: &str) -> Result<(), ResponseError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ResponseError::InvalidHeaderName(name.to_string()));
    }
    if !is_field_text(value) {
        return Err(ResponseError::InvalidHeaderValue(name.to_string()));
    }
    Ok(())
}

/// Appends `n` in decimal without going through `fmt` (this runs for every response).
pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
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

/// An app's status and headers, validated and rendered for the wire as they are handed over, so
/// no header is copied into a string of its own.
#[derive(Debug)]
pub struct HeaderBlock {
    pub(super) status: u16,
    /// The status text (latin-1), then `\r\nName: value` for every header that goes out.
    pub(super) rendered: Vec<u8>,
    pub(super) status_len: usize,
    pub(super) app_length: Option<u64>,
    /// The app sent `Connection: close`.
    pub(super) close: bool,
}

impl HeaderBlock {
    pub fn new(status: &str) -> Result<Self, ResponseError> {
        let code = validate_status(status)?;
        let mut rendered = super::buffers::take(128);
        push_latin1(&mut rendered, status);
        Ok(HeaderBlock {
            status: code,
            status_len: rendered.len(),
            rendered,
            app_length: None,
            close: false,
        })
    }

    /// Adds one app header; hop-by-hop headers are dropped (the server frames the message), as
    /// gunicorn does.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), ResponseError> {
        validate_header(name, value)?;
        match classify(name) {
            HeaderKind::Connection => {
                self.close |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
                return Ok(());
            }
            HeaderKind::HopByHop => return Ok(()),
            HeaderKind::ContentLength => {
                let parsed = value
                    .trim()
                    .parse()
                    .map_err(|_| ResponseError::InvalidHeaderValue(name.to_string()))?;
                self.app_length = Some(parsed);
            }
            HeaderKind::Normal => {}
        }
        self.rendered.extend_from_slice(b"\r\n");
        self.rendered.extend_from_slice(name.as_bytes());
        self.rendered.extend_from_slice(b": ");
        push_latin1(&mut self.rendered, value);
        Ok(())
    }

    pub(super) fn fields(&self) -> &[u8] {
        &self.rendered[self.status_len..]
    }

    /// The headers as sent, for the access log.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let latin1 = |bytes: &[u8]| bytes.iter().map(|&b| b as char).collect::<String>();
        self.fields()
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|&b| b == b':')?;
                Some((latin1(&line[..colon]), latin1(&line[colon + 2..])))
            })
            .collect()
    }
}

impl Drop for HeaderBlock {
    fn drop(&mut self) {
        super::buffers::recycle(std::mem::take(&mut self.rendered));
    }
}

#[cfg(test)]
#[path = "app_headers_tests.rs"]
mod tests;
