//! The request line of RFC 9112 §3: `method SP request-target SP HTTP-version`, with gunicorn's
//! method restrictions. Gets one complete line without its CRLF; never looks at fields.
use super::fields::is_token;
use super::request::{show, ParseError, Version};
use super::target::{parse_target, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub parts: Target<'a>,
    pub version: Version,
}

pub(crate) fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, ParseError> {
    // Split at the first two spaces only, as gunicorn does: extra spaces end up in the target
    // (empty, so invalid) or in the version (so invalid).
    let mut bits = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (bits.next(), bits.next(), bits.next())
    else {
        return Err(ParseError::InvalidRequestLine(show(line)));
    };
    let method = check_method(method)?;
    let parts = parse_target(method, target)?;
    let version = parse_version(version)?;
    let target =
        std::str::from_utf8(target).map_err(|_| ParseError::InvalidRequestLine(show(line)))?;
    Ok(RequestLine {
        method,
        target,
        parts,
        version,
    })
}

/// A token of 3 to 20 bytes without lower case letters or '#': gunicorn's default, which every
/// IANA-registered method passes and which keeps garbage and case tricks out.
fn check_method(method: &[u8]) -> Result<&str, ParseError> {
    let conventional = (3..=20).contains(&method.len())
        && is_token(method)
        && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#');
    match (conventional, std::str::from_utf8(method)) {
        (true, Ok(method)) => Ok(method),
        _ => Err(ParseError::InvalidRequestMethod(show(method))),
    }
}

fn parse_version(version: &[u8]) -> Result<Version, ParseError> {
    match version {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        _ => Err(ParseError::InvalidHTTPVersion(show(version))),
    }
}
