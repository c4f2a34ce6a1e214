//! Focused tests of `parse_head`, one rule each, on raw bytes. Test-only.
use super::{
    parse_head, parse_head_into, BodyFraming, HeadRules, Limits, ParseError, ProxyPolicy,
    RequestHead, Version,
};
use crate::config::{default_settings, load, Environment};
use std::net::SocketAddr;
use std::sync::LazyLock;

type Parsed = Result<Option<(RequestHead, usize)>, ParseError>;

/// The rules a worker started with `rgunicorn app ARGS` parses by: validated settings through
/// `HeadRules::of`, the production path.
pub(super) fn rules(args: &[&str]) -> HeadRules {
    let argv = ["rgunicorn", "app"].iter().chain(args).map(Into::into);
    let (settings, _) = load(argv.collect(), &Environment::default()).unwrap();
    HeadRules::of(&settings)
}

/// Most tests here are about something else than Host, and leave it out.
static WITHOUT_HOST: LazyLock<HeadRules> = LazyLock::new(|| rules(&["--permit-missing-host"]));
static STRICT: LazyLock<HeadRules> = LazyLock::new(|| rules(&[]));

fn parse(bytes: &[u8]) -> Parsed {
    parse_head(bytes, &WITHOUT_HOST, ProxyPolicy::Off)
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

fn head(bytes: &[u8]) -> RequestHead {
    let (head, used) = parse(bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    head
}

/// The error, which must also be what every shorter prefix either reports or waits on.
fn error(bytes: &[u8]) -> ParseError {
    let e = parse(bytes).unwrap_err();
    for end in 0..bytes.len() {
        match parse(&bytes[..end]) {
            Ok(None) => {}
            Err(early) => assert_eq!(early, e, "prefix of {end} bytes"),
            Ok(Some(_)) => panic!("prefix of {end} bytes parsed"),
        }
    }
    e
}

fn status(bytes: &[u8]) -> u16 {
    error(bytes).status()
}

#[test]
fn simple_get() {
    let h = head(b"GET /a/b?x=1#frag HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(
        (h.method.as_str(), h.target.as_str()),
        ("GET", "/a/b?x=1#frag")
    );
    assert_eq!(
        (h.path.as_str(), h.query.as_str(), h.fragment.as_str()),
        ("/a/b", "x=1", "frag")
    );
    assert_eq!(
        (h.version, &h.framing, h.keep_alive),
        (Version::Http11, &BodyFraming::Empty, true)
    );
    assert_eq!(h.header("HOST"), Some(&b"example.com"[..]));
    assert_eq!(h.version.as_str(), "HTTP/1.1");
}

#[test]
fn head_stops_at_the_blank_line() {
    let bytes = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
    let (h, used) = parse(bytes).unwrap().unwrap();
    assert_eq!(
        (h.framing, &bytes[used..]),
        (BodyFraming::Length(3), &b"abcGET"[..])
    );
}

#[test]
fn incomplete_heads_wait() {
    for bytes in [
        &b""[..],
        b"GET / HT",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n\r",
    ] {
        assert_eq!(parse(bytes).unwrap().map(|(_, n)| n), None);
    }
}

#[test]
fn bare_lf_or_cr_is_refused_everywhere() {
    assert!(matches!(
        error(b"GET / HTTP/1.1\n\r\n"),
        ParseError::InvalidRequestLine(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA: b\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA: b\r\n\n"),
        ParseError::InvalidHeader(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
    assert_eq!(status(b"GET / HTTP/1.1\r\r\n\r\n"), 400);
}

#[test]
fn one_leading_empty_line_is_skipped() {
    assert_eq!(head(b"\r\nGET / HTTP/1.1\r\n\r\n").path, "/");
    assert!(matches!(
        error(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
        ParseError::InvalidRequestLine(_)
    ));
}

#[test]
fn methods_follow_gunicorn() {
    assert_eq!(head(b"-BLARGH / HTTP/1.1\r\n\r\n").method, "-BLARGH");
    for bad in [
        &b"get"[..],
        b"GE",
        b"G#T",
        b"GET:",
        b"GET\0",
        b"AAAAAAAAAAAAAAAAAAAAA",
    ] {
        let line = [bad, b" / HTTP/1.1\r\n\r\n"].concat();
        assert!(matches!(error(&line), ParseError::InvalidRequestMethod(_)));
    }
}

#[test]
fn only_http_1_0_and_1_1() {
    assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
    for bad in [
        "HTTP/1.2",
        "HTTP/2.0",
        "HTTP/0.9",
        "http/1.1",
        "HTTP/1.1 ",
        "HTTP/11",
    ] {
        let line = format!("GET / {bad}\r\n\r\n");
        assert!(matches!(
            error(line.as_bytes()),
            ParseError::InvalidHTTPVersion(_)
        ));
    }
}

#[test]
fn request_line_needs_single_spaces() {
    assert!(matches!(
        error(b"GET  / HTTP/1.1\r\n\r\n"),
        ParseError::InvalidRequestLine(_)
    ));
    assert!(matches!(
        error(b"GET /\r\n\r\n"),
        ParseError::InvalidRequestLine(_)
    ));
}

#[test]
fn target_forms() {
    let h = head(b"GET http://u:p@example.com:8080/p?q#f HTTP/1.1\r\n\r\n");
    assert_eq!((h.path.as_str(), h.query.as_str()), ("/p", "q"));
    assert_eq!(h.host_from_target.as_deref(), Some("example.com:8080"));
    assert_eq!(head(b"OPTIONS * HTTP/1.1\r\n\r\n").path, "*");
    assert_eq!(head(b"GET //x HTTP/1.1\r\n\r\n").path, "//x");
    for bad in [
        "GET *",
        "GET a/b",
        "GET example.com:80",
        "GET http:///x",
        "GET http://[::1/",
    ] {
        let line = format!("{bad} HTTP/1.1\r\n\r\n");
        assert!(
            matches!(error(line.as_bytes()), ParseError::InvalidRequestLine(_)),
            "{bad}"
        );
    }
}

#[test]
fn target_bytes_are_visible_ascii() {
    for bad in [&b"/\xc3\xa0"[..], b"/\0", b"/\x7f", b"/\x01"] {
        let line = [b"GET ", bad, b" HTTP/1.1\r\n\r\n"].concat();
        assert!(matches!(error(&line), ParseError::InvalidRequestLine(_)));
    }
}

#[test]
fn connect_is_refused_because_we_never_tunnel() {
    assert_eq!(status(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n"), 501);
    assert_eq!(status(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n"), 501);
    assert!(matches!(
        error(b"CONNECT /x HTTP/1.1\r\n\r\n"),
        ParseError::InvalidRequestLine(_)
    ));
}

#[test]
fn field_syntax() {
    let h = head(b"GET / HTTP/1.1\r\nX-A: \t caf\xc3\xa9 \t\r\nx-a:2\r\nX_B: dropped\r\n\r\n");
    let expected = [
        ("X-A".to_string(), b"caf\xc3\xa9".to_vec()),
        ("X-A".into(), b"2".to_vec()),
    ];
    assert_eq!(h.headers, expected);
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA : b\r\n\r\n"),
        ParseError::InvalidHeaderName(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA\xdf: b\r\n\r\n"),
        ParseError::InvalidHeaderName(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\nA b\r\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\n: b\r\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
}

#[test]
fn control_bytes_in_values_are_refused() {
    for ctl in [0x00, 0x07, 0x0b, 0x1f, 0x7f] {
        let line = [&b"GET / HTTP/1.1\r\nA: x"[..], &[ctl], b"y\r\n\r\n"].concat();
        assert!(
            matches!(error(&line), ParseError::InvalidHeader(_)),
            "{ctl:#x}"
        );
    }
}

#[test]
fn a_control_byte_anywhere_in_a_long_value_is_refused_and_tabs_are_not() {
    let value = |at: Option<usize>, byte: u8| {
        let mut value = vec![b'v'; 100];
        if let Some(at) = at {
            value[at] = byte;
        }
        [&b"GET / HTTP/1.1\r\nCookie: "[..], &value, b"\r\n\r\n"].concat()
    };
    for at in [1, 15, 16, 31, 32, 63, 64, 98] {
        let refused = value(Some(at), 0x01);
        assert!(
            matches!(error(&refused), ParseError::InvalidHeader(_)),
            "{at}"
        );
        let tabbed = value(Some(at), b'\t');
        let (head, _) = parse(&tabbed).unwrap().unwrap();
        assert_eq!(head.headers[0].1.len(), 100, "{at}");
    }
}

#[test]
fn obs_fold_is_refused() {
    let folded = b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n";
    assert!(matches!(error(folded), ParseError::ObsoleteFolding(_)));
    assert!(matches!(
        error(b"GET / HTTP/1.1\r\n\tA: b\r\n\r\n"),
        ParseError::InvalidHeaderName(_)
    ));
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
fn duplicate_host_or_content_type_is_refused() {
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n"),
        400
    );
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

#[test]
fn content_length_must_be_one_plain_number() {
    assert_eq!(
        head(b"PUT / HTTP/1.1\r\nContent-Length: 007\r\n\r\n").framing,
        BodyFraming::Length(7)
    );
    for bad in [
        "+1",
        "-0",
        "1,1",
        "1 1",
        "",
        "0x1",
        "99999999999999999999",
        "1\r\nContent-Length: 1",
    ] {
        let bytes = format!("PUT / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
        assert!(
            matches!(error(bytes.as_bytes()), ParseError::InvalidHeader(_)),
            "{bad}"
        );
    }
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
fn keep_alive_and_expect() {
    assert!(!head(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(head(b"GET / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n").keep_alive);
    assert!(head(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").expect_continue);
    assert!(!head(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    assert_eq!(status(b"PUT / HTTP/1.1\r\nExpect: coffee\r\n\r\n"), 417);
}

fn with_proxy(bytes: &[u8]) -> Parsed {
    parse_head(bytes, &WITHOUT_HOST, ProxyPolicy::Accept)
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

#[test]
fn proxy_v1() {
    let bytes = b"PROXY TCP6 ::1 2001:db8::2 1 65535\r\nGET / HTTP/1.1\r\n\r\n";
    let proxy = with_proxy(bytes).unwrap().unwrap().0.proxy.unwrap();
    assert_eq!(proxy.source, "[::1]:1".parse::<SocketAddr>().unwrap());
    assert_eq!(
        proxy.destination,
        "[2001:db8::2]:65535".parse::<SocketAddr>().unwrap()
    );
    assert!(with_proxy(b"PROX").unwrap().is_none());
    for bad in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        &[b'P'; 120],
    ] {
        let bad = [b"PROXY ", &bad[6..]].concat();
        assert!(matches!(
            with_proxy(&bad),
            Err(ParseError::InvalidProxyLine(_))
        ));
    }
}

#[test]
fn proxy_v2_local_has_no_addresses() {
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00GET / HTTP/1.1\r\n\r\n";
    let (h, used) = with_proxy(local).unwrap().unwrap();
    assert_eq!((h.proxy, used), (None, local.len()));
    assert!(with_proxy(&local[..10]).unwrap().is_none());
    let unix = b"\r\n\r\n\0\r\nQUIT\n\x21\x31\x00\x00";
    assert!(matches!(
        with_proxy(unix),
        Err(ParseError::InvalidProxyLine(_))
    ));
}

#[test]
fn a_reused_head_is_the_same_as_a_fresh_one() {
    let heads: [&[u8]; 4] = [
        b"POST http://h:1/long/path?q=1#f HTTP/1.0\r\nX_Y: 1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: x\r\n\r\n",
        b"PUT /u HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        b"GET /a?b HTTP/1.1\r\n\r\n",
    ];
    let mut reused = RequestHead::default();
    for _round in 0..2 {
        for bytes in heads {
            let (fresh, used) = parse(bytes).unwrap().unwrap();
            let used_again = parse_head_into(bytes, &WITHOUT_HOST, ProxyPolicy::Off, &mut reused);
            assert_eq!(used_again.unwrap(), Some(used));
            assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
        }
        // A refused or incomplete head leaves the next parse unaffected.
        for broken in [
            &b"GET / HTTP/1.1\r\nA: 1\r\nbad\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nA: 1\r\nB:",
        ] {
            let _ = parse_head_into(broken, &WITHOUT_HOST, ProxyPolicy::Off, &mut reused);
        }
    }
}
