//! What the parsed fields mean for the connection: body framing (RFC 9112 §6), persistence
//! (§9.3), Expect (RFC 9110 §10.1.1) and fields that may appear only once. Any ambiguity is an
//! error, because a front proxy that frames differently is how requests get smuggled.
use super::request::{show, BodyFraming, ParseError, Version};

type Fields = [(String, Vec<u8>)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Semantics {
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

pub(crate) fn analyze(version: Version, fields: &Fields) -> Result<Semantics, ParseError> {
    reject_repeated_singletons(fields)?;
    let expect_continue = expects_continue(version, fields)?;
    let (framing, compressed) = body_framing(version, fields)?;
    Ok(Semantics {
        framing,
        // gunicorn closes after a compressed body: it cannot vouch for what the app read of it.
        keep_alive: !compressed && persistent(version, fields),
        expect_continue,
    })
}

fn values<'a>(fields: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(field, _)| field == name)
        .map(|(_, value)| value.as_slice())
}

/// The comma-separated elements of every field named `name`, trimmed; empty ones are skipped
/// as RFC 9110 §5.6.1 requires.
fn list<'a>(fields: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    values(fields, name)
        .flat_map(|value| value.split(|&b| b == b','))
        .map(super::fields::trim_ows)
        .filter(|element| !element.is_empty())
}

/// RFC 9110 §5.3: a second Host or Content-Type cannot be merged, and two parties may each
/// pick a different one.
fn reject_repeated_singletons(fields: &Fields) -> Result<(), ParseError> {
    for name in ["HOST", "CONTENT-TYPE"] {
        if values(fields, name).count() > 1 {
            return Err(ParseError::InvalidHeader(format!("repeated {name}")));
        }
    }
    Ok(())
}

fn expects_continue(version: Version, fields: &Fields) -> Result<bool, ParseError> {
    let mut expect = false;
    for value in values(fields, "EXPECT") {
        if !value.eq_ignore_ascii_case(b"100-continue") {
            return Err(ParseError::ExpectationFailed(show(value)));
        }
        // RFC 9110 §10.1.1: an HTTP/1.0 client cannot handle a 100 response.
        expect = version == Version::Http11;
    }
    Ok(expect)
}

fn persistent(version: Version, fields: &Fields) -> bool {
    let has = |token: &[u8]| list(fields, "CONNECTION").any(|t| t.eq_ignore_ascii_case(token));
    match version {
        _ if has(b"close") => false,
        Version::Http11 => true,
        Version::Http10 => has(b"keep-alive"),
    }
}

/// The framing, and whether a compressing transfer coding sits under the chunked one.
fn body_framing(version: Version, fields: &Fields) -> Result<(BodyFraming, bool), ParseError> {
    let coding = transfer_coding(fields)?;
    let length = content_length(fields)?;
    match (coding, length) {
        (None, None) => Ok((BodyFraming::Empty, false)),
        (None, Some(length)) => Ok((BodyFraming::Length(length), false)),
        (Some(_), _) if version == Version::Http10 => Err(ParseError::InvalidHeader(
            "Transfer-Encoding in an HTTP/1.0 request".into(),
        )),
        (Some(_), Some(_)) => Err(ParseError::InvalidHeader(
            "both Content-Length and Transfer-Encoding".into(),
        )),
        (Some(compressed), None) => Ok((BodyFraming::Chunked, compressed)),
    }
}

/// `None` without Transfer-Encoding; otherwise the codings must end in exactly one `chunked`
/// (RFC 9112 §6.1, §6.3), and `Some(true)` says a compressing coding comes before it.
fn transfer_coding(fields: &Fields) -> Result<Option<bool>, ParseError> {
    if values(fields, "TRANSFER-ENCODING").next().is_none() {
        return Ok(None);
    }
    let (mut chunked, mut compressed) = (false, false);
    for coding in list(fields, "TRANSFER-ENCODING") {
        let coding = coding.to_ascii_lowercase();
        let known = matches!(
            coding.as_slice(),
            b"chunked" | b"identity" | b"gzip" | b"x-gzip" | b"deflate" | b"compress"
        );
        if !known {
            return Err(ParseError::UnsupportedTransferCoding(show(&coding)));
        }
        if chunked {
            return Err(ParseError::InvalidHeader(format!(
                "transfer coding {} after chunked",
                show(&coding)
            )));
        }
        chunked = coding == b"chunked";
        compressed |= !chunked && coding != b"identity";
    }
    match chunked {
        true => Ok(Some(compressed)),
        false => Err(ParseError::InvalidHeader(
            "final transfer coding is not chunked".into(),
        )),
    }
}

/// One Content-Length of 1*DIGIT; repeats, lists, signs and spaces are all refused.
fn content_length(fields: &Fields) -> Result<Option<u64>, ParseError> {
    let mut found = values(fields, "CONTENT-LENGTH");
    let Some(value) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(ParseError::InvalidHeader("repeated Content-Length".into()));
    }
    let invalid = || ParseError::InvalidHeader(format!("Content-Length {}", show(value)));
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    String::from_utf8_lossy(value)
        .parse::<u64>()
        .map(Some)
        .map_err(|_| invalid())
}
