//! Tests of the JSON log lines (json.rs, json_access.rs): escaping, numbers, timestamps and the
//! access object; they never write a file.
use super::*;
use crate::logging::access::AccessRecord;
use crate::logging::json_access::{render_access, Template};

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
    assert_eq!(bytes(b"0123456789abcde\xff"), "\"0123456789abcde\u{fffd}\"");
    for hostile in [&b"\xc0\x80\"\\\x01"[..], b"\xed\xa0\x80", b""] {
        let text = bytes(hostile);
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "{text}"
        );
    }
}

/// The quick check lets a value through whole only when escaping would not change it: every
/// byte value at every position of values shorter than, as long as, and longer than a word.
#[test]
fn the_quick_check_agrees_with_escaping() {
    for len in [1, 3, 7, 8, 9, 13, 16, 23] {
        for at in 0..len {
            for byte in 0..=255u8 {
                let mut value = vec![b'a'; len];
                value[at] = byte;
                let mut escaped = Vec::new();
                if let Ok(text) = std::str::from_utf8(&value) {
                    escape(&mut escaped, text.as_bytes());
                    assert_eq!(is_plain(&value, 0), escaped == value, "{value:?}");
                    let mut pushed = b"x".to_vec();
                    push_inner(&mut pushed, text);
                    assert_eq!(pushed[1..], escaped, "{value:?}");
                }
                let ascii = byte < 0x80 && escaped == value;
                assert_eq!(is_plain(&value, HIGH), ascii, "{value:?}");
            }
        }
    }
}

#[test]
fn timestamps_are_rfc3339_with_milliseconds() {
    let t = UNIX_EPOCH + Duration::from_millis(1_795_694_400_007);
    let mut out = Vec::new();
    push_timestamp(&mut out, t);
    push_timestamp(&mut out, t + Duration::from_millis(1_990));
    push_timestamp(&mut out, UNIX_EPOCH);
    push_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(253_402_300_800));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"ts\":\"2026-11-26T12:00:00.007Z\"{\"ts\":\"2026-11-26T12:00:01.997Z\"\
         {\"ts\":\"1970-01-01T00:00:00.000Z\"{\"ts\":\"10000-01-01T00:00:00.000Z\""
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
    let numbers = [0, 7, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 1_234_567];
    for n in numbers.into_iter().chain([u64::MAX]) {
        push_u64(&mut out, n);
        out.push(b' ');
    }
    push_millis(&mut out, Duration::from_micros(12_045));
    out.push(b' ');
    push_millis(&mut out, Duration::from_micros(7));
    let expected = "0 7 9 10 99 100 999 1000 9999 10000 1234567 18446744073709551615 12.045 0.007";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

fn record<'a>(headers: &'a [(String, Vec<u8>)], worker: Option<u32>) -> AccessRecord<'a> {
    AccessRecord {
        remote_addr: "192.0.2.1",
        method: "GET",
        raw_uri: "/a?b=1",
        path: "/a",
        query: "b=1",
        version: "HTTP/1.1",
        status: 200,
        response_length: Some(11),
        request_headers: headers,
        response_headers: &[],
        ended: UNIX_EPOCH + Duration::from_secs(1),
        duration: Duration::from_micros(1_234),
        pid: 42,
        worker,
    }
}

#[test]
fn an_access_object_has_every_field() {
    let headers = [
        ("USER-AGENT".to_owned(), b"curl/8 \"x\"".to_vec()),
        ("X-REQUEST-ID".to_owned(), b"abc-1".to_vec()),
    ];
    let mut out = Vec::new();
    render_access(
        &mut out,
        &mut Template::default(),
        &record(&headers, Some(3)),
    );
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

/// A template made for one pid and worker is remade for another (a log opened before a fork).
#[test]
fn the_template_follows_pid_and_worker() {
    let mut template = Template::default();
    let mut lines = Vec::new();
    for worker in [Some(3), Some(3), None] {
        let mut out = Vec::new();
        let mut r = record(&[], worker);
        r.pid += u32::from(worker.is_none());
        render_access(&mut out, &mut template, &r);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        lines.push((value["pid"].as_u64(), value["worker"].as_u64()));
    }
    assert_eq!(
        lines,
        [(Some(42), Some(3)), (Some(42), Some(3)), (Some(43), None)]
    );
}
