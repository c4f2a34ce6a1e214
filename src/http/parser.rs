//! `parse_head`: one request head (optional PROXY preamble, request line, fields) from the start
//! of a buffer, strictly per RFC 9112 and gunicorn 27. A pure function over bytes: no I/O, no
//! state between calls, so the verdict is the same however the bytes arrived.
use super::fields::{classify, next_line, FieldLimits, FieldLine, Line};
use super::framing::analyze;
use super::proxy::{parse_preamble, Preamble};
use super::request::{show, Limits, ParseError, ProxyInfo, RequestHead};
use super::request_line::{parse_request_line, RequestLine};

type Headers = Vec<(String, Vec<u8>)>;

/// Parses one request head from the start of `buf`. `Ok(None)`: more bytes are needed, and
/// nothing seen so far is wrong or over a limit. `Ok(Some((head, n)))`: the head and the bytes
/// it used, including the blank line and one leading empty line (RFC 9112 §2.2).
/// `proxy_protocol` is true only for the first request of a connection from a trusted proxy.
/// Limits are enforced on partial lines too, so while this returns `Ok(None)` the buffer never
/// exceeds about request_line + fields * field_size bytes (plus a PROXY preamble, at most 64 KiB).
pub fn parse_head(
    buf: &[u8],
    limits: &Limits,
    proxy_protocol: bool,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let (proxy, start) = match proxy_protocol {
        false => (None, 0),
        true => match parse_preamble(buf)? {
            Preamble::NeedMore => return Ok(None),
            Preamble::Absent => (None, 0),
            Preamble::Found(info, used) => (info, used),
        },
    };
    let Some((line, used)) = request_line(&buf[start..], limits.request_line)? else {
        return Ok(None);
    };
    let line = parse_request_line(line)?;
    // A front proxy that saw a 2xx to CONNECT would relay raw bytes we would then read as
    // requests; gunicorn passes CONNECT to the app, we refuse it outright.
    if line.method == "CONNECT" {
        return Err(ParseError::UnsupportedMethod(
            "CONNECT: this server does not tunnel".into(),
        ));
    }
    let fields_start = start + used;
    let Some((fields, used)) = field_section(&buf[fields_start..], limits)? else {
        return Ok(None);
    };
    let head = build(line, fields, proxy)?;
    Ok(Some((head, fields_start + used)))
}

/// The request line without its CRLF, and the bytes used, skipping at most one empty line
/// before it (a second one is an empty, hence invalid, request line).
fn request_line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let mut skipped = 0;
    loop {
        let line = next_line(&buf[skipped..], max);
        if line.too_long(max) {
            let detail = format!("longer than {max} bytes");
            return Err(ParseError::LimitRequestLine(detail));
        }
        match line {
            Line::Partial(_) => return Ok(None),
            Line::BareLf(content) => {
                let detail = format!("bare LF after {}", show(content));
                return Err(ParseError::InvalidRequestLine(detail));
            }
            Line::Done([], used) if skipped == 0 => skipped = used,
            Line::Done(content, used) => return Ok(Some((content, skipped + used))),
        }
    }
}

/// The fields up to and including the empty line. Every field line counts against the limits,
/// also those dropped for having '_' in their name.
/// The field lines of a head, split: the headers proper, and those with '_' in their name.
#[derive(Default)]
struct Fields {
    headers: Headers,
    underscored: Headers,
}

fn field_section(buf: &[u8], limits: &Limits) -> Result<Option<(Fields, usize)>, ParseError> {
    let limits = FieldLimits::from(limits);
    let (mut fields, mut seen, mut pos) = (Fields::default(), 0, 0);
    loop {
        match classify(&next_line(&buf[pos..], limits.line_max), seen, &limits)? {
            None => return Ok(None),
            Some(FieldLine::End(used)) => return Ok(Some((fields, pos + used))),
            Some(FieldLine::Field(name, value, used)) => {
                // gunicorn's header_map=drop: CONTENT_LENGTH and CONTENT-LENGTH would both
                // become HTTP_CONTENT_LENGTH in the WSGI environ. They are kept aside for the
                // forwarder_headers a trusted proxy may send (SCRIPT_NAME, PATH_INFO).
                if name.contains('_') {
                    fields.underscored.push((name, value));
                } else {
                    fields.headers.push((name, value));
                }
                seen += 1;
                pos += used;
            }
        }
    }
}

fn build(
    line: RequestLine,
    fields: Fields,
    proxy: Option<ProxyInfo>,
) -> Result<RequestHead, ParseError> {
    let Fields {
        headers,
        underscored,
    } = fields;
    let semantics = analyze(line.version, &headers)?;
    Ok(RequestHead {
        method: line.method,
        target: line.target,
        path: line.parts.path,
        query: line.parts.query,
        fragment: line.parts.fragment,
        host_from_target: line.parts.host,
        version: line.version,
        headers,
        underscored,
        framing: semantics.framing,
        keep_alive: semantics.keep_alive,
        expect_continue: semantics.expect_continue,
        proxy,
    })
}
