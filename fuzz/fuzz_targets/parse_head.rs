//! `parse_head` over arbitrary bytes: never panics, accepts only heads whose fields are safe to
//! hand to WSGI, and gives the same verdict however the bytes are split (a prefix that already
//! decides must decide the same way as the whole buffer, as the reactor feeds it).
//!
//! Input: byte 0 = flags (bit 0: proxy_protocol; bits 1-2: limits), bytes 1-2 = split point
//! (little endian, taken modulo len + 1), the rest = what the client sent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgunicorn::http::{parse_head, Limits, ParseError, RequestHead};

type Parsed = Result<Option<(RequestHead, usize)>, ParseError>;

fn limits(selector: u8) -> Limits {
    match selector & 3 {
        0 => Limits::default(),
        1 => Limits::from_settings(40, 4, 30),
        2 => Limits::from_settings(0, 0, 0),
        _ => Limits::from_settings(1, 1, 1),
    }
}

/// The head as text, for comparing two parses (RequestHead has no PartialEq).
fn show(parsed: &Parsed) -> String {
    match parsed {
        Ok(Some((head, used))) => format!("head {head:?} used {used}"),
        Ok(None) => "need more".to_string(),
        Err(e) => format!("error {e:?}"),
    }
}

fn check_head(buf: &[u8], head: &RequestHead, used: usize) {
    assert!(
        used > 0 && used <= buf.len(),
        "used {used} of {}",
        buf.len()
    );
    assert!(buf[..used].ends_with(b"\r\n\r\n") || buf[..used].ends_with(b"\r\n"));
    for (name, value) in &head.headers {
        assert!(!name.is_empty(), "empty name");
        assert!(!name.contains('_'), "'_' name kept: {name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_lowercase() && b != b':'),
            "bad name {name:?}"
        );
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "CR/LF/NUL in value of {name}"
        );
        assert!(
            value.first() != Some(&b' ') && value.last() != Some(&b' '),
            "untrimmed value of {name}"
        );
    }
    assert!(head.target.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    assert!(head.method.bytes().all(|b| b.is_ascii_graphic()));
    assert_ne!(head.method, "CONNECT");
}

fuzz_target!(|data: &[u8]| {
    let [flags, lo, hi, buf @ ..] = data else {
        return;
    };
    let (proxy, limits) = (flags & 1 == 1, limits(flags >> 1));
    let whole: Parsed = parse_head(buf, &limits, proxy);
    if let Ok(Some((head, used))) = &whole {
        check_head(buf, head, *used);
    }
    let split = usize::from(u16::from_le_bytes([*lo, *hi])) % (buf.len() + 1);
    let prefix: Parsed = parse_head(&buf[..split], &limits, proxy);
    match (&prefix, &whole) {
        // Incomplete so far: the whole may go any way.
        (Ok(None), _) => {}
        // A head complete in the prefix is the same head in the whole buffer.
        (Ok(Some(_)), _) => assert_eq!(show(&prefix), show(&whole), "split at {split}"),
        // An error seen early must be the same error later: no split can talk it away.
        (Err(early), Err(late)) => assert_eq!(
            (std::mem::discriminant(early), early.status()),
            (std::mem::discriminant(late), late.status()),
            "split at {split}: {early:?} then {late:?}"
        ),
        (Err(early), _) => panic!("split at {split}: {early:?}, whole: {}", show(&whole)),
    }
    // And the other way round: a head complete within the prefix was found in it.
    if let Ok(Some((_, used))) = &whole {
        if *used <= split {
            assert_eq!(show(&prefix), show(&whole), "split at {split}");
        }
    }
});
