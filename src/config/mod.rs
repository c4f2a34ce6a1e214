//! Settings: one validated, immutable description of how to run, merged from defaults (with
//! gunicorn's environment fallbacks) < config file (-c: TOML, or Python as gunicorn reads it;
//! ./gunicorn.conf.py by default) < GUNICORN_CMD_ARGS < RGUNICORN_CMD_ARGS < command line. Reads
//! the process environment only in `Environment::from_process`, files only through -c, and runs
//! Python configs only through the `PythonReader` it is given; never binds, forks or logs.
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};
use partial::Partial;
pub use python::{Entry, PythonReader, PythonSource, Value};
pub use sources::{ConfigSource, Environment};

mod bind;
mod cli;
mod file;
pub mod gunicorn;
#[cfg(test)]
mod layer_tests;
mod modes;
mod observability;
mod partial;
mod print;
mod python;
mod sources;
#[cfg(test)]
mod tests;
mod validate;

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

/// How error-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// gunicorn's `[time] [pid] [LEVEL] message`.
    Text,
    /// One JSON object per line (for Loki).
    Json,
}

/// A statsd server: gunicorn's `statsd_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdTarget {
    /// `HOST:PORT`, resolved when the client starts.
    Udp { host: String, port: u16 },
    /// `unix:PATH` (or `unix://PATH`): a unix datagram socket.
    Unix(PathBuf),
}

impl std::fmt::Display for StatsdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsdTarget::Udp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            StatsdTarget::Udp { host, port } => write!(f, "{host}:{port}"),
            StatsdTarget::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// One listening address, as given to `--bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// `HOST:PORT`, `[V6]:PORT`, `HOST` (port 8000); host may be a name to resolve. An IPv6
    /// host is stored without its brackets; the host is lower-cased, as in gunicorn.
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
    /// The config these settings were read from, kept for reloads.
    pub config_file: Option<ConfigSource>,
    /// The server hooks a Python config defines (gunicorn's names), in the order it defined them.
    pub hooks: Vec<&'static str>,
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
    /// Unshared memory (MiB) past which a worker is retired and replaced; 0 = no limit.
    pub max_worker_memory: u64,
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
    /// gunicorn's atoms, or "json".
    pub access_log_format: String,
    pub log_format: LogFormat,
    /// Where the master serves /metrics (TCP or unix); None = no endpoint.
    pub metrics_bind: Option<BindSpec>,
    /// Where statsd metrics go; None = no statsd.
    pub statsd_host: Option<StatsdTarget>,
    /// "" or a prefix ending in one '.', as gunicorn normalises it.
    pub statsd_prefix: String,
    /// DogStatsD tags, comma-separated; "" = none.
    pub dogstatsd_tags: String,
    /// The master's control socket (`rgunicorn ctl`); None = off.
    pub control_socket: Option<PathBuf>,
    pub reuse_port: bool,
    pub proc_name: Option<String>,
    /// The master's pid file (`-p/--pid`); None = no pid file.
    pub pidfile: Option<PathBuf>,
    /// The workers' user and group as given (name or numeric id); `privileges::resolve` looks
    /// them up. None = do not switch.
    pub user: Option<String>,
    pub group: Option<String>,
    /// File mode creation mask (0..=0o777), gunicorn's default 0.
    pub umask: u32,
    /// Permission bits for unix socket files (0..=0o777); None = what bind and umask give.
    pub socket_mode: Option<u32>,
    /// Detach from the terminal and run in the background.
    pub daemon: bool,
    /// Restart the workers when a Python source file of the app changes (development).
    pub reload: bool,
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    /// 0 = unlimited.
    pub limit_request_body: u64,
    /// Peers whose forwarding headers are trusted: addresses or CIDR ranges, or "*".
    pub forwarded_allow_ips: Vec<String>,
    /// Header (upper-case, as sent) and value that mark a request as https.
    pub secure_scheme_headers: Vec<(String, String)>,
    /// Whether connections may start with a PROXY protocol preamble (v1 or v2).
    pub proxy_protocol: bool,
    /// Peers whose PROXY preambles are believed: addresses or CIDR ranges, or "*" (unix-socket
    /// peers always are). A preamble from any other peer is refused with 403.
    pub proxy_allow_ips: Vec<String>,
    /// HTTP/1.1 requests without Host are served instead of refused with 400.
    pub permit_missing_host: bool,
    /// Headers with `_` in their name that a trusted peer may pass into the environ as they are.
    pub forwarder_headers: Vec<String>,
}

/// Parses argv (program name first) and the environment into settings and what to do with them.
///
/// `--help` and `--version` are printed by clap, which then exits the process (status 0).
/// `wsgi_app` is required except with `--print-config`, so that printing the defaults works.
pub fn load(argv: Vec<OsString>, env: &Environment) -> Result<(Settings, Action)> {
    load_with(argv, env, &NoPython)
}

