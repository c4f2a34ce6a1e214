//! Response validation: `validate_status` and `validate_header` never panic, and whatever they
//! accept can go on the wire as latin-1 without CR, LF or NUL, so an app can never split a
//! response or inject a header.
//!
//! Input: three strings separated by 0xFF bytes (status, name, value); invalid UTF-8 is replaced,
//! and every byte sequence that is valid UTF-8 reaches the validators as it is.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgunicorn::http::response::{validate_header, validate_status};

fn wire_safe(text: &str) -> bool {
    text.chars()
        .all(|c| (c as u32) <= 0xff && !matches!(c, '\r' | '\n' | '\0'))
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let status = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();
    if let Ok(code) = validate_status(&status) {
        assert!(wire_safe(&status), "status {status:?} accepted");
        assert!((100..=999).contains(&code));
        assert!(status.starts_with(&code.to_string()) || status.starts_with('0'));
    }
    if validate_header(&name, &value).is_ok() {
        assert!(
            wire_safe(&name) && wire_safe(&value),
            "{name:?}: {value:?} accepted"
        );
        assert!(!name.is_empty() && !name.contains(':') && !name.contains(' '));
    }
});
