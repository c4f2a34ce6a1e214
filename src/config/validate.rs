//! Turns the merged `Partial` into `Settings`: applies defaults, checks every value and converts
//! it to its typed form. Pure: every error names the key, the value and what is allowed.
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::modes;
use super::partial::Partial;
use super::{observability, BindSpec, ConfigSource, LogFormat, LogLevel, Settings, WorkerClass};
use crate::{Error, Result};

pub const DEFAULT_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;
pub const DEFAULT_ALLOWED_PEERS: &str = "127.0.0.1,::1";
pub const DEFAULT_SECURE_SCHEME_HEADERS: [(&str, &str); 3] = [
    ("X-FORWARDED-PROTOCOL", "ssl"),
    ("X-FORWARDED-PROTO", "https"),
    ("X-FORWARDED-SSL", "on"),
];
const MAX_REQUEST_LINE: u64 = 8190;
const MAX_HEADER_FIELDS: u64 = 32768;
const DEFAULT_FIELD_SIZE: u64 = 8190;

/// Builds settings from one merged layer; `wsgi_app` may be empty here (`load` decides whether
/// that is an error).
pub fn settings(p: Partial, config_file: Option<ConfigSource>) -> Result<Settings> {
    let threads = at_least_one("threads", p.threads.unwrap_or(1))?;
    let worker_class = p.worker_class.as_deref().unwrap_or("sync").parse()?;
    Ok(Settings {
        wsgi_app: wsgi_app(p.wsgi_app.unwrap_or_default())?,
        config_file,
        hooks: Vec::new(),
        bind: bind(p.bind)?,
        backlog: at_least_one("backlog", p.backlog.unwrap_or(2048))?,
        workers: at_least_one("workers", p.workers.unwrap_or(1))?,
        threads,
        worker_class: match worker_class {
            WorkerClass::Sync if threads > 1 => WorkerClass::Gthread,
            class => class,
        },
        worker_connections: at_least_one(
            "worker_connections",
            p.worker_connections.unwrap_or(1000),
        )?,
        timeout: seconds("timeout", p.timeout.unwrap_or(30.0))?,
        graceful_timeout: seconds("graceful_timeout", p.graceful_timeout.unwrap_or(30.0))?,
        keepalive: seconds("keepalive", p.keepalive.unwrap_or(2.0))?,
        max_requests: p.max_requests.unwrap_or(0),
        max_requests_jitter: p.max_requests_jitter.unwrap_or(0),
        max_worker_memory: p.max_worker_memory.unwrap_or(0),
        preload_app: p.preload_app.unwrap_or(false),
        chdir: p.chdir.map(PathBuf::from),
        pythonpath: non_empty_items(p.pythonpath).map(PathBuf::from).collect(),
        virtualenv: p.virtualenv.map(PathBuf::from),
        raw_env: raw_env(p.raw_env.unwrap_or_default())?,
        accesslog: p.accesslog,
        errorlog: p.errorlog.unwrap_or_else(|| "-".to_owned()),
        loglevel: p.loglevel.as_deref().unwrap_or("info").parse()?,
        access_log_format: p
            .access_log_format
            .unwrap_or_else(|| DEFAULT_ACCESS_LOG_FORMAT.to_owned()),
        log_format: p.log_format.as_deref().unwrap_or("text").parse()?,
        metrics_bind: observability::metrics_bind(p.metrics_bind)?,
        statsd_host: observability::statsd_host(p.statsd_host)?,
        statsd_prefix: observability::statsd_prefix(p.statsd_prefix)?,
        dogstatsd_tags: observability::dogstatsd_tags(p.dogstatsd_tags)?,
        control_socket: p
            .control_socket
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        reuse_port: p.reuse_port.unwrap_or(false),
        proc_name: p.proc_name,
        pidfile: p.pidfile.filter(|f| !f.is_empty()).map(PathBuf::from),
        user: modes::account("user", p.user)?,
        group: modes::account("group", p.group)?,
        umask: modes::umask(p.umask.as_deref())?,
        socket_mode: modes::socket_mode(p.socket_mode.as_deref())?,
        daemon: p.daemon.unwrap_or(false),
        reload: p.reload.unwrap_or(false),
        limit_request_line: limit_request_line(p.limit_request_line.unwrap_or(4094))?,
        limit_request_fields: limit_request_fields(p.limit_request_fields.unwrap_or(100))?,
        limit_request_field_size: limit_request_field_size(
            p.limit_request_field_size.unwrap_or(DEFAULT_FIELD_SIZE),
        ),
        limit_request_body: p.limit_request_body.unwrap_or(0),
        forwarded_allow_ips: allowed_peers("forwarded_allow_ips", p.forwarded_allow_ips)?,
        secure_scheme_headers: secure_scheme_headers(p.secure_scheme_headers)?,
        proxy_protocol: p.proxy_protocol.unwrap_or(false),
        proxy_allow_ips: allowed_peers("proxy_allow_ips", p.proxy_allow_ips)?,
        permit_missing_host: p.permit_missing_host.unwrap_or(false),
        forwarder_headers: forwarder_headers(p.forwarder_headers)?,
    })
}

fn at_least_one(key: &str, value: u32) -> Result<u32> {
    match value {
        0 => Err(Error::config(key, value, "an integer >= 1")),
        n => Ok(n),
    }
}

fn seconds(key: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::config(key, value, "a number of seconds >= 0"))
}

