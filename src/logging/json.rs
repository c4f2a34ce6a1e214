//! JSON log lines for Loki: the access log's one object per request and the error log's one
//! object per event, written as bytes. Pure text: every value is valid JSON whatever bytes came
//! off the wire (invalid UTF-8 becomes U+FFFD); never writes anywhere. The access line runs for
//! every request, so it avoids the formatting machinery.
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use super::access::AccessRecord;
use super::clock::unix_secs;
use crate::clock::civil_from_unix;

/// Appends `bytes` as a JSON string: valid UTF-8 as is (escaped where JSON requires), each
/// invalid sequence as U+FFFD, as Go's encoder does, so that strict parsers (I-JSON) accept it.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => push_str(out, text),
        Err(_) => push_str(out, &String::from_utf8_lossy(bytes)),
    }
}

/// Appends `text` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape(out, text.as_bytes());
    out.push(b'"');
}

/// Whether none of the 8 bytes of `word` needs escaping: no control byte, DEL, '"' or '\\'
/// (tested on the whole word at once: most of a line needs no escape).
fn clean(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let specials = has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')))
        | has_zero(word ^ (ONES * 0x7f));
    below_space | specials == 0
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

thread_local! {
    /// The last second's `"YYYY-MM-DDTHH:MM:SS` and which second it is: most lines share it.
    static SECOND: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
}

/// RFC 3339 in UTC with milliseconds: `"2026-11-26T12:00:00.123Z"`.
pub fn push_timestamp(out: &mut Vec<u8>, t: SystemTime) {
    let secs = unix_secs(t);
    let cached = SECOND.try_with(|second| match second.try_borrow_mut() {
        Ok(mut second) => {
            if second.0 != secs {
                second.1 = format_second(secs);
                second.0 = secs;
            }
            out.extend_from_slice(second.1.as_bytes());
            true
        }
        Err(_) => false,
    });
    if !matches!(cached, Ok(true)) {
        out.extend_from_slice(format_second(secs).as_bytes());
    }
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    out.push(b'.');
    push_padded(out, u64::from(millis), 3);
    out.extend_from_slice(b"Z\"");
}

fn format_second(secs: i64) -> String {
    let c = civil_from_unix(secs);
    let mut text = String::with_capacity(20);
    let _ = write!(
        text,
        "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    text
}

/// "00" to "99": two digits a step.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                             2021222324252627282930313233343536373839\
                             4041424344454647484950515253545556575859\
                             6061626364656667686970717273747576777879\
                             8081828384858687888990919293949596979899";

/// Appends `n` in decimal, without the formatting machinery (this runs for every request).
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        at -= 2;
        let pair = rest as usize * 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` with at least `width` digits, zero-padded.
fn push_padded(out: &mut Vec<u8>, n: u64, width: u32) {
    let mut bound = 10u64.pow(width.saturating_sub(1));
    while bound > 1 && n < bound {
        out.push(b'0');
        bound /= 10;
    }
    push_u64(out, n);
}

/// Milliseconds with microsecond precision (`12.345`), as a JSON number or a statsd value.
pub fn push_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    push_u64(out, micros / 1000);
    out.push(b'.');
    push_padded(out, micros % 1000, 3);
}

fn or_null(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => push_bytes(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// The referer, user agent and request id of a request, found in one pass over its headers.
fn wanted_headers(headers: &[(String, Vec<u8>)]) -> [Option<&[u8]>; 3] {
    const NAMES: [&str; 3] = ["REFERER", "USER-AGENT", "X-REQUEST-ID"];
    let mut found = [None; 3];
    for (name, value) in headers {
        for (slot, wanted) in found.iter_mut().zip(NAMES) {
            if name.len() == wanted.len() && name.eq_ignore_ascii_case(wanted) {
                *slot = Some(value.as_slice());
            }
        }
    }
    found
}

/// A string field: `"<key>":"` is given whole, then the escaped value and its closing quote.
fn field(out: &mut Vec<u8>, key_and_quote: &[u8], value: &str) {
    out.extend_from_slice(key_and_quote);
    escape(out, value.as_bytes());
    out.push(b'"');
}

/// One access-log object (without newline); `now` is when the response ended.
pub fn render_access(out: &mut Vec<u8>, r: &AccessRecord<'_>, now: SystemTime) {
    out.extend_from_slice(b"{\"ts\":");
    push_timestamp(out, now);
    match r.remote_addr {
        "" => out.extend_from_slice(b",\"remote_ip\":null"),
        remote => field(out, b",\"remote_ip\":\"", remote),
    }
    field(out, b",\"method\":\"", r.method);
    field(out, b",\"path\":\"", r.path);
    field(out, b",\"query\":\"", r.query);
    field(out, b",\"protocol\":\"", r.version);
    out.extend_from_slice(b",\"status\":");
    push_u64(out, u64::from(r.status));
    out.extend_from_slice(b",\"size\":");
    match r.response_length {
        Some(size) => push_u64(out, size),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"duration_ms\":");
    push_millis(out, r.duration);
    let [referer, agent, request_id] = wanted_headers(r.request_headers);
    out.extend_from_slice(b",\"referer\":");
    or_null(out, referer);
    out.extend_from_slice(b",\"user_agent\":");
    or_null(out, agent);
    out.extend_from_slice(b",\"request_id\":");
    or_null(out, request_id);
    out.extend_from_slice(b",\"pid\":");
    push_u64(out, u64::from(r.pid));
    out.extend_from_slice(b",\"worker\":");
    match r.worker {
        Some(worker) => push_u64(out, u64::from(worker)),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
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
    out.extend_from_slice(b"{\"ts\":");
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
mod tests {
    use super::*;

    fn bytes(value: &[u8]) -> String {
        let mut out = Vec::new();
        push_bytes(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn hostile_bytes_stay_valid_json() {
        assert_eq!(bytes(b"plain"), r#""plain""#);
        assert_eq!(bytes(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            bytes(b"\n\r\t\x00\x1b\x7f"),
            r#""\n\r\t\u0000\u001b\u007f""#
        );
        assert_eq!(bytes(b"\xff<\xc3\xa9>\xe2\x82"), "\"\u{fffd}<é>\u{fffd}\"");
        assert_eq!(bytes("ünï".as_bytes()), "\"ünï\"");
        for hostile in [&b"\xc0\x80\"\\\x01"[..], b"\xed\xa0\x80", b""] {
            let text = bytes(hostile);
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_694_400_007);
        let mut out = Vec::new();
        push_timestamp(&mut out, t);
        push_timestamp(&mut out, t + Duration::from_millis(1_990));
        push_timestamp(&mut out, UNIX_EPOCH);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-11-26T12:00:00.007Z\"\"2026-11-26T12:00:01.997Z\"\"1970-01-01T00:00:00.000Z\""
        );
    }

    #[test]
    fn whole_words_are_checked_like_single_bytes() {
        for byte in 0..=255u8 {
            let mut word = *b"abcdefgh";
            word[3] = byte;
            let needs = byte < 0x20 || byte == 0x7f || byte == b'"' || byte == b'\\';
            assert_eq!(!clean(u64::from_le_bytes(word)), needs, "{byte:#x}");
        }
        let mut out = Vec::new();
        push_str(&mut out, "0123456789abcdef\"0123456\\x\u{1}é");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#""0123456789abcdef\"0123456\\x\u0001é""#);
    }

    #[test]
    fn numbers_without_the_formatting_machinery() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 99, 100, 1_234_567, u64::MAX] {
            push_u64(&mut out, n);
            out.push(b' ');
        }
        push_millis(&mut out, Duration::from_micros(12_045));
        out.push(b' ');
        push_millis(&mut out, Duration::from_micros(7));
        assert_eq!(
            out,
            b"0 7 10 99 100 1234567 18446744073709551615 12.045 0.007"
        );
    }

    #[test]
    fn an_access_object_has_every_field() {
        let headers = [
            ("USER-AGENT".to_owned(), b"curl/8 \"x\"".to_vec()),
            ("X-REQUEST-ID".to_owned(), b"abc-1".to_vec()),
        ];
        let record = AccessRecord {
            remote_addr: "192.0.2.1",
            method: "GET",
            raw_uri: "/a?b=1",
            path: "/a",
            query: "b=1",
            version: "HTTP/1.1",
            status: 200,
            response_length: Some(11),
            request_headers: &headers,
            response_headers: &[],
            started: UNIX_EPOCH,
            duration: Duration::from_micros(1_234),
            pid: 42,
            worker: Some(3),
        };
        let mut out = Vec::new();
        render_access(&mut out, &record, UNIX_EPOCH + Duration::from_secs(1));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["ts"], "1970-01-01T00:00:01.000Z");
        assert_eq!(value["duration_ms"], 1.234);
        assert_eq!(value["user_agent"], "curl/8 \"x\"");
        assert_eq!(value["request_id"], "abc-1");
        assert_eq!(value["referer"], serde_json::Value::Null);
        assert_eq!(
            (value["status"].as_u64(), value["size"].as_u64()),
            (Some(200), Some(11))
        );
        assert_eq!(
            (value["pid"].as_u64(), value["worker"].as_u64()),
            (Some(42), Some(3))
        );
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 14, "{keys:?}");
    }
}
