//! The one error type of the crate and its exit codes; each variant names the action that failed.
//! Only main.rs turns an Error into a message and an exit code.
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting has a value outside what is allowed.
    #[error("invalid value for `{key}`: {value:?} ({allowed})")]
    Config {
        key: String,
        value: String,
        allowed: String,
    },
    /// The command line (or RGUNICORN_CMD_ARGS) could not be parsed; the message is clap's.
    #[error("{0}")]
    Usage(String),
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML file is malformed or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    /// An operating-system call failed; `action` says what we were doing.
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    /// The Python interpreter could not be initialised or configured.
    #[error("python: {0}")]
    Python(String),
    /// The WSGI app could not be imported; `traceback` is Python's formatted traceback.
    #[error("failed to load application {app:?}:\n{traceback}")]
    AppLoad { app: String, traceback: String },
}

/// gunicorn's exit codes, used by the master and by workers and the zygote (whose exit tells the
/// master why they could not start); every exit code of the crate is one of these.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const USAGE_ERROR: i32 = 2;
pub const WORKER_BOOT_ERROR: i32 = 3;
pub const APP_LOAD_ERROR: i32 = 4;

impl Error {
    pub fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    pub fn config(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Error::Config {
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// gunicorn's exit codes: 2 for usage/config errors, 3 for worker boot errors, 4 for app load.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. }
            | Error::Usage(_)
            | Error::ConfigRead { .. }
            | Error::ConfigFile { .. } => USAGE_ERROR,
            Error::AppLoad { .. } => APP_LOAD_ERROR,
            Error::Bind { .. } | Error::Io { .. } | Error::Python(_) => EXIT_FAILURE,
        }
    }
}

impl From<nix::Error> for Error {
    fn from(errno: nix::Error) -> Self {
        Error::io("system call", std::io::Error::from(errno))
    }
}
