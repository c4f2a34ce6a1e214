//! Focused tests of `parse_head`, one rule each, on raw bytes. Test-only.
use super::rules_tests::WITHOUT_HOST;
use super::{
    parse_head, parse_head_into, BodyFraming, ParseError, ProxyPolicy, RequestHead, Version,
};
use std::net::SocketAddr;

type Parsed = Result<Option<(RequestHead, usize)>, ParseError>;

/// Most tests here are about something else than Host, and leave it out.
pub(super) fn parse(bytes: &[u8]) -> Parsed {
    parse_head(bytes, &WITHOUT_HOST, ProxyPolicy::Off)
}

pub(super) fn head(bytes: &[u8]) -> RequestHead {
    let (head, used) = parse(bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    head
}

/// The error, which must also be what every shorter prefix either reports or waits on.
pub(super) fn error(bytes: &[u8]) -> ParseError {
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
fn duplicate_host_or_content_type_is_refused() {
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n"),
        400
    );
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
