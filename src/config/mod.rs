//! Settings: one validated, immutable description of how to run, merged from defaults < TOML file
//! (-c) < RGUNICORN_CMD_ARGS < command line. Pure: reads files and env only through `load`'s inputs,
//! never binds, forks or logs.
use std::path::PathBuf;
use std::time::Duration;

/// What main should do after loading settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    CheckConfig,
    PrintConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerClass {
    Sync,
    Gthread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// One listening address, as given to `--bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// `HOST:PORT`, `[V6]:PORT`, `HOST` (port 8000); host may be a name to resolve.
    Tcp { host: String, port: u16 },
    /// `unix:PATH`
    Unix(PathBuf),
    /// `fd://N`: an already-open listening socket inherited from the parent.
    Fd(i32),
}

/// The merged, validated settings. Field names and meanings are gunicorn's.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `module`, `module:callable` or `module:factory(args)`; positional arg or `wsgi_app`.
    pub wsgi_app: String,
    /// The -c file these settings were read from, kept for reloads.
    pub config_file: Option<PathBuf>,
    pub bind: Vec<BindSpec>,
    pub backlog: u32,
    pub workers: u32,
    pub threads: u32,
    /// Effective class: `sync` with threads > 1 becomes `gthread`, as in gunicorn.
    pub worker_class: WorkerClass,
    pub worker_connections: u32,
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    pub keepalive: Duration,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub preload_app: bool,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Vec<PathBuf>,
    pub virtualenv: Option<PathBuf>,
    /// `KEY=VALUE` pairs exported into the workers' environment.
    pub raw_env: Vec<(String, String)>,
    /// None = no access log; Some("-") = stdout.
    pub accesslog: Option<String>,
    /// "-" = stderr.
    pub errorlog: String,
    pub loglevel: LogLevel,
    pub access_log_format: String,
    pub reuse_port: bool,
    pub proc_name: Option<String>,
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    /// 0 = unlimited.
    pub limit_request_body: u64,
    /// Peers whose forwarding headers are trusted: addresses or CIDR ranges, or "*".
    pub forwarded_allow_ips: Vec<String>,
    /// Header (upper-case, as sent) and value that mark a request as https.
    pub secure_scheme_headers: Vec<(String, String)>,
}
