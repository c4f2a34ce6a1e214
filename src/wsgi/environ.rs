//! The WSGI environ of one request, as gunicorn builds it: a per-worker template with the static
//! keys, copied per request and filled from the parsed head. No I/O.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::environ_strings::{address_strings, header_item, next_request};
use super::file_wrapper::FileWrapper;
use super::proxy::claimed_scheme;
use super::streams::InputStream;
use crate::http::TrustedPeers;
use crate::http::{Local, Peer, RequestHead, Version};

/// What the environ needs from the settings, fixed for the worker's life.
#[derive(Debug, Clone)]
pub struct EnvironSettings {
    pub multithread: bool,
    pub multiprocess: bool,
    /// From the SCRIPT_NAME environment variable of the server, as in gunicorn.
    pub script_name: String,
    pub trusted: TrustedPeers,
    /// Header names a trusted peer may set in the environ as they are.
    pub forwarder_headers: Vec<String>,
    pub secure_scheme_headers: Vec<(String, String)>,
    /// The worker's listener when it has only one: its SERVER_NAME and SERVER_PORT are then in
    /// the template instead of set per request.
    pub only_listener: Option<Local>,
}

/// A request the environ cannot describe: answered 400 before the app runs.
#[derive(Debug)]
pub enum EnvironError {
    BadRequest(&'static str),
    Python(PyErr),
}

impl From<PyErr> for EnvironError {
    fn from(error: PyErr) -> Self {
        EnvironError::Python(error)
    }
}

/// Keys `build` sets on every request, whatever the request.
const PER_REQUEST_KEYS: [&str; 6] = [
    "RAW_URI",
    "PATH_INFO",
    "wsgi.input",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
];

/// Keys nearly every request sets (not a request over a Unix socket, not one without Host):
/// `build` replaces them, or removes them when the request has none.
const USUAL_KEYS: [&str; 2] = ["REMOTE_PORT", "HTTP_HOST"];

/// Keys with the value most requests have; `build` sets them only when the request differs.
const USUAL_VALUES: [(&str, &str); 4] = [
    ("REQUEST_METHOD", "GET"),
    ("QUERY_STRING", ""),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("wsgi.url_scheme", "http"),
];

pub struct EnvironTemplate {
    base: Py<PyDict>,
    settings: EnvironSettings,
}

impl EnvironTemplate {
    pub fn new(py: Python<'_>, settings: EnvironSettings) -> PyResult<Self> {
        // The keys every request sets are there already (interned, as `build` uses them), so a
        // copy only has their values replaced: no insertion, no resize of its table.
        let base = PyDict::new(py);
        for key in PER_REQUEST_KEYS.into_iter().chain(USUAL_KEYS) {
            base.set_item(PyString::intern(py, key), py.None())?;
        }
        for (key, value) in USUAL_VALUES {
            base.set_item(PyString::intern(py, key), PyString::intern(py, value))?;
        }
        if let Some(local) = &settings.only_listener {
            set_server(py, &base, local, "http")?;
        }
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.multithread", settings.multithread)?;
        base.set_item("wsgi.multiprocess", settings.multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("wsgi.errors", py.import("sys")?.getattr("stderr")?)?;
        base.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        base.set_item("SCRIPT_NAME", &settings.script_name)?;
        base.set_item(
            "SERVER_SOFTWARE",
            concat!("rgunicorn/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(EnvironTemplate {
            base: base.unbind(),
            settings,
        })
    }

    pub fn build<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        peer: &Peer,
        local: &Local,
        input: Py<InputStream>,
    ) -> Result<Bound<'py, PyDict>, EnvironError> {
        let env = self.base.bind(py).copy()?;
        let scheme = self.url_scheme(head, peer)?;
        let forwarded = self.forwarded(head, peer);
        let script_name = match forwarded.iter().find(|(name, _)| name == "SCRIPT_NAME") {
            Some((_, value)) => String::from_utf8_lossy(value),
            None => self.settings.script_name.as_str().into(),
        };
        let path = match script_name.as_ref() {
            "" => head.path.as_str(),
            prefix => head
                .path
                .strip_prefix(prefix)
                .ok_or(EnvironError::BadRequest("request path outside SCRIPT_NAME"))?,
        };
        if head.method != "GET" {
            env.set_item(intern!(py, "REQUEST_METHOD"), method(py, &head.method))?;
        }
        if !head.query.is_empty() {
            env.set_item(intern!(py, "QUERY_STRING"), head.query.as_str())?;
        }
        env.set_item(intern!(py, "RAW_URI"), head.target.as_str())?;
        env.set_item(intern!(py, "PATH_INFO"), latin1(py, &percent_decode(path)))?;
        if head.version == Version::Http10 {
            env.set_item(intern!(py, "SERVER_PROTOCOL"), intern!(py, "HTTP/1.0"))?;
        }
        if scheme == "https" {
            env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
        }
        env.set_item(intern!(py, "wsgi.input"), input)?;
        if scheme != "http" || self.settings.only_listener.as_ref() != Some(local) {
            set_server(py, &env, local, scheme)?;
        }
        set_remote(py, &env, head, peer)?;
        set_headers(py, &env, head)?;
        for (name, value) in forwarded {
            env.set_item(name.as_str(), latin1(py, value))?;
        }
        Ok(env)
    }

