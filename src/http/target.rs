//! The request-target of RFC 9112 §3.2 in its four forms, split into path, query and fragment
//! the way gunicorn's urlsplit does. Validates syntax only; it never decodes percent-escapes.
use super::fields::alphanumeric_and;
use super::request::{show, ParseError};
use std::net::Ipv6Addr;

/// A target taken apart; `host` is the authority of an absolute- or authority-form target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub path: &'a str,
    pub query: &'a str,
    pub fragment: &'a str,
    pub host: Option<&'a str>,
}

pub(crate) fn parse_target<'a>(method: &str, raw: &'a [u8]) -> Result<Target<'a>, ParseError> {
    let invalid = || ParseError::InvalidRequestLine(format!("request-target {}", show(raw)));
    // Only visible ASCII: raw UTF-8, NUL or other controls in a target are read differently
    // by different proxies, and gunicorn 27 refuses them too.
    if raw.is_empty() || !raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(invalid());
    }
    let text = std::str::from_utf8(raw).map_err(|_| invalid())?;
    if method == "CONNECT" {
        return authority_form(text).ok_or_else(invalid);
    }
    if text == "*" {
        return match method {
            "OPTIONS" => Ok(split_rest("*", None)),
            _ => Err(invalid()),
        };
    }
    if text.starts_with('/') {
        return Ok(split_rest(text, None));
    }
    absolute_form(text).ok_or_else(invalid)
}

/// Splits what follows the authority like urlsplit: the fragment first, then the query.
fn split_rest<'a>(rest: &'a str, host: Option<&'a str>) -> Target<'a> {
    let (before, fragment) = split_at_byte(rest, b'#');
    let (path, query) = split_at_byte(before, b'?');
    Target {
        path,
        query,
        fragment,
        host,
    }
}

/// The text before the first `delimiter` (an ASCII byte) and the text after it, or all the
/// text and "". A byte search: a target is short, and `str::split_once` sets up a char searcher.
fn split_at_byte(text: &str, delimiter: u8) -> (&str, &str) {
    match text.bytes().position(|b| b == delimiter) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    }
}

/// `scheme "://" authority path-abempty [ "?" query ] [ "#" fragment ]`
fn absolute_form(text: &str) -> Option<Target<'_>> {
    let (scheme, rest) = text.split_once("://")?;
    let mut scheme_bytes = scheme.bytes();
    let scheme_ok = scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    // RFC 9110 §4.2.4 deprecates userinfo; it must not leak into the host we report.
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => uri_chars(userinfo.as_bytes(), b":").then_some(host_port)?,
        None => authority,
    };
    valid_host_port(host_port.as_bytes(), false)?;
    Some(split_rest(rest, Some(host_port)))
}

/// `uri-host ":" port`, the only form CONNECT may use (RFC 9112 §3.2.3).
fn authority_form(text: &str) -> Option<Target<'_>> {
    valid_host_port(text.as_bytes(), true)?;
    Some(Target {
        path: "",
        query: "",
        fragment: "",
        host: Some(text),
    })
}

/// `host [ ":" port ]` with a non-empty host (RFC 9110 §4.2.1 rejects an empty one): the authority
/// of an absolute-form target and the Host field alike.
pub(crate) fn valid_host_port(text: &[u8], port_required: bool) -> Option<()> {
    let (host, port) = match text.strip_prefix(b"[") {
        Some(literal) => {
            let close = literal.iter().position(|&b| b == b']')?;
            let address = std::str::from_utf8(&literal[..close]).ok()?;
            address.parse::<Ipv6Addr>().ok()?;
            match &literal[close + 1..] {
                [] => (None, None),
                after => (None, Some(after.strip_prefix(b":")?)),
            }
        }
        None => match text.iter().position(|&b| b == b':') {
            Some(colon) => (Some(&text[..colon]), Some(&text[colon + 1..])),
            None => (Some(text), None),
        },
    };
    let host_ok = host.is_none_or(|host| !host.is_empty() && uri_chars(host, b""));
    let port_ok = match port {
        Some(port) => valid_port(port),
        None => !port_required,
    };
    (host_ok && port_ok).then_some(())
}

fn valid_port(port: &[u8]) -> bool {
    let digits = (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit);
    digits && port.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 65535
}

/// RFC 3986's unreserved and sub-delims: the bytes a reg-name holds as they are. A table, since
/// the Host of every request goes through it.
const REG_NAME: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");

/// Unreserved, sub-delims and pct-encoded bytes (RFC 3986 reg-name), plus those in `also`.
fn uri_chars(bytes: &[u8], also: &[u8]) -> bool {
    let mut rest = bytes;
    while let [b, after @ ..] = rest {
        rest = after;
        if REG_NAME[usize::from(*b)] || (*b != b'%' && also.contains(b)) {
            continue;
        }
        match after {
            [h, l, ..] if *b == b'%' && h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {}
            _ => return false,
        }
    }
    true
}
