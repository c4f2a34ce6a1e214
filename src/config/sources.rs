//! Where settings come from besides the command line: the forms of `-c` (TOML, a Python file,
//! `python:module`) and the environment variables gunicorn reads. Captures and classifies only;
//! never reads a config file's contents (`file.rs`, `python.rs` do).
use std::path::PathBuf;

use super::partial::Partial;
use super::python::PythonSource;
use crate::{Error, Result};

/// Where the config file's settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A `.toml` file.
    Toml(PathBuf),
    /// Any other file (gunicorn.conf.py), or `python:module`.
    Python(PythonSource),
}

impl ConfigSource {
    /// gunicorn's `-c` forms: `python:module`, `file:PATH` or `PATH`; a path ending in `.toml` is
    /// rgunicorn's TOML. Paths are made absolute, so a later chdir does not lose them.
    pub(super) fn parse(given: &std::path::Path) -> Result<ConfigSource> {
        let text = given.to_string_lossy();
        if let Some(module) = text.strip_prefix("python:") {
            return Ok(ConfigSource::Python(PythonSource::Module(
                module.to_owned(),
            )));
        }
        let path = match text.strip_prefix("file:") {
            Some(path) => PathBuf::from(path),
            None => given.to_owned(),
        };
        let path = std::path::absolute(&path).map_err(|source| Error::ConfigRead {
            path: path.clone(),
            source,
        })?;
        Ok(match path.extension().is_some_and(|e| e == "toml") {
            true => ConfigSource::Toml(path),
            false => ConfigSource::Python(PythonSource::File(path)),
        })
    }
}

/// The environment variables that take part in configuration, captured once so that loading
/// stays a function of its inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// RGUNICORN_CMD_ARGS: extra command-line arguments, shell-quoted.
    pub cmd_args: Option<String>,
    /// GUNICORN_CMD_ARGS: the same, below RGUNICORN_CMD_ARGS.
    pub gunicorn_cmd_args: Option<String>,
    /// ./gunicorn.conf.py when it exists: gunicorn's config file when no -c is given.
    pub default_config: Option<PathBuf>,
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
        let default_config = std::path::absolute("gunicorn.conf.py").ok();
        Environment {
            cmd_args: var("RGUNICORN_CMD_ARGS"),
            gunicorn_cmd_args: var("GUNICORN_CMD_ARGS"),
            default_config: default_config.filter(|path| path.is_file()),
            virtual_env: var("VIRTUAL_ENV"),
            web_concurrency: var("WEB_CONCURRENCY"),
            forwarded_allow_ips: var("FORWARDED_ALLOW_IPS"),
        }
    }

    /// The lowest layer above the built-in defaults.
    pub(super) fn fallbacks(&self) -> Result<Partial> {
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
