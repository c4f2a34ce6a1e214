//! `parse_head` over arbitrary bytes: never panics, accepts only heads whose fields are safe to
//! hand to WSGI and whose framing and Host obey the rules, and gives the same verdict however the
//! bytes are split (a prefix that already decides must decide the same way as the whole buffer,
//! as the reactor feeds it).
//!
//! Input: byte 0 = flags (bits 0-1: PROXY policy off/accept/refuse/off; bit 2:
//! permit_missing_host; bits 3-4: one of four limit settings), bytes 1-2 = split point (little
//! endian, taken modulo len + 1), the rest = what the client sent.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rgunicorn::config::{load, Environment};
use rgunicorn::http::{
    parse_head, BodyFraming, HeadRules, ParseError, ProxyPolicy, RequestHead, Version,
};

type Parsed = Result<Option<(RequestHead, usize)>, ParseError>;

const LIMITS: [&[&str]; 4] = [
    &[],
    &[
        "--limit-request-line",
        "40",
        "--limit-request-fields",
        "4",
        "--limit-request-field_size",
        "30",
    ],
    &[
        "--limit-request-line",
        "0",
        "--limit-request-fields",
        "0",
        "--limit-request-field_size",
        "0",
    ],
    &[
        "--limit-request-line",
        "1",
        "--limit-request-fields",
        "1",
        "--limit-request-field_size",
        "1",
    ],
];

/// The rules of a worker started with those settings: the production path, built once.
fn rules(flags: u8) -> &'static HeadRules {
    static RULES: OnceLock<Vec<HeadRules>> = OnceLock::new();
    let all = RULES.get_or_init(|| {
        let mut all = Vec::new();
        for permit in [false, true] {
            for limits in LIMITS {
                let mut argv = vec!["rgunicorn", "app"];
                argv.extend_from_slice(limits);
                if permit {
                    argv.push("--permit-missing-host");
                }
                let argv = argv.into_iter().map(Into::into).collect();
                let (settings, _) = load(argv, &Environment::default()).expect("valid settings");
                all.push(HeadRules::of(&settings));
            }
        }
        all
    });
    &all[usize::from((flags >> 2) & 1) * 4 + usize::from((flags >> 3) & 3)]
}

fn policy(flags: u8) -> ProxyPolicy {
    match flags & 3 {
        1 => ProxyPolicy::Accept,
        2 => ProxyPolicy::Refuse,
        _ => ProxyPolicy::Off,
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

/// Host and Transfer-Encoding as the rules allow them.
fn check_semantics(head: &RequestHead, rules: &HeadRules) {
    let hosts: Vec<&[u8]> = head
        .headers
        .iter()
        .filter(|(n, _)| n == "HOST")
        .map(|(_, v)| v.as_slice())
        .collect();
    assert!(hosts.len() <= 1, "repeated Host accepted");
    if head.version == Version::Http11 && !rules.permit_missing_host {
        assert_eq!(hosts.len(), 1, "HTTP/1.1 without Host accepted");
    }
    for host in hosts {
        // Empty (RFC 9110 §7.2) or host[:port]: never whitespace, a path, userinfo or quotes.
        let port = host
            .iter()
            .rposition(|&b| b == b':')
            .filter(|_| !host.ends_with(b"]"));
        assert!(port != Some(0), "Host with no host {host:?}");
        assert!(
            host.iter()
                .all(|&b| b.is_ascii_graphic() && !b"/?#@\\\"".contains(&b)),
            "Host {host:?}"
        );
    }
    let codings: Vec<Vec<u8>> = (head.headers.iter())
        .filter(|(n, _)| n == "TRANSFER-ENCODING")
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|c| c.trim_ascii().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    match head.framing {
        BodyFraming::Chunked => {
            assert_eq!(codings, [b"chunked".to_vec()], "framing from {codings:?}")
        }
        _ => assert!(
            codings.is_empty(),
            "Transfer-Encoding {codings:?} without chunked framing"
        ),
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
    let (proxy, rules) = (policy(*flags), rules(*flags));
    let whole: Parsed = parse_head(buf, rules, proxy);
    if let Ok(Some((head, used))) = &whole {
        check_head(buf, head, *used);
        check_semantics(head, rules);
        if proxy != ProxyPolicy::Accept {
            assert_eq!(head.proxy, None, "addresses from a preamble not accepted");
        }
    }
    let announced = buf.starts_with(b"PROXY ") || buf.starts_with(b"\r\n\r\n\0\r\nQUIT\n");
    if proxy == ProxyPolicy::Refuse && announced {
        assert!(
            matches!(whole, Err(ParseError::ForbiddenProxyRequest(_))),
            "{}",
            show(&whole)
        );
    }
    let split = usize::from(u16::from_le_bytes([*lo, *hi])) % (buf.len() + 1);
    let prefix: Parsed = parse_head(&buf[..split], rules, proxy);
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
