//! The PROXY protocol preamble, v1 (text) and v2 (binary), as gunicorn's `proxy_protocol = auto`
//! reads it. Parses only: whether this peer may send one is the caller's decision (`ProxyPolicy`).
use super::fields::{next_line, Line};
use super::request::{show, ParseError, ProxyInfo};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line the specification allows, without its CRLF.
const V1_MAX_LINE: usize = 105;

#[derive(Debug, PartialEq, Eq)]
pub enum Preamble {
    NeedMore,
    Absent,
    /// The addresses (none for a LOCAL or UNSPEC v2 header) and the bytes the preamble used.
    Found(Option<ProxyInfo>, usize),
}

/// The preamble at the start of `buf`, from a peer allowed to send one.
pub fn parse_preamble(buf: &[u8]) -> Result<Preamble, ParseError> {
    match announced(buf) {
        Some(Version::One) => v1(buf),
        Some(Version::Two) => v2(buf),
        None if could_be_announced(buf) => Ok(Preamble::NeedMore),
        None => Ok(Preamble::Absent),
    }
}

/// The start of a connection from a peer not allowed to send a preamble: one is refused as soon
/// as its signature is recognised, before a byte of it is parsed (gunicorn's order), so its
/// addresses can never be taken for the client's.
pub fn refuse_preamble(buf: &[u8]) -> Result<Preamble, ParseError> {
    match announced(buf) {
        Some(version) => Err(ParseError::ForbiddenProxyRequest(format!(
            "a PROXY v{} preamble from a peer not in proxy_allow_ips",
            version as u8
        ))),
        None if could_be_announced(buf) => Ok(Preamble::NeedMore),
        None => Ok(Preamble::Absent),
    }
}

#[derive(Debug, Clone, Copy)]
enum Version {
    One = 1,
    Two = 2,
}

fn announced(buf: &[u8]) -> Option<Version> {
    if buf.starts_with(V2_SIGNATURE) {
        Some(Version::Two)
    } else if buf.starts_with(V1_PREFIX) {
        Some(Version::One)
    } else {
        None
    }
}

/// Whether `buf` is a proper prefix of a signature, so more bytes must decide.
fn could_be_announced(buf: &[u8]) -> bool {
    let could_become = |prefix: &[u8]| buf.len() < prefix.len() && prefix.starts_with(buf);
    could_become(V2_SIGNATURE) || could_become(V1_PREFIX)
}

fn invalid(what: &str, bytes: &[u8]) -> ParseError {
    ParseError::InvalidProxyLine(format!("{what}: {}", show(bytes)))
}

/// `PROXY TCP4|TCP6 source destination source-port destination-port CRLF`
fn v1(buf: &[u8]) -> Result<Preamble, ParseError> {
    let line = next_line(buf, V1_MAX_LINE);
    if line.too_long(V1_MAX_LINE) {
        let detail = format!("v1 line longer than {V1_MAX_LINE} bytes");
        return Err(ParseError::InvalidProxyLine(detail));
    }
    match line {
        Line::Partial(_) => Ok(Preamble::NeedMore),
        Line::BareLf(content) => Err(invalid("v1 line ends in a bare LF", content)),
        Line::Done(content, used) => v1_addresses(content)
            .map(|info| Preamble::Found(Some(info), used))
            .ok_or_else(|| invalid("v1", content)),
    }
}

fn v1_addresses(line: &[u8]) -> Option<ProxyInfo> {
    let text = std::str::from_utf8(line).ok()?;
    let bits: Vec<&str> = text.split(' ').collect();
    let [_, protocol, source, destination, source_port, destination_port] = bits[..] else {
        return None;
    };
    let (source, destination): (IpAddr, IpAddr) = match protocol {
        "TCP4" => (
            source.parse::<Ipv4Addr>().ok()?.into(),
            destination.parse::<Ipv4Addr>().ok()?.into(),
        ),
        "TCP6" => (
            source.parse::<Ipv6Addr>().ok()?.into(),
            destination.parse::<Ipv6Addr>().ok()?.into(),
        ),
        _ => return None,
    };
    Some(ProxyInfo {
        source: SocketAddr::new(source, v1_port(source_port)?),
        destination: SocketAddr::new(destination, v1_port(destination_port)?),
    })
}

fn v1_port(text: &str) -> Option<u16> {
    let digits = (1..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// 12-byte signature, version/command, family/protocol, 16-bit length, addresses and TLVs.
fn v2(buf: &[u8]) -> Result<Preamble, ParseError> {
    let Some(header) = buf.get(..16) else {
        return Ok(Preamble::NeedMore);
    };
    let (version_command, family_protocol) = (header[12], header[13]);
    let used = 16 + usize::from(u16::from_be_bytes([header[14], header[15]]));
    if version_command >> 4 != 2 || version_command & 0x0f > 1 {
        return Err(invalid("v2 version/command", &header[12..13]));
    }
    let Some(addresses) = buf.get(16..used) else {
        return Ok(Preamble::NeedMore);
    };
    // LOCAL: the proxy's own connection (a health check); there is no client to report.
    if version_command & 0x0f == 0 {
        return Ok(Preamble::Found(None, used));
    }
    if family_protocol & 0x0f != 1 {
        return Err(invalid("v2 transport is not TCP", &header[13..14]));
    }
    let info = match family_protocol >> 4 {
        0 => None,
        1 => Some(v2_addresses::<4>(addresses)?),
        2 => Some(v2_addresses::<16>(addresses)?),
        _ => return Err(invalid("v2 address family", &header[13..14])),
    };
    Ok(Preamble::Found(info, used))
}

/// Source address, destination address (N bytes each), then the two ports, big-endian.
fn v2_addresses<const N: usize>(data: &[u8]) -> Result<ProxyInfo, ParseError> {
    let short = || invalid("v2 address block too short", data);
    let block = data.get(..2 * N + 4).ok_or_else(short)?;
    let ip = |bytes: &[u8]| -> IpAddr {
        match <[u8; 16]>::try_from(bytes) {
            Ok(v6) => Ipv6Addr::from(v6).into(),
            Err(_) => Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into(),
        }
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    Ok(ProxyInfo {
        source: SocketAddr::new(ip(&block[..N]), port(2 * N)),
        destination: SocketAddr::new(ip(&block[N..2 * N]), port(2 * N + 2)),
    })
}
