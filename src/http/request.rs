//! TEMP stub until the http branch lands.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub source: std::net::SocketAddr,
    pub destination: std::net::SocketAddr,
}
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
    pub host_from_target: Option<String>,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub proxy: Option<ProxyInfo>,
}
impl RequestHead {
    pub fn header(&self, upper_name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == upper_name)
            .map(|(_, v)| v.as_slice())
    }
}
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    InvalidRequestLine(&'static str),
    InvalidChunkSize(&'static str),
}
impl ParseError {
    pub fn status(&self) -> u16 {
        400
    }
}
impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
