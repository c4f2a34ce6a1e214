//! JSON log lines for Loki: the text primitives (strings escaped as JSON requires, numbers and
//! RFC 3339 timestamps without the formatting machinery) and the error log's one object per
//! event; the access log's object is json_access.rs. Pure text: every value is valid JSON
//! whatever bytes came off the wire (invalid UTF-8 becomes U+FFFD); never writes anywhere.
use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use super::clock::unix_secs;
use crate::clock::civil_from_unix;
use crate::digits::{push_u64, three, two};

/// Appends `bytes` as a JSON string: valid UTF-8 as is (escaped where JSON requires), each
/// invalid sequence as U+FFFD, as Go's encoder does, so that strict parsers (I-JSON) accept it.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_plain(bytes, HIGH) {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => push_str(out, text),
        Err(_) => push_str(out, &String::from_utf8_lossy(bytes)),
    }
}

/// Appends `text` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_inner(out, text);
    out.push(b'"');
}

/// Appends the inside of `text` as a JSON string (without its quotes).
pub fn push_inner(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if bytes.len() < 8 {
        // Short values (a method, a path "/", an empty query) a byte at a time: a call to copy
        // them would cost more.
        let start = out.len();
        for &byte in bytes {
            if !plain_byte(byte) {
                out.truncate(start);
                return escape(out, bytes);
            }
            out.push(byte);
        }
    } else if is_plain(bytes, 0) {
        out.extend_from_slice(bytes);
    } else {
        escape(out, bytes);
    }
}

fn plain_byte(byte: u8) -> bool {
    byte >= 0x20 && byte != b'"' && byte != b'\\' && byte != 0x7f
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether none of the 8 bytes of `word` needs escaping: no control byte, DEL, '"' or '\\'
/// (tested on the whole word at once: most of a line needs no escape).
fn clean(word: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let specials = has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')))
        | has_zero(word ^ (ONES * 0x7f));
    below_space | specials == 0
}

/// Whether `bytes` go into a JSON string as they are; with `high` = HIGH, also that they are
/// ASCII (so valid UTF-8 without looking further).
fn is_plain(bytes: &[u8], high: u64) -> bool {
    if bytes.len() < 8 {
        let high = high as u8;
        return bytes.iter().all(|&b| plain_byte(b) && b & high == 0);
    }
    let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
    let whole = |w: u64| clean(w) && w & high == 0;
    // The last word overlaps the chunks before it when the length is not a multiple of 8.
    bytes.chunks_exact(8).all(|chunk| whole(word(chunk))) && whole(word(&bytes[bytes.len() - 8..]))
}

/// Escapes valid UTF-8: only ASCII bytes are ever escaped, so it works a byte at a time.
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    let clean_prefix = text
        .chunks_exact(8)
        .take_while(|chunk| clean(u64::from_le_bytes((*chunk).try_into().unwrap_or([0; 8]))))
        .count()
        * 8;
    out.extend_from_slice(&text[..clean_prefix]);
    let rest = &text[clean_prefix..];
    let mut start = 0;
    for (at, &byte) in rest.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&rest[start..at]);
        if escaped.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        } else {
            out.extend_from_slice(escaped);
        }
        start = at + 1;
    }
    out.extend_from_slice(&rest[start..]);
}

const HEX: [u8; 16] = *b"0123456789abcdef";

/// `{"ts":"` and a second's `YYYY-MM-DDTHH:MM:SS.`, kept while the lines are of that second.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    second: i64,
    text: [u8; 27],
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp::new()
    }
}

impl Stamp {
    pub const fn new() -> Stamp {
        Stamp {
            second: i64::MIN,
            text: [0; 27],
        }
    }

    /// Appends `{"ts":"2026-11-26T12:00:00.123Z"`: RFC 3339 in UTC with milliseconds.
    pub fn push(&mut self, out: &mut Vec<u8>, t: SystemTime) {
        let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
            Ok(since) => (since.as_secs() as i64, since.subsec_millis()),
            Err(_) => (unix_secs(t), 0),
        };
        if secs != self.second {
            match second_text(secs) {
                Some(text) => (self.second, self.text) = (secs, text),
                None => {
                    out.extend_from_slice(b"{\"ts\":");
                    let _ = write!(ByteWriter(out), "\"{}.", format_second(secs));
                    return push_millis_end(out, millis);
                }
            }
        }
        out.extend_from_slice(&self.text);
        push_millis_end(out, millis);
    }
}

fn push_millis_end(out: &mut Vec<u8>, millis: u32) {
    let [a, b, c] = three(u64::from(millis % 1000));
    out.extend_from_slice(&[a, b, c, b'Z', b'"']);
}

/// The cached text of a second of the years 0 to 9999 (RFC 3339's); None for any other.
fn second_text(secs: i64) -> Option<[u8; 27]> {
    let c = civil_from_unix(secs);
    let year = u64::try_from(c.year).ok().filter(|year| *year <= 9999)?;
    let mut text = *b"{\"ts\":\"0000-00-00T00:00:00.";
    let [y0, y1] = two(year / 100);
    let [y2, y3] = two(year % 100);
    text[7..11].copy_from_slice(&[y0, y1, y2, y3]);
    for (at, part) in [
        (12, c.month),
        (15, c.day),
        (18, c.hour),
        (21, c.minute),
        (24, c.second),
    ] {
        text[at..at + 2].copy_from_slice(&two(u64::from(part)));
    }
    Some(text)
}

/// `YYYY-MM-DDTHH:MM:SS` through the formatting machinery, for years RFC 3339 cannot show.
fn format_second(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

thread_local! {
    /// The error log's stamp: most events of a thread share their second.
    static STAMP: RefCell<Stamp> = const { RefCell::new(Stamp::new()) };
}

/// `{"ts":"2026-11-26T12:00:00.123Z"`, with this thread's cached second.
pub fn push_timestamp(out: &mut Vec<u8>, t: SystemTime) {
    let cached = STAMP.try_with(|stamp| match stamp.try_borrow_mut() {
        Ok(mut stamp) => {
            stamp.push(out, t);
            true
        }
        Err(_) => false,
    });
    if !matches!(cached, Ok(true)) {
        Stamp::new().push(out, t);
    }
}

/// Milliseconds with microsecond precision (`12.345`), as a JSON number or a statsd value.
pub fn push_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    push_u64(out, micros / 1000);
    let [a, b, c] = three(micros % 1000);
    out.extend_from_slice(&[b'.', a, b, c]);
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// One error-log object (without newline): `ts`, `level`, `msg`, `pid`, then the event's fields.
pub fn render_event(
    out: &mut Vec<u8>,
    event: &tracing::Event<'_>,
    level: &str,
    now: SystemTime,
    pid: u32,
) {
    let mut message = String::new();
    let mut fields = Vec::new();
    event.record(&mut JsonFields {
        message: &mut message,
        rest: &mut fields,
    });
    push_timestamp(out, now);
    key(out, "level");
    push_str(out, level);
    key(out, "msg");
    push_str(out, &message);
    key(out, "pid");
    push_u64(out, u64::from(pid));
    out.extend_from_slice(&fields);
    out.push(b'}');
}

/// Collects the message apart and every other field as `,"name":value` with its JSON type.
struct JsonFields<'a> {
    message: &'a mut String,
    rest: &'a mut Vec<u8>,
}

impl JsonFields<'_> {
    fn number(&mut self, field: &Field, value: impl std::fmt::Display) {
        key(self.rest, field.name());
        self.rest.extend_from_slice(value.to_string().as_bytes());
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            key(self.rest, field.name());
            push_str(self.rest, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            self.record_str(field, &value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
