//! Python config files (gunicorn.conf.py, `-c python:module`), read as gunicorn reads them: the
//! file runs as a module and its top-level names that are settings become settings. Running the
//! file is the `PythonReader`'s job (wsgi, the only user of pyo3); this file turns the names and
//! values it saw into a `Partial` through the same serde declaration the TOML file uses, plus the
//! hooks defined and the warnings to log. Pure.
use std::path::{Path, PathBuf};

use super::gunicorn::{self, Kind};
use super::partial::Partial;
use crate::{Error, Result};

/// Where a Python config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSource {
    File(PathBuf),
    /// `-c python:dotted.module`, imported with the working directory on sys.path.
    Module(String),
}

impl std::fmt::Display for PythonSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PythonSource::File(path) => write!(f, "{}", path.display()),
            PythonSource::Module(name) => write!(f, "python:{name}"),
        }
    }
}

/// A Python value as far as settings care.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A list or tuple.
    List(Vec<Value>),
    /// A dict with string keys.
    Dict(Vec<(String, Value)>),
    /// A function or other callable: its positional parameters (gunicorn's util.get_arity), and
    /// whether the config itself defined it (an imported one is no typo of a hook name).
    Callable {
        arity: usize,
        local: bool,
    },
    Module,
    /// Anything else (a class instance, a set, an int too large...).
    Other,
}

/// One top-level name of the config and its value; `repr` is Python's, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub value: Value,
    pub repr: String,
}

/// Runs Python configs: implemented by wsgi, which owns the interpreter.
pub trait PythonReader {
    /// Runs the config and returns its top-level names. `virtualenv` is the one the command line
    /// or the environment names, for a process that has to start its interpreter first.
    fn read(&self, source: &PythonSource, virtualenv: Option<&Path>) -> Result<Vec<Entry>>;

    /// A setting accepted with a warning (logged once logging is set up).
    fn warn(&self, message: String);
}

/// What a Python config said: its settings and the names of the server hooks it defines.
pub struct Read {
    pub partial: Partial,
    pub hooks: Vec<&'static str>,
}

/// Turns the config's names into settings, in the order the config defined them.
pub fn settings(
    source: &PythonSource,
    entries: &[Entry],
    reader: &dyn PythonReader,
) -> Result<Read> {
    let mut read = Read {
        partial: Partial::default(),
        hooks: Vec::new(),
    };
    for entry in entries {
        if entry.name.starts_with('_') || entry.value == Value::Module {
            continue;
        }
        let name = entry.name.as_str();
        if let Some(&known) = Partial::NAMES.iter().find(|n| **n == name) {
            if entry.value != Value::None {
                let layer = setting(known, entry)?;
                read.partial = std::mem::take(&mut read.partial).merge(layer);
            }
            continue;
        }
        match gunicorn::kind(name) {
            Some(Kind::Hook { name, arity }) => {
                if let Some(hook) = hook(name, arity, entry)? {
                    read.hooks.push(hook);
                }
            }
            Some(kind) => other_gunicorn_setting(name, kind, entry, reader)?,
            None => unknown(source, entry, reader),
        }
    }
    Ok(read)
}

