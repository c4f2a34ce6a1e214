//! Unit tests of the app headers: validation, rendering and the framing facts.
use super::*;

#[test]
fn status_must_be_three_digits_and_text() {
    assert_eq!(validate_status("200 OK").unwrap(), 200);
    assert_eq!(validate_status("404").unwrap(), 404);
    assert!(validate_status("20 OK").is_err());
    assert!(validate_status("200OK").is_err());
    assert!(validate_status("200 OK\r\nX: y").is_err());
    assert!(validate_status("099 Low").is_err());
    for bad in ["2000 OK", "20x OK", "\u{e9}00 OK"] {
        assert!(validate_status(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn header_injection_is_refused() {
    assert!(validate_header("X-Ok", "fine value\twith tab").is_ok());
    assert!(validate_header("X-Bad", "a\r\nSet-Cookie: x").is_err());
    assert!(validate_header("X-Bad", "nul\0").is_err());
    assert!(validate_header("X Bad", "v").is_err());
    assert!(validate_header("X:Bad", "v").is_err());
    assert!(validate_header("", "v").is_err());
    assert!(validate_header("X-Latin", "caf\u{e9}").is_ok());
    assert!(validate_header("X-Wide", "\u{20ac}").is_err());
}

#[test]
fn hop_by_hop_headers_are_recognised() {
    assert_eq!(classify("Transfer-Encoding"), HeaderKind::HopByHop);
    assert_eq!(classify("connection"), HeaderKind::Connection);
    assert_eq!(classify("Content-Length"), HeaderKind::ContentLength);
    assert_eq!(classify("X-Custom"), HeaderKind::Normal);
    for hop in [
        "Keep-Alive",
        "Proxy-Authenticate",
        "proxy-authorization",
        "TE",
        "Trailers",
        "transfer-encoding",
        "Upgrade",
    ] {
        assert_eq!(classify(hop), HeaderKind::HopByHop, "{hop}");
    }
    // Same lengths as the names above, so only the bytes tell them apart.
    for normal in [
        "X-Length-14!!!",
        "Connexion!",
        "Keep-Alivf",
        "TZ",
        "X-Server",
        "Expires",
        "Transfer-Encodinh",
        "Proxy-Authenticatf",
        "Proxy-Authorizatiom",
    ] {
        assert_eq!(classify(normal), HeaderKind::Normal, "{normal}");
    }
}

#[test]
fn header_block_renders_what_goes_out_and_keeps_the_framing_facts() {
    let mut block = HeaderBlock::new("200 OK").unwrap();
    block.push("Content-Type", "text/plain").unwrap();
    block.push("Content-Length", " 13 ").unwrap();
    block.push("Transfer-Encoding", "chunked").unwrap();
    block.push("Connection", "keep-alive, close").unwrap();
    block.push("X-Caf\u{e9}-Free", "v").unwrap_err();
    block.push("X-Name", "caf\u{e9}").unwrap();
    assert_eq!(block.status, 200);
    assert_eq!(block.app_length, Some(13));
    assert!(block.close);
    assert_eq!(
        block.fields(),
        b"\r\nContent-Type: text/plain\r\nContent-Length:  13 \r\nX-Name: caf\xe9"
    );
    assert_eq!(
        block.pairs(),
        [
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Content-Length".to_string(), " 13 ".to_string()),
            ("X-Name".to_string(), "caf\u{e9}".to_string()),
        ]
    );
}

#[test]
fn header_block_refuses_a_bad_status_or_length() {
    assert!(HeaderBlock::new("20 OK").is_err());
    let mut block = HeaderBlock::new("200 OK").unwrap();
    assert!(block.push("Content-Length", "ten").is_err());
    assert!(block.push("X-Bad", "a\r\nb").is_err());
}

#[test]
fn content_length_takes_digits_and_what_int_would() {
    assert_eq!(content_length("13"), Some(13));
    assert_eq!(
        content_length("9999999999999999999"),
        Some(9_999_999_999_999_999_999)
    );
    assert_eq!(content_length(" 13\t"), Some(13));
    assert_eq!(content_length("18446744073709551616"), None);
    assert_eq!(content_length("1a"), None);
    assert_eq!(content_length(""), None);
}