/// Trimmed, non-empty entries: tolerates "a, b," as gunicorn does.
fn non_empty_items(items: Option<Vec<String>>) -> impl Iterator<Item = String> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn bind(values: Option<Vec<String>>) -> Result<Vec<BindSpec>> {
    match values {
        None => Ok(vec![BindSpec::Tcp {
            host: "127.0.0.1".to_owned(),
            port: 8000,
        }]),
        Some(values) => values.iter().map(|v| BindSpec::parse(v)).collect(),
    }
}

fn raw_env(values: Vec<String>) -> Result<Vec<(String, String)>> {
    values
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(Error::config("raw_env", &item, "KEY=VALUE")),
        })
        .collect()
}

fn limit_request_line(value: u64) -> Result<usize> {
    match value {
        0 => Ok(usize::MAX),
        n if n <= MAX_REQUEST_LINE => Ok(n as usize),
        n => Err(Error::config(
            "limit_request_line",
            n,
            "an integer from 0 to 8190",
        )),
    }
}

fn limit_request_fields(value: u64) -> Result<usize> {
    match value {
        0 => Ok(MAX_HEADER_FIELDS as usize),
        n if n <= MAX_HEADER_FIELDS => Ok(n as usize),
        n => Err(Error::config(
            "limit_request_fields",
            n,
            "an integer from 0 to 32768",
        )),
    }
}

/// 0 means the default, 8190, as in gunicorn's parser (its docs still say "unlimited", its code
/// and its own test invalid/limit_header_default_01 say otherwise).
fn limit_request_field_size(value: u64) -> usize {
    match value {
        0 => DEFAULT_FIELD_SIZE as usize,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// gunicorn's forwarder_headers: names as they arrive (upper case, `_` allowed), default
/// SCRIPT_NAME and PATH_INFO.
fn forwarder_headers(values: Option<Vec<String>>) -> Result<Vec<String>> {
    let values = values.unwrap_or_else(|| vec!["SCRIPT_NAME".to_owned(), "PATH_INFO".to_owned()]);
    non_empty_items(Some(values))
        .map(|name| {
            let valid = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            match valid {
                true => Ok(name.to_ascii_uppercase()),
                false => Err(Error::config(
                    "forwarder_headers",
                    name,
                    "header names (letters, digits, '-', '_')",
                )),
            }
        })
        .collect()
}

/// forwarded_allow_ips and proxy_allow_ips: the same syntax and the same default, loopback.
fn allowed_peers(key: &str, values: Option<Vec<String>>) -> Result<Vec<String>> {
    let values = values.unwrap_or_else(|| {
        let default = DEFAULT_ALLOWED_PEERS.split(',');
        default.map(str::to_owned).collect()
    });
    non_empty_items(Some(values))
        .map(|entry| match is_ip_or_network(&entry) {
            true => Ok(entry),
            false => Err(Error::config(
                key,
                entry,
                "*, an IP address or a CIDR network (v4 or v6)",
            )),
        })
        .collect()
}

fn is_ip_or_network(entry: &str) -> bool {
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let max_prefix = match std::net::IpAddr::from_str(addr) {
        Ok(ip) if ip.is_ipv4() => 32,
        Ok(_) => 128,
        Err(_) => return entry == "*",
    };
    prefix.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u8>().is_ok_and(|n| n <= max_prefix)
    })
}

fn secure_scheme_headers(
    table: Option<std::collections::BTreeMap<String, String>>,
) -> Result<Vec<(String, String)>> {
    let Some(table) = table else {
        let default = DEFAULT_SECURE_SCHEME_HEADERS.iter();
        let mut headers: Vec<_> = default
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        headers.sort();
        return Ok(headers);
    };
    let mut headers = Vec::with_capacity(table.len());
    for (name, value) in table {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            let allowed = "a table of header names to values";
            return Err(Error::config("secure_scheme_headers", name, allowed));
        }
        headers.push((name.to_ascii_uppercase(), value));
    }
    headers.sort();
    headers.dedup_by(|a, b| a.0 == b.0);
    Ok(headers)
}

/// RFC 9110 token characters, the only ones a header name may contain.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks gunicorn's `module[:callable]` / `module:factory(args)` shape; empty is allowed here.
fn wsgi_app(spec: String) -> Result<String> {
    let (module, callable) = match spec.split_once(':') {
        Some((m, c)) => (m, Some(c)),
        None => (spec.as_str(), None),
    };
    let module_ok = module.split('.').all(is_identifier);
    let callable_ok = callable.is_none_or(|c| match c.split_once('(') {
        Some((name, args)) => is_identifier(name) && args.ends_with(')'),
        None => is_identifier(c),
    });
    match spec.is_empty() || (module_ok && callable_ok) {
        true => Ok(spec),
        false => Err(Error::config(
            "wsgi_app",
            &spec,
            "module, module:callable or module:factory(args)",
        )),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl FromStr for WorkerClass {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sync" => Ok(WorkerClass::Sync),
            "gthread" => Ok(WorkerClass::Gthread),
            _ => Err(Error::config("worker_class", s, "one of: sync, gthread")),
        }
    }
}

impl FromStr for LogLevel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warning" => Ok(LogLevel::Warning),
            "error" => Ok(LogLevel::Error),
            "critical" => Ok(LogLevel::Critical),
            _ => Err(Error::config(
                "loglevel",
                s,
                "one of: debug, info, warning, error, critical",
            )),
        }
    }
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(Error::config("log_format", s, "one of: text, json")),
        }
    }
}

impl LogFormat {
    /// The name `from_str` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl WorkerClass {
    /// The name `from_str` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Gthread => "gthread",
        }
    }
}

impl LogLevel {
    /// The name `from_str` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}
