//! Tests of the rules a head is judged by besides its syntax (issue 13): Host, Transfer-Encoding,
//! PROXY trust and the limits, as validated settings give them to a worker. Test-only.
use super::parser_tests::{error, head, parse};
use super::{parse_head, BodyFraming, HeadRules, Limits, ParseError, ProxyPolicy, RequestHead};
use crate::config::{default_settings, load, Environment};
use std::sync::LazyLock;

/// The rules a worker started with `rgunicorn app ARGS` parses by: validated settings through
/// `HeadRules::of`, the production path.
pub(super) fn rules(args: &[&str]) -> HeadRules {
    let argv = ["rgunicorn", "app"].iter().chain(args).map(Into::into);
    let (settings, _) = load(argv.collect(), &Environment::default()).unwrap();
    HeadRules::of(&settings)
}

pub(super) static WITHOUT_HOST: LazyLock<HeadRules> =
    LazyLock::new(|| rules(&["--permit-missing-host"]));
static STRICT: LazyLock<HeadRules> = LazyLock::new(|| rules(&[]));

#[test]
fn limits_come_resolved_from_the_settings() {
    let unlimited = rules(&["--limit-request-line", "0", "--limit-request-fields", "0"]);
    let limits = ["--limit-request-field_size", "0"];
    assert_eq!(
        unlimited.limits,
        Limits {
            request_line: usize::MAX,
            fields: 32768,
            field_size: 8190
        }
    );
    assert_eq!(rules(&limits).limits.field_size, 8190);
    // The defaults the chunked decoder checks trailers against are the settings' defaults.
    assert_eq!(HeadRules::of(&default_settings()), HeadRules::default());
}

#[test]
fn http11_needs_one_valid_host() {
    let with_host = |value: &str| format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n");
    let missing = b"GET / HTTP/1.1\r\nX: y\r\n\r\n";
    assert!(matches!(
        strict_error(missing),
        ParseError::InvalidHeader(_)
    ));
    let absolute = b"GET http://a.example/ HTTP/1.1\r\n\r\n";
    assert_eq!(strict_error(absolute).status(), 400);
    for bad in [
        "a b", "x y", ":80", "a:", "a:99999", "a:8o", "a/b", "[::1", "[x]:1", "a@b", "\"a\"",
        "a:65536", "a%4", "a%g1", "\u{e9}", "[::1]:", "[::1]x",
    ] {
        let bytes = with_host(bad);
        assert!(
            matches!(strict_error(bytes.as_bytes()), ParseError::InvalidHeader(_)),
            "{bad:?}"
        );
        // permit_missing_host permits a missing Host only.
        assert_eq!(error(bytes.as_bytes()).status(), 400, "{bad:?}");
    }
    // Empty is RFC 9110 §7.2's Host for a target without authority.
    for good in [
        "",
        "a",
        "A.example:8080",
        "127.0.0.1:1",
        "[::1]",
        "[2001:db8::1]:443",
        "x%41-._~!$&'()*+,;=",
        "a:65535",
        "a%4f",
    ] {
        let bytes = with_host(good);
        let parsed = parse_head(bytes.as_bytes(), &STRICT, ProxyPolicy::Off);
        assert!(parsed.unwrap().is_some(), "{good:?}");
    }
    // HTTP/1.0 may leave it out, but not send a bad one.
    assert!(parse_head(b"GET / HTTP/1.0\r\n\r\n", &STRICT, ProxyPolicy::Off).is_ok());
    assert_eq!(
        strict_error(b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n").status(),
        400
    );
    assert!(head(missing).header("HOST").is_none());
}

fn te(value: &str, version: &str) -> Result<RequestHead, ParseError> {
    let bytes = format!("POST / HTTP/{version}\r\nTransfer-Encoding: {value}\r\n\r\n");
    parse(bytes.as_bytes()).map(|found| found.unwrap().0)
}

#[test]
fn transfer_encoding_must_be_exactly_one_chunked() {
    for chunked in ["chunked", "CHUNKED", "Chunked", "chunked,", " , chunked"] {
        let head = te(chunked, "1.1").unwrap();
        assert_eq!(
            (head.framing, head.keep_alive),
            (BodyFraming::Chunked, true)
        );
    }
    // Well formed and ending in chunked, but with a coding a WSGI app cannot be handed.
    for unsupported in [
        "gzip, chunked",
        "identity, chunked",
        "br;q=1, chunked",
        "x;a=\"b;c\", chunked",
    ] {
        let error = te(unsupported, "1.1").unwrap_err();
        assert!(
            matches!(error, ParseError::UnsupportedTransferCoding(_)),
            "{unsupported}"
        );
    }
    // The field does not frame a body: malformed, no chunked at the end, or chunked twice.
    for bad in [
        "gzip",
        "identity",
        "chunked, chunked",
        "chunked, gzip",
        "",
        " , ",
        "chunked;a=1",
        "gzip;, chunked",
        "gzip;a, chunked",
        "gzip;a=, chunked",
        "gzip;a=\"b, chunked",
        "\"chunked\"",
        "chunked\"",
        "x y, chunked",
        "chunked x",
    ] {
        assert!(
            matches!(te(bad, "1.1"), Err(ParseError::InvalidHeader(_))),
            "{bad:?}"
        );
    }
    let two_lines =
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(error(two_lines).status(), 501);
    let twice =
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(error(twice).status(), 400);
    assert!(matches!(
        te("chunked", "1.0"),
        Err(ParseError::InvalidHeader(_))
    ));
    let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(error(both), ParseError::InvalidHeader(_)));
}

