//! What the parsed fields mean for the connection: body framing (RFC 9112 §6), persistence
//! (§9.3), Expect (RFC 9110 §10.1.1), Host (RFC 9112 §3.2) and fields that may appear only once.
//! Any ambiguity is an error, because a front proxy that frames differently is how requests get
//! smuggled. Judges parsed fields only: never splits lines.
use super::fields::{quoted_len, skip_bws, token_len, trim_ows};
use super::request::{show, BodyFraming, ParseError, Version};
use super::target::valid_host_port;

type Fields = [(String, Vec<u8>)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Semantics {
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// `permit_missing_host`: see `HeadRules`. Host is judged last, so a request that is wrong in
/// several ways gets the status of its framing or expectation first, as gunicorn gives it.
pub(crate) fn analyze(
    version: Version,
    fields: &Fields,
    permit_missing_host: bool,
) -> Result<Semantics, ParseError> {
    reject_repeated_singletons(fields)?;
    let expect_continue = expects_continue(version, fields)?;
    let framing = body_framing(version, fields)?;
    check_host(version, fields, permit_missing_host)?;
    Ok(Semantics {
        framing,
        keep_alive: persistent(version, fields),
        expect_continue,
    })
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host, or any request whose Host is not
/// `uri-host [ ":" port ]`, is refused with 400 (a second Host already was). One syntax with
/// absolute-form targets (`valid_host_port`, which wants a host), plus the empty value of RFC
/// 9110 §7.2, which is what a proxy forwards for an HTTP/1.0 client that sent no Host (caddy
/// does, tests/test_proxy_differential.py).
fn check_host(version: Version, fields: &Fields, permit_missing: bool) -> Result<(), ParseError> {
    match values(fields, "HOST").next() {
        None if version == Version::Http11 && !permit_missing => Err(ParseError::InvalidHeader(
            "HTTP/1.1 request without Host".into(),
        )),
        None | Some([]) => Ok(()),
        Some(value) => match valid_host_port(value, false) {
            Some(()) => Ok(()),
            None => Err(ParseError::InvalidHeader(format!("Host {}", show(value)))),
        },
    }
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
        .map(trim_ows)
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

fn body_framing(version: Version, fields: &Fields) -> Result<BodyFraming, ParseError> {
    let chunked = transfer_coding(fields)?;
    let length = content_length(fields)?;
    match (chunked, length) {
        (false, None) => Ok(BodyFraming::Empty),
        (false, Some(length)) => Ok(BodyFraming::Length(length)),
        (true, _) if version == Version::Http10 => Err(ParseError::InvalidHeader(
            "Transfer-Encoding in an HTTP/1.0 request".into(),
        )),
        (true, Some(_)) => Err(ParseError::InvalidHeader(
            "both Content-Length and Transfer-Encoding".into(),
        )),
        (true, None) => Ok(BodyFraming::Chunked),
    }
}

/// False without Transfer-Encoding; true when its codings, over all its field lines, are exactly
/// one `chunked`. A body under any other coding cannot go to a WSGI app, which reads the body
/// as sent (waitress CVE-2019-16786 passed gzip-coded bytes on as the body): 501. 400 when the
/// field does not frame a body at all: a coding that is not `token *( ";" parameter )`, no
/// coding, `chunked` twice (RFC 9112 §7.1) or not last (§6.3: "MUST respond with 400").
fn transfer_coding(fields: &Fields) -> Result<bool, ParseError> {
    if values(fields, "TRANSFER-ENCODING").next().is_none() {
        return Ok(false);
    }
    let invalid = |why: String| {
        Err(ParseError::InvalidHeader(format!(
            "Transfer-Encoding {why}"
        )))
    };
    let (mut chunked, mut other, mut count) = (false, None, 0);
    for coding in list(fields, "TRANSFER-ENCODING") {
        let name = &coding[..token_len(coding)];
        if name.is_empty() || !valid_parameters(&coding[name.len()..]) {
            return invalid(format!("coding {} is malformed", show(coding)));
        }
        if chunked {
            return invalid(format!("coding {} after chunked", show(coding)));
        }
        chunked = name.eq_ignore_ascii_case(b"chunked");
        if chunked && name.len() < coding.len() {
            return invalid("chunked with parameters".into());
        }
        if !chunked {
            other.get_or_insert(coding);
        }
        count += 1;
    }
    match (count, chunked, other) {
        (0, _, _) => invalid("with no coding".into()),
        (_, false, _) => invalid("does not end in chunked".into()),
        (_, true, Some(coding)) => Err(ParseError::UnsupportedTransferCoding(show(coding))),
        (_, true, None) => Ok(true),
    }
}

/// `*( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )`: transfer-parameters (RFC 9112
/// §7).
fn valid_parameters(mut rest: &[u8]) -> bool {
    while !rest.is_empty() {
        let Some(parameter) = skip_bws(rest).strip_prefix(b";") else {
            return false;
        };
        let parameter = skip_bws(parameter);
        let name = token_len(parameter);
        let Some(value) = skip_bws(&parameter[name..]).strip_prefix(b"=") else {
            return false;
        };
        let value = skip_bws(value);
        let len = match value.first() {
            Some(b'"') => quoted_len(value).unwrap_or(0),
            _ => token_len(value),
        };
        if name == 0 || len == 0 {
            return false;
        }
        rest = &value[len..];
    }
    true
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