    /// The forwarder_headers (gunicorn's: SCRIPT_NAME, PATH_INFO, ...) sent by a trusted peer;
    /// from anyone else they are dropped like every other name with '_'.
    fn forwarded<'h>(&self, head: &'h RequestHead, peer: &Peer) -> Vec<&'h (String, Vec<u8>)> {
        if head.underscored.is_empty() || !self.settings.trusted.trusts(peer) {
            return Vec::new();
        }
        let allowed = |name: &String| self.settings.forwarder_headers.contains(name);
        head.underscored
            .iter()
            .filter(|(name, _)| allowed(name))
            .collect()
    }

    fn url_scheme(&self, head: &RequestHead, peer: &Peer) -> Result<&'static str, EnvironError> {
        if !self.settings.trusted.trusts(peer) {
            return Ok("http");
        }
        match claimed_scheme(head, &self.settings.secure_scheme_headers) {
            Ok(claimed) => Ok(claimed.unwrap_or("http")),
            Err(()) => Err(EnvironError::BadRequest("contradictory scheme headers")),
        }
    }
}

/// The common methods as interned strings (no new object per request); GET is in the template.
fn method<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        "PUT" => intern!(py, "PUT").clone(),
        "DELETE" => intern!(py, "DELETE").clone(),
        "PATCH" => intern!(py, "PATCH").clone(),
        "OPTIONS" => intern!(py, "OPTIONS").clone(),
        other => PyString::new(py, other),
    }
}

fn set_server(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    local: &Local,
    scheme: &str,
) -> PyResult<()> {
    let (name, port) = match local {
        Local::Tcp(addr) => address_strings(py, *addr),
        Local::Unix(path) => {
            let port = if scheme == "https" { "443" } else { "80" };
            (PyString::new(py, path), PyString::new(py, port))
        }
    };
    env.set_item(intern!(py, "SERVER_NAME"), name)?;
    env.set_item(intern!(py, "SERVER_PORT"), port)
}

/// The socket peer, or the client named by a PROXY protocol header.
fn set_remote(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    head: &RequestHead,
    peer: &Peer,
) -> PyResult<()> {
    let addr = match (&head.proxy, peer) {
        (Some(proxy), _) => Some(proxy.source),
        (None, Peer::Tcp(addr)) => Some(*addr),
        (None, Peer::Unix) => None,
    };
    match addr {
        Some(addr) => {
            let (ip, port) = address_strings(py, addr);
            env.set_item(intern!(py, "REMOTE_ADDR"), ip)?;
            env.set_item(intern!(py, "REMOTE_PORT"), port)
        }
        None => {
            env.del_item(intern!(py, "REMOTE_PORT"))?;
            env.set_item(intern!(py, "REMOTE_ADDR"), "")
        }
    }
}

fn set_headers(py: Python<'_>, env: &Bound<'_, PyDict>, head: &RequestHead) -> PyResult<()> {
    let request = next_request();
    let mut host = false;
    for (name, value) in &head.headers {
        host |= name == "HOST";
        let (key, value, repeated) = header_item(py, request, name, value);
        let previous = match repeated {
            true => env.get_item(&key)?,
            false => None,
        };
        match previous {
            Some(previous) => {
                let joined = format!("{},{}", previous.extract::<String>()?, value.to_str()?);
                env.set_item(key, joined)?;
            }
            None => env.set_item(key, value)?,
        }
    }
    // RFC 9112 section 3.2.2: with an absolute-form target the URI's authority is the host,
    // whatever the Host field says.
    match &head.host_from_target {
        Some(host) => env.set_item(intern!(py, "HTTP_HOST"), host.as_str()),
        None if !host => env.del_item(intern!(py, "HTTP_HOST")),
        None => Ok(()),
    }
}

/// WSGI strings carry bytes as latin-1 code points, one char per byte.
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.is_ascii() => PyString::new(py, text),
        _ => PyString::new(
            py,
            &bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        ),
    }
}

/// Percent-decodes like urllib.parse.unquote_to_bytes: malformed escapes stay as they are.
pub fn percent_decode(text: &str) -> std::borrow::Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return bytes.into();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_matches_unquote_to_bytes() {
        assert_eq!(*percent_decode("/a%20b"), *b"/a b");
        assert_eq!(*percent_decode("/%E2%82%AC"), [b'/', 0xE2, 0x82, 0xAC]);
        assert_eq!(*percent_decode("/bad%zz%4"), *b"/bad%zz%4");
        assert_eq!(*percent_decode("/plus+stays"), *b"/plus+stays");
        assert_eq!(*percent_decode("%2f"), *b"/");
        assert_eq!(*percent_decode("%+1"), *b"%+1");
    }
}
