//! The PROXY protocol preamble parser over arbitrary bytes: never panics; gives the same verdict
//! however the bytes are split; a preamble it accepts used only its own bytes and, for v1, says
//! again what it was parsed from; a peer not allowed to send one is refused exactly when a
//! signature starts the buffer; and `parse_head` hands the accepted addresses on unchanged.
//!
//! Input: bytes 0-1 = split point (little endian, taken modulo len + 1), the rest = the start of
//! a connection.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgunicorn::http::proxy::{parse_preamble, refuse_preamble, Preamble};
use rgunicorn::http::{parse_head, HeadRules, ParseError, ProxyInfo, ProxyPolicy};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v1_line(info: &ProxyInfo) -> String {
    let family = if info.source.is_ipv4() {
        "TCP4"
    } else {
        "TCP6"
    };
    let (source, destination) = (info.source, info.destination);
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
}

fn check_found(buf: &[u8], info: &Option<ProxyInfo>, used: usize) {
    assert!(used <= buf.len(), "used {used} of {}", buf.len());
    if buf.starts_with(V2_SIGNATURE) {
        assert_eq!(
            used,
            16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]))
        );
        return;
    }
    assert!(
        used <= 107 && buf[..used].ends_with(b"\r\n"),
        "v1 of {used} bytes"
    );
    let info = info.as_ref().expect("a v1 preamble names its addresses");
    let again = v1_line(info);
    match parse_preamble(again.as_bytes()) {
        Ok(Preamble::Found(Some(reparsed), n)) => assert_eq!((&reparsed, n), (info, again.len())),
        other => panic!("{again:?} parsed as {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [lo, hi, buf @ ..] = data else {
        return;
    };
    let whole = parse_preamble(buf);
    if let Ok(Preamble::Found(info, used)) = &whole {
        check_found(buf, info, *used);
        let mut request = buf[..*used].to_vec();
        request.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        let (head, n) = parse_head(&request, &HeadRules::default(), ProxyPolicy::Accept)
            .expect("the preamble parses again")
            .expect("and the request after it");
        assert_eq!((&head.proxy, n), (info, request.len()));
    }
    let split = usize::from(u16::from_le_bytes([*lo, *hi])) % (buf.len() + 1);
    match (parse_preamble(&buf[..split]), &whole) {
        (Ok(Preamble::NeedMore), _) => {}
        (Err(early), Err(late)) => {
            assert_eq!(std::mem::discriminant(&early), std::mem::discriminant(late))
        }
        (early, _) => assert_eq!(
            format!("{early:?}"),
            format!("{whole:?}"),
            "split at {split}"
        ),
    }
    let announced = buf.starts_with(V2_SIGNATURE) || buf.starts_with(b"PROXY ");
    match refuse_preamble(buf) {
        Err(ParseError::ForbiddenProxyRequest(_)) => assert!(announced),
        Err(other) => panic!("refused with {other:?}"),
        Ok(refused) => {
            assert!(!announced);
            assert_eq!(Ok(refused), whole);
        }
    }
});