/// `load`, running a Python config with `python`.
pub fn load_with(
    argv: Vec<OsString>,
    env: &Environment,
    python: &dyn PythonReader,
) -> Result<(Settings, Action)> {
    let layers = Layers::parse(argv, env)?;
    let config_file = layers.config_file(env)?;
    let action = layers.action;
    let settings = layers.build(env, config_file, python)?;
    if action != Action::PrintConfig {
        require_app(&settings)?;
    }
    Ok((settings, action))
}

/// Loads again for a HUP reload: same arguments, same precedence, and the config file found at
/// startup (kept absolute, so a later `chdir` does not lose it); a Python config runs again.
pub fn reload(previous: &Settings, argv: Vec<OsString>, env: &Environment) -> Result<Settings> {
    reload_with(previous, argv, env, &NoPython)
}

/// `reload`, running a Python config with `python`.
pub fn reload_with(
    previous: &Settings,
    argv: Vec<OsString>,
    env: &Environment,
    python: &dyn PythonReader,
) -> Result<Settings> {
    let layers = Layers::parse(argv, env)?;
    let settings = layers.build(env, previous.config_file.clone(), python)?;
    require_app(&settings)?;
    Ok(settings)
}

/// The reader of a build that cannot run Python configs (tests of the TOML paths).
struct NoPython;

impl PythonReader for NoPython {
    fn read(&self, source: &PythonSource, _: Option<&std::path::Path>) -> Result<Vec<Entry>> {
        Err(Error::Python(format!(
            "cannot run the Python config {source} here"
        )))
    }

    fn warn(&self, _: String) {}
}

/// The built-in defaults, ignoring the environment; `wsgi_app` is empty.
pub fn default_settings() -> Settings {
    validate::settings(Partial::default(), None).expect("the built-in defaults are valid")
}

fn require_app(settings: &Settings) -> Result<()> {
    match settings.wsgi_app.is_empty() {
        true => Err(Error::config(
            "wsgi_app",
            "",
            "no application module specified; give module or module:callable",
        )),
        false => Ok(()),
    }
}

/// The argument layers, parsed but not yet merged.
struct Layers {
    cli: cli::Cli,
    /// GUNICORN_CMD_ARGS then RGUNICORN_CMD_ARGS, when set.
    env_args: Vec<cli::Cli>,
    action: Action,
}

impl Layers {
    fn parse(argv: Vec<OsString>, env: &Environment) -> Result<Layers> {
        let cli = cli::parse(argv)?;
        let env_args = [
            ("GUNICORN_CMD_ARGS", &env.gunicorn_cmd_args),
            ("RGUNICORN_CMD_ARGS", &env.cmd_args),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
        .map(|(name, value)| cli::parse_env_args(name, value))
        .collect::<Result<Vec<_>>>()?;
        let flag = |f: fn(&cli::Cli) -> bool| f(&cli) || env_args.iter().any(f);
        let action = if flag(|c| c.print_config) {
            Action::PrintConfig
        } else if flag(|c| c.check_config) {
            Action::CheckConfig
        } else {
            Action::Run
        };
        Ok(Layers {
            cli,
            env_args,
            action,
        })
    }

    /// The -c config, command line first, else ./gunicorn.conf.py when it exists.
    fn config_file(&self, env: &Environment) -> Result<Option<ConfigSource>> {
        let given = std::iter::once(&self.cli)
            .chain(self.env_args.iter().rev())
            .find_map(|c| c.config.as_deref());
        match (given, &env.default_config) {
            (Some(path), _) => ConfigSource::parse(path).map(Some),
            (None, Some(default)) => Ok(Some(ConfigSource::Python(PythonSource::File(
                default.clone(),
            )))),
            (None, None) => Ok(None),
        }
    }

    fn build(
        self,
        env: &Environment,
        config_file: Option<ConfigSource>,
        python: &dyn PythonReader,
    ) -> Result<Settings> {
        let layers: Vec<cli::Cli> = self.env_args.into_iter().chain([self.cli]).collect();
        for (name, value) in layers.iter().flat_map(|c| &c.gunicorn_flags) {
            python::gunicorn_flag(name, value.as_deref(), python)?;
        }
        let args = layers
            .into_iter()
            .map(|c| c.settings)
            .fold(Partial::default(), Partial::merge);
        let fallbacks = env.fallbacks()?;
        let (from_file, hooks) = match &config_file {
            None => (Partial::default(), Vec::new()),
            Some(ConfigSource::Toml(path)) => (file::read(path)?, Vec::new()),
            Some(ConfigSource::Python(source)) => {
                let venv = args.virtualenv.as_ref().or(fallbacks.virtualenv.as_ref());
                let entries = python.read(source, venv.map(std::path::Path::new))?;
                let read = python::settings(source, &entries, python)?;
                (read.partial, read.hooks)
            }
        };
        let merged = fallbacks.merge(from_file).merge(args);
        let mut settings = validate::settings(merged, config_file)?;
        settings.hooks = hooks;
        Ok(settings)
    }
}
