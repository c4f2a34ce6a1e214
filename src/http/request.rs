//! The parsed request head, the rules it is judged by (limits, Host, PROXY trust) and the parse
//! errors with their HTTP status. Plain data: no parsing and no I/O here.
use std::net::SocketAddr;

use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFraming {
    /// Neither Content-Length nor Transfer-Encoding: a request then has no body.
    Empty,
    Length(u64),
    Chunked,
}

/// The client and proxy addresses announced by a PROXY protocol v1 or v2 preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// The request-target exactly as sent (RAW_URI).
    pub target: String,
    /// Percent-encoded path of the target; "*" for asterisk-form, the URI's path for absolute-form.
    pub path: String,
    pub query: String,
    pub fragment: String,
    /// The authority (without userinfo) of an absolute-form target; it overrides Host (RFC 9112 §3.2.2).
    pub host_from_target: Option<String>,
    pub version: Version,
    /// Upper-cased names, values trimmed of SP/HTAB, in arrival order; names with '_' are dropped.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The fields whose names contain '_', kept out of `headers` (gunicorn's header_map=drop);
    /// only a trusted proxy's forwarder_headers are ever read from here.
    pub underscored: Vec<(String, Vec<u8>)>,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub proxy: Option<ProxyInfo>,
}

impl Default for RequestHead {
    /// An empty head for `parse_head_into` to fill.
    fn default() -> Self {
        RequestHead {
            method: String::new(),
            target: String::new(),
            path: String::new(),
            query: String::new(),
            fragment: String::new(),
            host_from_target: None,
            version: Version::Http11,
            headers: Vec::new(),
            underscored: Vec::new(),
            framing: BodyFraming::Empty,
            keep_alive: false,
            expect_continue: false,
            proxy: None,
        }
    }
}

impl RequestHead {
    /// The value of the first field named `upper_name` (which must be upper case).
    pub fn header(&self, upper_name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(name, _)| name == upper_name)
            .map(|(_, value)| value.as_slice())
    }
}

/// gunicorn's limit_request_line, limit_request_fields and limit_request_field_size as the
/// validated settings resolved them (config/validate.rs is the one place that does): `usize::MAX`
/// means unlimited. `field_size` counts the field line with its CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
}

impl Default for Limits {
    /// gunicorn's defaults, as the default settings resolve them (a unit test holds the two
    /// together): what chunked trailers are checked against.
    fn default() -> Limits {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
        }
    }
}

/// Everything a request head is judged by besides its syntax, fixed for the worker's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadRules {
    pub limits: Limits,
    /// permit_missing_host: an HTTP/1.1 request without Host is served instead of refused with
    /// 400 (RFC 9112 §3.2). A repeated or malformed Host is refused either way.
    pub permit_missing_host: bool,
}

impl HeadRules {
    /// The rules of validated settings: the only way a worker (or a test) gets them.
    pub fn of(settings: &Settings) -> HeadRules {
        HeadRules {
            limits: Limits {
                request_line: settings.limit_request_line,
                fields: settings.limit_request_fields,
                field_size: settings.limit_request_field_size,
            },
            permit_missing_host: settings.permit_missing_host,
        }
    }
}

/// What a PROXY protocol preamble at the start of a connection means (gunicorn's proxy_protocol
/// and proxy_allow_ips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPolicy {
    /// PROXY protocol is off, or this is not the connection's first request: a preamble is just
    /// an invalid request line.
    Off,
    /// The peer is in proxy_allow_ips: a preamble, if any, names the client.
    Accept,
    /// The peer is not in proxy_allow_ips: a preamble is refused with 403 (gunicorn's
    /// ForbiddenProxyRequest); a request without one is served.
    Refuse,
}

/// One variant per gunicorn error class a client can trigger; the text is for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid request line: {0}")]
    InvalidRequestLine(String),
    #[error("invalid request method: {0}")]
    InvalidRequestMethod(String),
    #[error("invalid HTTP version: {0}")]
    InvalidHTTPVersion(String),
    /// A method we refuse to serve although it is well formed (CONNECT: we never tunnel).
    #[error("unsupported method: {0}")]
    UnsupportedMethod(String),
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    #[error("invalid header name: {0}")]
    InvalidHeaderName(String),
    #[error("obsolete line folding in header: {0}")]
    ObsoleteFolding(String),
    #[error("request line too long: {0}")]
    LimitRequestLine(String),
    #[error("request header fields too large: {0}")]
    LimitRequestHeaders(String),
    #[error("unsupported transfer coding: {0}")]
    UnsupportedTransferCoding(String),
    #[error("expectation failed: {0}")]
    ExpectationFailed(String),
    #[error("invalid chunk size: {0}")]
    InvalidChunkSize(String),
    #[error("chunk missing terminator: {0}")]
    ChunkMissingTerminator(String),
    #[error("invalid chunk extension: {0}")]
    InvalidChunkExtension(String),
    #[error("invalid PROXY protocol preamble: {0}")]
    InvalidProxyLine(String),
    #[error("PROXY protocol preamble not allowed: {0}")]
    ForbiddenProxyRequest(String),
}

impl ParseError {
    /// The status gunicorn 27 answers with (workers/base.py handle_error).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::LimitRequestLine(_) => 414,
            ParseError::LimitRequestHeaders(_) => 431,
            ParseError::ExpectationFailed(_) => 417,
            ParseError::ForbiddenProxyRequest(_) => 403,
            ParseError::UnsupportedTransferCoding(_) | ParseError::UnsupportedMethod(_) => 501,
            _ => 400,
        }
    }
}

/// Bytes from the wire, shortened and made printable for an error message.
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let mut text: String = bytes[..bytes.len().min(MAX)].escape_ascii().to_string();
    if bytes.len() > MAX {
        text.push_str("...");
    }
    text
}
