//! `parse_head`: one request head (optional PROXY preamble, request line, fields) from the start
//! of a buffer, strictly per RFC 9112 and gunicorn 27. A pure function over bytes: no I/O, no
//! state between calls, so the verdict is the same however the bytes arrived.
use super::fields::{classify, next_line, FieldLimits, FieldLine, Line};
use super::framing::analyze;
use super::proxy::{parse_preamble, refuse_preamble, Preamble};
use super::request::{show, HeadRules, Limits, ParseError, ProxyPolicy, RequestHead};
use super::request_line::{parse_request_line, RequestLine};

type Headers = Vec<(String, Vec<u8>)>;

/// Parses one request head from the start of `buf`. `Ok(None)`: more bytes are needed, and
/// nothing seen so far is wrong or over a limit. `Ok(Some((head, n)))`: the head and the bytes
/// it used, including the blank line and one leading empty line (RFC 9112 §2.2).
/// `proxy` is `Off` for every request but a connection's first. Limits are enforced on partial
/// lines too, so while this returns `Ok(None)` the buffer never exceeds about request_line +
/// fields * field_size bytes (plus a PROXY preamble, at most 64 KiB).
pub fn parse_head(
    buf: &[u8],
    rules: &HeadRules,
    proxy: ProxyPolicy,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let mut head = RequestHead::default();
    let used = parse_head_into(buf, rules, proxy, &mut head)?;
    Ok(used.map(|used| (head, used)))
}

/// `parse_head` into a head that already exists (the connection's previous one), reusing its
/// strings and vectors so a request costs no allocation. Returns the bytes used; `head` is
/// entirely rewritten when that is `Ok(Some(_))`, and meaningless otherwise.
pub fn parse_head_into(
    buf: &[u8],
    rules: &HeadRules,
    proxy: ProxyPolicy,
    head: &mut RequestHead,
) -> Result<Option<usize>, ParseError> {
    let preamble = match proxy {
        ProxyPolicy::Off => Preamble::Absent,
        ProxyPolicy::Accept => parse_preamble(buf)?,
        ProxyPolicy::Refuse => refuse_preamble(buf)?,
    };
    let (proxy, start) = match preamble {
        Preamble::NeedMore => return Ok(None),
        Preamble::Absent => (None, 0),
        Preamble::Found(info, used) => (info, used),
    };
    let limits = &rules.limits;
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
    let fields = Fields {
        headers: Refill::new(&mut head.headers),
        underscored: Refill::new(&mut head.underscored),
    };
    let Some(used) = field_section(&buf[fields_start..], limits, fields)? else {
        return Ok(None);
    };
    let semantics = analyze(line.version, &head.headers, rules.permit_missing_host)?;
    set_line(head, &line);
    head.framing = semantics.framing;
    head.keep_alive = semantics.keep_alive;
    head.expect_continue = semantics.expect_continue;
    head.proxy = proxy;
    Ok(Some(fields_start + used))
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

/// A list of fields written over the entries of an old one, whose strings keep their memory.
struct Refill<'a> {
    list: &'a mut Headers,
    len: usize,
}

impl<'a> Refill<'a> {
    fn new(list: &'a mut Headers) -> Self {
        Refill { list, len: 0 }
    }

    /// Appends a field, its name upper-cased.
    fn push(&mut self, name: &str, value: &[u8]) {
        if self.len == self.list.len() {
            self.list.push(Default::default());
        }
        let (old_name, old_value) = &mut self.list[self.len];
        set(old_name, name);
        old_name.make_ascii_uppercase();
        old_value.clear();
        old_value.extend_from_slice(value);
        self.len += 1;
    }

    fn finish(self) {
        self.list.truncate(self.len);
    }
}

/// The field lines of a head, split: the headers proper, and those with '_' in their name.
struct Fields<'a> {
    headers: Refill<'a>,
    underscored: Refill<'a>,
}

/// The fields up to and including the empty line. Every field line counts against the limits,
/// also those dropped for having '_' in their name.
fn field_section(
    buf: &[u8],
    limits: &Limits,
    mut fields: Fields<'_>,
) -> Result<Option<usize>, ParseError> {
    let limits = FieldLimits::from(limits);
    let (mut seen, mut pos) = (0, 0);
    loop {
        match classify(&next_line(&buf[pos..], limits.line_max), seen, &limits)? {
            None => return Ok(None),
            Some(FieldLine::End(used)) => {
                fields.headers.finish();
                fields.underscored.finish();
                return Ok(Some(pos + used));
            }
            Some(FieldLine::Field(name, value, used)) => {
                // gunicorn's header_map=drop: CONTENT_LENGTH and CONTENT-LENGTH would both
                // become HTTP_CONTENT_LENGTH in the WSGI environ. They are kept aside for the
                // forwarder_headers a trusted proxy may send (SCRIPT_NAME, PATH_INFO).
                if name.as_bytes().contains(&b'_') {
                    fields.underscored.push(name, value);
                } else {
                    fields.headers.push(name, value);
                }
                seen += 1;
                pos += used;
            }
        }
    }
}

fn set(field: &mut String, value: &str) {
    field.clear();
    field.push_str(value);
}

fn set_line(head: &mut RequestHead, line: &RequestLine<'_>) {
    set(&mut head.method, line.method);
    set(&mut head.target, line.target);
    set(&mut head.path, line.parts.path);
    set(&mut head.query, line.parts.query);
    set(&mut head.fragment, line.parts.fragment);
    head.version = line.version;
    match (line.parts.host, &mut head.host_from_target) {
        (Some(host), Some(old)) => set(old, host),
        (host, old) => *old = host.map(str::to_string),
    }
}
