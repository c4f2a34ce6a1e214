//! The request line of RFC 9112 §3: `method SP request-target SP HTTP-version`, with gunicorn's
//! method restrictions. Gets one complete line without its CRLF; never looks at fields.
use super::fields::is_token;
use super::request::{show, ParseError, Version};
use super::target::{parse_target, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLine {
    pub method: String,
    pub target: String,
    pub parts: Target,
    pub version: Version,
}

pub(crate) fn parse_request_line(line: &[u8]) -> Result<RequestLine, ParseError> {
    // Split at the first two spaces only, as gunicorn does: extra spaces end up in the target
    // (empty, so invalid) or in the version (so invalid).
    let mut bits = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (bits.next(), bits.next(), bits.next())
    else {
        return Err(ParseError::InvalidRequestLine(show(line)));
    };
    check_method(method)?;
    let method = String::from_utf8_lossy(method).into_owned();
    let parts = parse_target(&method, target)?;
    let version = parse_version(version)?;
    Ok(RequestLine {
        method,
        target: String::from_utf8_lossy(target).into_owned(),
        parts,
        version,
    })
}

/// A token of 3 to 20 bytes without lower case letters or '#': gunicorn's default, which every
/// IANA-registered method passes and which keeps garbage and case tricks out.
fn check_method(method: &[u8]) -> Result<(), ParseError> {
    let conventional = (3..=20).contains(&method.len())
        && is_token(method)
        && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#');
    match conventional {
        true => Ok(()),
        false => Err(ParseError::InvalidRequestMethod(show(method))),
    }
}

fn parse_version(version: &[u8]) -> Result<Version, ParseError> {
    match version {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        _ => Err(ParseError::InvalidHTTPVersion(show(version))),
    }
}
