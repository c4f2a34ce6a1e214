//! Focused tests of `ChunkedDecoder` on raw bytes, fed whole and byte by byte. Test-only.
use super::{ChunkedDecoder, ParseError};

/// Decodes `input` fed in pieces of `step` bytes with an output budget of `budget` per call:
/// the body, the bytes consumed, and whether the decoder finished.
fn feed(input: &[u8], step: usize, budget: usize) -> Result<(Vec<u8>, usize, bool), ParseError> {
    let (mut decoder, mut body) = (ChunkedDecoder::default(), Vec::new());
    let (mut used, mut arrived) = (0, 0);
    loop {
        used += decoder.decode(&input[used..arrived], &mut body, budget)?;
        if decoder.is_done() || (used == arrived && arrived == input.len()) {
            return Ok((body, used, decoder.is_done()));
        }
        if used == arrived {
            arrived = (arrived + step).min(input.len());
        }
    }
}

/// The result, after checking that every way of feeding the bytes agrees on it.
fn decode(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ParseError> {
    let whole = feed(input, input.len().max(1), usize::MAX);
    for (step, budget) in [(1, 1), (1, usize::MAX), (3, 2), (7, 5)] {
        assert_eq!(
            feed(input, step, budget),
            whole,
            "step {step}, budget {budget}"
        );
    }
    whole
}

fn error(input: &[u8]) -> ParseError {
    decode(input).unwrap_err()
}

#[test]
fn chunks_and_the_end() {
    let input = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /next";
    let (body, used, done) = decode(input).unwrap();
    assert_eq!(
        (body.as_slice(), used, done),
        (&b"hello world"[..], input.len() - 9, true)
    );
}

#[test]
fn hex_sizes_with_leading_zeros_and_upper_case() {
    let (body, _, done) = decode(b"000A\r\n0123456789\r\n000\r\n\r\n").unwrap();
    assert_eq!((body.len(), done), (10, true));
}

#[test]
fn budget_limits_each_call() {
    let mut decoder = ChunkedDecoder::default();
    let mut body = Vec::new();
    let used = decoder
        .decode(b"5\r\nhello\r\n0\r\n\r\n", &mut body, 2)
        .unwrap();
    assert_eq!(
        (used, body.as_slice(), decoder.is_done()),
        (5, &b"he"[..], false)
    );
}

#[test]
fn incomplete_is_not_done() {
    for input in [
        &b"5\r\nhel"[..],
        b"5\r\nhello\r\n0\r\n",
        b"0\r\nA: b\r\n",
        b"5;a=\"x",
    ] {
        assert!(!decode(input).unwrap().2);
    }
}

#[test]
fn sizes_are_strict_hex() {
    for bad in [
        "",
        " 5",
        "5 ",
        "+5",
        "-5",
        "0x5",
        "5_0",
        "g",
        "10000000000000000",
    ] {
        let input = format!("{bad}\r\n");
        assert!(
            matches!(error(input.as_bytes()), ParseError::InvalidChunkSize(_)),
            "{bad:?}"
        );
    }
    assert!(matches!(error(b"5\n"), ParseError::InvalidChunkSize(_)));
    assert!(matches!(
        error(b"5\rx\r\n"),
        ParseError::InvalidChunkSize(_)
    ));
    let long = [&[b'0'; 9000][..], b"\r\n"].concat();
    assert!(matches!(error(&long), ParseError::InvalidChunkSize(_)));
}

#[test]
fn extensions_are_checked() {
    for good in ["5;a", "5 ;a=b", "5; a ; b=\"x y\\\"z\"", "5;a = b"] {
        let input = format!("{good}\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode(input.as_bytes()).unwrap().0, b"hello", "{good}");
    }
    for bad in [
        "5;",
        "5;;a",
        "5;a=",
        "5;=b",
        "5;a=\"x",
        "5;a b",
        "5;a=b\rc",
        "5;a=\"\x01\"",
    ] {
        let input = format!("{bad}\r\nhello\r\n0\r\n\r\n");
        assert!(
            matches!(
                error(input.as_bytes()),
                ParseError::InvalidChunkExtension(_)
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn data_must_end_in_crlf() {
    for bad in [
        &b"5\r\nhelloX"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\rX",
    ] {
        assert!(matches!(error(bad), ParseError::ChunkMissingTerminator(_)));
    }
}

#[test]
fn trailers_are_checked_and_dropped() {
    let input = b"5\r\nhello\r\n0\r\nVary: *\r\nX-Sum: 1\r\n\r\n";
    assert_eq!(
        decode(input).unwrap(),
        (b"hello".to_vec(), input.len(), true)
    );
    for name in [
        "Content-Length",
        "host",
        "Transfer-Encoding",
        "Trailer",
        "Authorization",
        "TE",
    ] {
        let input = format!("0\r\n{name}: 1\r\n\r\n");
        assert!(
            matches!(error(input.as_bytes()), ParseError::InvalidHeaderName(_)),
            "{name}"
        );
    }
    assert!(matches!(
        error(b"0\r\nA: b\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
    assert!(matches!(
        error(b"0\r\nA: \x7f\r\n\r\n"),
        ParseError::InvalidHeader(_)
    ));
    assert!(matches!(
        error(b"0\r\nA: b\r\n c\r\n\r\n"),
        ParseError::ObsoleteFolding(_)
    ));
    assert_eq!(error(b"0\r\n\n").status(), 400);
}

#[test]
fn trailer_section_is_bounded() {
    let many = format!("0\r\n{}", "A: b\r\n".repeat(101));
    assert!(matches!(
        error(many.as_bytes()),
        ParseError::LimitRequestHeaders(_)
    ));
    let long = format!("0\r\nA: {}", "b".repeat(9000));
    assert!(matches!(
        error(long.as_bytes()),
        ParseError::LimitRequestHeaders(_)
    ));
}

/// Found by the `chunked` fuzz target (fuzz/findings/chunked-harness-consumed-on-error): an
/// empty chunk-size line is the same error however its CR and LF arrive.
#[test]
fn empty_size_line_is_an_error_for_every_split() {
    for input in [&b"\r\nhello\r\n0\r\n\r\n"[..], b"\r\n", b" \r\n", b";x\r\n"] {
        assert!(
            matches!(error(input), ParseError::InvalidChunkSize(_)),
            "{}",
            input.escape_ascii()
        );
    }
}
