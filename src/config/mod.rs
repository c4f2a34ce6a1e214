//! Settings: one validated, immutable description of how to run, merged from defaults (with
//! gunicorn's environment fallbacks) < TOML file (-c) < RGUNICORN_CMD_ARGS < command line. Reads
//! the process environment only in `Environment::from_process` and files only through -c; never
//! binds, forks or logs.
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};
use partial::Partial;

mod bind;
mod cli;
mod file;
mod modes;
mod partial;
mod print;
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

/// The environment variables that take part in configuration, captured once so that loading
/// stays a function of its inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// RGUNICORN_CMD_ARGS: extra command-line arguments, shell-quoted.
    pub cmd_args: Option<String>,
    /// VIRTUAL_ENV: fallback for `virtualenv`.
    pub virtual_env: Option<String>,
    /// WEB_CONCURRENCY: fallback for `workers`.
    pub web_concurrency: Option<String>,
    /// FORWARDED_ALLOW_IPS: fallback for `forwarded_allow_ips`.
    pub forwarded_allow_ips: Option<String>,
}

impl Environment {
    /// Reads the variables; unset, empty and non-UTF-8 values all count as absent.
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            cmd_args: var("RGUNICORN_CMD_ARGS"),
            virtual_env: var("VIRTUAL_ENV"),
            web_concurrency: var("WEB_CONCURRENCY"),
            forwarded_allow_ips: var("FORWARDED_ALLOW_IPS"),
        }
    }

    /// The lowest layer above the built-in defaults.
    fn fallbacks(&self) -> Result<Partial> {
        let workers = match self.web_concurrency.as_deref() {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|_| {
                Error::config("workers", v, "an integer >= 1 (from WEB_CONCURRENCY)")
            })?),
        };
        Ok(Partial {
            workers,
            virtualenv: self.virtual_env.clone(),
            forwarded_allow_ips: (self.forwarded_allow_ips.as_ref())
                .map(|v| v.split(',').map(str::to_owned).collect()),
            ..Partial::default()
        })
    }
}

/// Parses argv (program name first) and the environment into settings and what to do with them.
///
/// `--help` and `--version` are printed by clap, which then exits the process (status 0).
/// `wsgi_app` is required except with `--print-config`, so that printing the defaults works.
pub fn load(argv: Vec<OsString>, env: &Environment) -> Result<(Settings, Action)> {
    let layers = Layers::parse(argv, env)?;
    let config_file = layers.config_file()?;
    let action = layers.action;
    let settings = layers.build(env, config_file)?;
    if action != Action::PrintConfig {
        require_app(&settings)?;
    }
    Ok((settings, action))
}

/// Loads again for a HUP reload: same arguments, same precedence, and the config file found at
/// startup (kept absolute, so a later `chdir` does not lose it).
pub fn reload(previous: &Settings, argv: Vec<OsString>, env: &Environment) -> Result<Settings> {
    let settings = Layers::parse(argv, env)?.build(env, previous.config_file.clone())?;
    require_app(&settings)?;
    Ok(settings)
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

/// The two argument layers, parsed but not yet merged.
struct Layers {
    cli: cli::Cli,
    env_args: Option<cli::Cli>,
    action: Action,
}

impl Layers {
    fn parse(argv: Vec<OsString>, env: &Environment) -> Result<Layers> {
        let cli = cli::parse(argv)?;
        let env_args = env
            .cmd_args
            .as_deref()
            .map(cli::parse_env_args)
            .transpose()?;
        let flag = |f: fn(&cli::Cli) -> bool| f(&cli) || env_args.as_ref().is_some_and(f);
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

    /// The -c path, command line first, made absolute.
    fn config_file(&self) -> Result<Option<PathBuf>> {
        let env_config = self.env_args.as_ref().and_then(|c| c.config.as_deref());
        let Some(path) = self.cli.config.as_deref().or(env_config) else {
            return Ok(None);
        };
        std::path::absolute(path)
            .map(Some)
            .map_err(|source| Error::ConfigRead {
                path: path.to_owned(),
                source,
            })
    }

    fn build(self, env: &Environment, config_file: Option<PathBuf>) -> Result<Settings> {
        let from_file = config_file.as_deref().map(file::read).transpose()?;
        let env_args = self.env_args.map(|c| c.settings);
        let merged = [from_file, env_args, Some(self.cli.settings)]
            .into_iter()
            .flatten()
            .fold(env.fallbacks()?, Partial::merge);
        validate::settings(merged, config_file)
    }
}
