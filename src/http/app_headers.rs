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

/// `name` is a validated token (`validate_header`).
fn classify(name: &str) -> HeaderKind {
    // The length picks the one name worth comparing: most headers are then told apart without
    // looking at their bytes.
    let (candidate, kind) = match name.len() {
        14 => ("content-length", HeaderKind::ContentLength),
        10 if name.as_bytes()[0].eq_ignore_ascii_case(&b'c') => {
            ("connection", HeaderKind::Connection)
        }
        10 => ("keep-alive", HeaderKind::HopByHop),
        18 => ("proxy-authenticate", HeaderKind::HopByHop),
        19 => ("proxy-authorization", HeaderKind::HopByHop),
        2 => ("te", HeaderKind::HopByHop),
        8 => ("trailers", HeaderKind::HopByHop),
        17 => ("transfer-encoding", HeaderKind::HopByHop),
        7 => ("upgrade", HeaderKind::HopByHop),
        _ => return HeaderKind::Normal,
    };
    match same_token(name.as_bytes(), candidate.as_bytes()) {
        true => kind,
        false => HeaderKind::Normal,
    }
}

/// Whether a valid token equals `lower` (lower-case letters and '-') in any case. Setting bit
/// 0x20 lower-cases a letter and leaves '-' alone; the only other byte it could turn into one of
/// those is CR, which is not in a token. No early exit, so the loop runs over whole vectors.
fn same_token(token: &[u8], lower: &[u8]) -> bool {
    token.len() == lower.len()
        && token
            .iter()
            .zip(lower)
            .fold(true, |same, (&a, &b)| same & (a | 0x20 == b))
}

/// A status like `200 OK`: three digits, then a reason of visible latin-1 text.
pub fn validate_status(status: &str) -> Result<u16, ResponseError> {
    let bad = || ResponseError::InvalidStatus(status.to_string());
    let (code, rest) = match status.as_bytes() {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            (digits_value(&[*a, *b, *c]), rest)
        }
        _ => return Err(bad()),
    };
    if !matches!(rest, [] | [b' ', ..]) || !is_field_text(&status[3..]) || code < 100 {
        return Err(bad());
    }
    Ok(code as u16)
}

/// The value of a run of ASCII digits short enough not to overflow.
fn digits_value(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))
}

/// Whether every byte is HTAB or visible ASCII. Every byte is looked at, without an early exit,
/// so the loop runs over whole vectors.
fn is_visible_ascii(bytes: &[u8]) -> bool {
    !bytes.iter().fold(false, |bad, &b| {
        bad | ((b < b' ') & (b != b'\t')) | (b > b'~')
    })
}

/// Field text may hold HTAB, visible ASCII and latin-1, never CR, LF, NUL or other controls.
fn is_field_text(value: &str) -> bool {
    is_visible_ascii(value.as_bytes())
        || value
            .chars()
            .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

pub fn validate_header(name: &str, value: &str) -> Result<(), ResponseError> {
    let all_tchar = name.bytes().fold(true, |ok, b| ok & is_tchar(b));
    if name.is_empty() || !all_tchar {
        return Err(ResponseError::InvalidHeaderName(name.to_string()));
    }
    if !is_field_text(value) {
        return Err(ResponseError::InvalidHeaderValue(name.to_string()));
    }
    Ok(())
}

/// A Content-Length value: digits, with optional whitespace around them (as Python's `int`).
fn content_length(value: &str) -> Option<u64> {
    let bytes = value.as_bytes();
    if (1..=19).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) {
        return Some(digits_value(bytes));
    }
    value.trim().parse().ok()
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
                let parsed = content_length(value)
                    .ok_or_else(|| ResponseError::InvalidHeaderValue(name.to_string()))?;
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

    /// The status line as the app gave it ("200 OK").
    pub fn status_line(&self) -> String {
        self.rendered[..self.status_len]
            .iter()
            .map(|&b| b as char)
            .collect()
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
