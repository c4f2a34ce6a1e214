//! Line splitting and field-line syntax shared by the request head and chunked trailers
//! (RFC 9112 §2.2 and §5, RFC 9110 §5.5). Knows nothing of what a field means or of framing.
use super::request::{show, Limits, ParseError};

/// The next line of a buffer, as far as it has arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A CRLF-terminated line without its CRLF, and the bytes it used including the CRLF.
    Done(&'a [u8], usize),
    /// No LF yet: the bytes seen so far (never more than `max + 2` of them).
    Partial(&'a [u8]),
    /// A LF without a CR before it: the bytes before the LF.
    BareLf(&'a [u8]),
}

impl Line<'_> {
    /// Whether the content is longer than `max`, or must turn out so once the line is complete,
    /// so a limit is reported the same way however the bytes were split.
    pub(crate) fn too_long(&self, max: usize) -> bool {
        match self {
            Line::Done(content, _) | Line::BareLf(content) => content.len() > max,
            // A CR at the end may still turn out to be half of the CRLF.
            Line::Partial(seen) => seen.strip_suffix(b"\r").unwrap_or(seen).len() > max,
        }
    }

    fn first(&self) -> Option<u8> {
        match self {
            Line::Done(bytes, _) | Line::Partial(bytes) | Line::BareLf(bytes) => {
                bytes.first().copied()
            }
        }
    }

    /// Whether this can no longer become the empty line that ends a field section.
    fn is_nonempty(&self) -> bool {
        match self {
            Line::Done(content, _) => !content.is_empty(),
            Line::BareLf(_) => true,
            Line::Partial(seen) => seen.len() >= 2 || seen.first().is_some_and(|&b| b != b'\r'),
        }
    }
}

/// Splits off the next line; only the first `max + 2` bytes are searched, so a client cannot
/// make each call rescan an ever longer line.
pub(crate) fn next_line(buf: &[u8], max: usize) -> Line<'_> {
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    match memchr::memchr(b'\n', window) {
        None => Line::Partial(window),
        Some(lf) if lf > 0 && buf[lf - 1] == b'\r' => Line::Done(&buf[..lf - 1], lf + 1),
        Some(lf) => Line::BareLf(&buf[..lf]),
    }
}

/// tchar of RFC 9110 §5.6.2, as a table: every byte of every field name goes through it.
const TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// A table of the bytes that are ASCII letters or digits, or among `extra`, for the checks that
/// run on every byte of a request head.
pub(crate) const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Strips leading SP and HTAB (BWS, OWS).
pub(crate) fn skip_bws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().take_while(|&&b| b == b' ' || b == b'\t');
    &bytes[start.count()..]
}

/// The length of the token at the start of `bytes` (0 when there is none).
pub(crate) fn token_len(bytes: &[u8]) -> usize {
    let token = bytes.iter().take_while(|&&b| is_tchar(b));
    token.count()
}

/// The length of the quoted-string at the start of `bytes` (RFC 9110 §5.6.4), if it is one.
pub(crate) fn quoted_len(bytes: &[u8]) -> Option<usize> {
    let text_byte = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 1;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if text_byte(*bytes.get(i + 1)?) => i += 2,
            b if text_byte(b) && b != b'\\' => i += 1,
            _ => return None,
        }
    }
}

/// Strips leading and trailing SP and HTAB (OWS).
pub(crate) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// How many field lines a section may hold and how long each may be (CRLF excluded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldLimits {
    pub count: usize,
    pub line_max: usize,
}

impl From<&Limits> for FieldLimits {
    fn from(limits: &Limits) -> FieldLimits {
        // gunicorn counts the CRLF against limit_request_field_size.
        FieldLimits {
            count: limits.fields,
            line_max: limits.field_size.saturating_sub(2),
        }
    }
}

/// One complete line of a field section, with the bytes it used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FieldLine<'a> {
    End(usize),
    /// The name as sent (a token, so ASCII) and the value without its surrounding OWS.
    Field(&'a str, &'a [u8], usize),
}

/// Judges the next line of a field section after `seen` field lines. `Ok(None)`: incomplete and
/// not yet wrong. The checks run in the same order on partial and complete lines, so the
/// verdict does not depend on how the bytes were split.
pub(crate) fn classify<'a>(
    line: &Line<'a>,
    seen: usize,
    limits: &FieldLimits,
) -> Result<Option<FieldLine<'a>>, ParseError> {
    if let Line::Done([], used) = line {
        return Ok(Some(FieldLine::End(*used)));
    }
    if let Some(b' ' | b'\t') = line.first() {
        // RFC 9112 §5.2: obs-fold is never accepted here; before any field it is not even that.
        let detail = "line starts with whitespace".to_string();
        return Err(match seen {
            0 => ParseError::InvalidHeaderName(detail),
            _ => ParseError::ObsoleteFolding(detail),
        });
    }
    if line.is_nonempty() && seen >= limits.count {
        let detail = format!("more than {} fields", limits.count);
        return Err(ParseError::LimitRequestHeaders(detail));
    }
    if line.too_long(limits.line_max) {
        let detail = format!("field line longer than {} bytes", limits.line_max);
        return Err(ParseError::LimitRequestHeaders(detail));
    }
    match line {
        Line::Partial(_) => Ok(None),
        Line::BareLf(content) => Err(ParseError::InvalidHeader(format!(
            "bare LF after {}",
            show(content)
        ))),
        Line::Done(content, used) => {
            let (name, value) = parse_field(content)?;
            Ok(Some(FieldLine::Field(name, value, *used)))
        }
    }
}

/// Whether `value` holds a control byte other than HTAB. Every byte is looked at, without an
/// early exit, so the loop runs over whole vectors: a cookie or user agent is a long value.
fn has_control_byte(value: &[u8]) -> bool {
    value.iter().fold(false, |found, &b| {
        found | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    })
}

/// Parses `name ":" OWS value OWS` into the name and the value bytes.
fn parse_field(line: &[u8]) -> Result<(&str, &[u8]), ParseError> {
    let colon = memchr::memchr(b':', line)
        .filter(|&colon| colon > 0)
        .ok_or_else(|| ParseError::InvalidHeader(show(line)))?;
    let name = &line[..colon];
    let name = match std::str::from_utf8(name) {
        Ok(text) if is_token(name) => text,
        _ => return Err(ParseError::InvalidHeaderName(show(name))),
    };
    let value = trim_ows(&line[colon + 1..]);
    // RFC 9110 §5.5: only HTAB, SP, VCHAR and obs-text; CR, LF and NUL enable smuggling.
    if has_control_byte(value) {
        return Err(ParseError::InvalidHeader(show(line)));
    }
    Ok((name, value))
}
