//! TEMP stub until the http branch lands: a lax parser for wiring only.
use super::request::*;
pub fn parse_head(
    buf: &[u8],
    _limits: &Limits,
    _proxy: bool,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::InvalidRequestLine("utf8"))?;
    let mut lines = text.split("\r\n");
    let rl = lines.next().unwrap();
    let mut parts = rl.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts
        .next()
        .ok_or(ParseError::InvalidRequestLine("target"))?
        .to_string();
    let version = match parts.next() {
        Some("HTTP/1.0") => Version::Http10,
        Some("HTTP/1.1") => Version::Http11,
        _ => return Err(ParseError::InvalidRequestLine("version")),
    };
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l
            .split_once(':')
            .ok_or(ParseError::InvalidRequestLine("hdr"))?;
        if n.contains('_') {
            continue;
        }
        headers.push((n.to_ascii_uppercase(), v.trim().as_bytes().to_vec()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let mut framing = BodyFraming::Empty;
    for (n, v) in &headers {
        if n == "CONTENT-LENGTH" {
            framing = BodyFraming::Length(std::str::from_utf8(v).unwrap().parse().unwrap());
        }
        if n == "TRANSFER-ENCODING" {
            framing = BodyFraming::Chunked;
        }
    }
    let conn = headers
        .iter()
        .find(|(n, _)| n == "CONNECTION")
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase());
    let keep_alive = match version {
        Version::Http11 => conn.as_deref() != Some("close"),
        Version::Http10 => conn.as_deref() == Some("keep-alive"),
    };
    let expect_continue = headers
        .iter()
        .any(|(n, v)| n == "EXPECT" && v.eq_ignore_ascii_case(b"100-continue"));
    Ok(Some((
        RequestHead {
            method,
            target,
            path,
            query,
            fragment: String::new(),
            host_from_target: None,
            version,
            headers,
            framing,
            keep_alive,
            expect_continue,
            proxy: None,
        },
        end + 4,
    )))
}