/// One of our settings from a Python value, coerced as gunicorn's validators do (a string of
/// digits for a number, "true"/"false" for a flag, a number for a name).
fn setting(name: &'static str, entry: &Entry) -> Result<Partial> {
    let value = toml_value(&entry.value)
        .ok_or_else(|| invalid(name, entry, "a number, string, flag, list or dict"))?;
    let mut first_error = None;
    for candidate in std::iter::once(value.clone()).chain(coercions(&value)) {
        let table = toml::Table::from_iter([(name.to_owned(), candidate)]);
        match toml::Value::Table(table).try_into::<Partial>() {
            Ok(partial) => return Ok(partial),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let message = first_error.map(|e| e.to_string()).unwrap_or_default();
    Err(invalid(name, entry, message.trim()))
}

fn invalid(name: &str, entry: &Entry, allowed: &str) -> Error {
    Error::config(name, &entry.repr, allowed)
}

fn toml_value(value: &Value) -> Option<toml::Value> {
    Some(match value {
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Float(f) => toml::Value::Float(*f),
        Value::Str(s) => toml::Value::String(s.clone()),
        Value::List(items) => {
            toml::Value::Array(items.iter().map(toml_value).collect::<Option<_>>()?)
        }
        Value::Dict(items) => toml::Value::Table(
            items
                .iter()
                .map(|(k, v)| Some((k.clone(), toml_value(v)?)))
                .collect::<Option<_>>()?,
        ),
        Value::None | Value::Callable { .. } | Value::Module | Value::Other => return None,
    })
}

/// The other readings gunicorn's validators allow.
fn coercions(value: &toml::Value) -> Vec<toml::Value> {
    match value {
        toml::Value::String(s) => {
            let s = s.trim();
            let mut out = Vec::new();
            if let Ok(i) = s.parse() {
                out.push(toml::Value::Integer(i));
            }
            if let Ok(f) = s.parse() {
                out.push(toml::Value::Float(f));
            }
            match s.to_ascii_lowercase().as_str() {
                "true" => out.push(toml::Value::Boolean(true)),
                "false" => out.push(toml::Value::Boolean(false)),
                _ => {}
            }
            out
        }
        toml::Value::Integer(i) => vec![toml::Value::String(i.to_string())],
        _ => Vec::new(),
    }
}

/// A server hook: a callable taking gunicorn's number of positional parameters.
fn hook(name: &'static str, arity: usize, entry: &Entry) -> Result<Option<&'static str>> {
    match entry.value {
        Value::None => Ok(None),
        Value::Callable { arity: got, .. } if got == arity => Ok(Some(name)),
        _ => Err(invalid(
            name,
            entry,
            &format!(
                "a function taking {} (gunicorn's server hook)",
                gunicorn::hook_parameters(arity, name)
            ),
        )),
    }
}

/// A gunicorn flag of a setting rgunicorn lacks, judged as the same setting in a config file.
pub fn gunicorn_flag(name: &str, value: Option<&str>, reader: &dyn PythonReader) -> Result<()> {
    let flag = gunicorn::FLAGS.iter().find(|(n, ..)| *n == name);
    let spelled = flag.and_then(|(_, flags, _)| flags.last()).unwrap_or(&"");
    let entry = Entry {
        name: name.to_owned(),
        value: value.map_or(Value::Bool(true), |v| Value::Str(v.to_owned())),
        repr: value.map_or(spelled.to_string(), |v| format!("{v:?}")),
    };
    match gunicorn::kind(name) {
        Some(kind) => other_gunicorn_setting(name, kind, &entry, reader),
        None => Ok(()),
    }
}

fn other_gunicorn_setting(
    name: &str,
    kind: Kind,
    entry: &Entry,
    reader: &dyn PythonReader,
) -> Result<()> {
    match kind {
        Kind::Unsupported { defaults, instead } if !asks_nothing(&entry.value, defaults) => {
            Err(invalid(name, entry, instead))
        }
        Kind::Ignored { why } if entry.value != Value::None => {
            reader.warn(format!("{name} = {} is ignored: {why}", entry.repr));
            Ok(())
        }
        Kind::CommandLineOnly => {
            reader.warn(format!(
                "{name} in a config file is ignored: give it on the command line"
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// None, False, 0, empty, or one of gunicorn's default values: the setting asks for nothing.
fn asks_nothing(value: &Value, defaults: &[&str]) -> bool {
    match value {
        Value::None | Value::Bool(false) | Value::Int(0) => true,
        Value::Str(s) => s.is_empty() || defaults.contains(&s.as_str()),
        Value::List(items) => {
            let joined: Option<Vec<&str>> = items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            items.is_empty()
                || joined.is_some_and(|parts| defaults.contains(&parts.join(",").as_str()))
        }
        Value::Dict(items) => items.is_empty(),
        _ => false,
    }
}

/// gunicorn ignores names that are not settings; a warning names them, since a typo of a setting
/// would otherwise go unnoticed. Imported callables are not warned about.
fn unknown(source: &PythonSource, entry: &Entry, reader: &dyn PythonReader) {
    if matches!(entry.value, Value::Callable { local: false, .. }) {
        return;
    }
    reader.warn(format!(
        "{source}: {} is not a gunicorn setting; ignored",
        entry.name
    ));
}

#[cfg(test)]
#[path = "python_tests.rs"]
mod tests;