#[test]
fn a_preamble_from_a_peer_not_allowed_is_refused_before_it_is_read() {
    let refuse = |bytes: &[u8]| parse_head(bytes, &WITHOUT_HOST, ProxyPolicy::Refuse);
    let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n\r\n";
    let v2 = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00GET / HTTP/1.1\r\n\r\n";
    for preamble in [&v1[..], v2] {
        let forbidden = refuse(preamble).unwrap_err();
        assert!(matches!(forbidden, ParseError::ForbiddenProxyRequest(_)));
        assert_eq!(forbidden.status(), 403);
    }
    // Refused on its signature alone: however broken the rest, no address is ever read.
    assert!(matches!(
        refuse(b"PROXY garbage"),
        Err(ParseError::ForbiddenProxyRequest(_))
    ));
    assert!(refuse(b"PROX").unwrap().is_none());
    // Without a preamble the request is served; with PROXY protocol off a preamble is no request.
    assert!(refuse(b"GET / HTTP/1.1\r\n\r\n").unwrap().is_some());
    let off = parse(v1).unwrap_err();
    assert!(matches!(off, ParseError::InvalidRequestLine(_)));
}

/// `error`, under the default rules (Host required).
fn strict_error(bytes: &[u8]) -> ParseError {
    let e = parse_head(bytes, &STRICT, ProxyPolicy::Off).unwrap_err();
    for end in 0..bytes.len() {
        match parse_head(&bytes[..end], &STRICT, ProxyPolicy::Off) {
            Ok(None) => {}
            Err(early) => assert_eq!(early, e, "prefix of {end} bytes"),
            Ok(Some(_)) => panic!("prefix of {end} bytes parsed"),
        }
    }
    e
}

#[test]
fn request_line_limit_fails_before_the_crlf() {
    let rules = rules(&["--permit-missing-host", "--limit-request-line", "20"]);
    let parse = |bytes: &[u8]| parse_head(bytes, &rules, ProxyPolicy::Off);
    assert!(parse(b"GET /aaaaaa HTTP/1.1\r\n\r\n").unwrap().is_some());
    let over = parse(b"GET /aaaaaaa HTTP/1.1\r\n\r\n");
    assert!(matches!(over, Err(ParseError::LimitRequestLine(_))));
    let prefix = b"GET /aaaaaaaaaaaaaaaaaaa";
    assert_eq!(parse(prefix).unwrap_err().status(), 414);
}

#[test]
fn field_limits_fail_early() {
    let limits = [
        "--limit-request-fields",
        "2",
        "--limit-request-field_size",
        "13",
    ];
    let rules = rules(&limits);
    let parse = |bytes: &[u8]| parse_head(bytes, &rules, ProxyPolicy::Off);
    let two = b"GET / HTTP/1.1\r\nAccept: */*\r\nA_b: 1\r\n";
    assert!(parse(two).unwrap().is_none());
    let third = [&two[..], b"C"].concat();
    assert_eq!(parse(&third).unwrap_err().status(), 431);
    // The limit counts the CRLF, as gunicorn does.
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nAccept: */**")
            .unwrap_err()
            .status(),
        431
    );
}
