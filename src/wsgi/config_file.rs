//! Running a Python config (gunicorn.conf.py, `python:module`) in this process's interpreter, as
//! gunicorn does: the working directory on sys.path, the file executed as the module `__config__`.
//! Hands the names it defines to config (which decides what they mean) and keeps the namespace for
//! the hooks; the cargo binary starts its interpreter here, before anything is forked.
use std::cell::RefCell;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::app::format_error;
use super::{hooks, interpreter};
use crate::config::{Entry, PythonReader, PythonSource, Value};
use crate::{Error, Result};

const CODE: &std::ffi::CStr = pyo3::ffi::c_str!(include_str!("config_file.py"));

/// Runs Python configs; collects the warnings about them for the caller to log.
#[derive(Default)]
pub struct ConfigReader {
    warnings: RefCell<Vec<String>>,
}

impl ConfigReader {
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.take()
    }
}

impl PythonReader for ConfigReader {
    fn read(&self, source: &PythonSource, virtualenv: Option<&Path>) -> Result<Vec<Entry>> {
        interpreter::start(virtualenv)?;
        Python::attach(|py| {
            run(py, source).map_err(|error| Error::ConfigFile {
                path: PathBuf::from(source.to_string()),
                message: format!(
                    "the config raised:\n{}",
                    format_error(py, &error).trim_end()
                ),
            })
        })
    }

    fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }
}

fn run(py: Python<'_>, source: &PythonSource) -> PyResult<Vec<Entry>> {
    let helper = PyModule::from_code(py, CODE, c"rgunicorn_config.py", c"rgunicorn_config")?;
    let cwd = std::env::current_dir()
        .unwrap_or_default()
        .display()
        .to_string();
    let sys_path = py.import("sys")?.getattr("path")?;
    if !sys_path.contains(&cwd)? {
        sys_path.call_method1("insert", (0, &cwd))?;
    }
    let module = match source {
        PythonSource::File(path) => helper
            .getattr("run_file")?
            .call1((path.display().to_string(),))?,
        PythonSource::Module(name) => helper.getattr("run_module")?.call1((name,))?,
    };
    let namespace = module.getattr("__dict__")?.cast_into::<PyDict>()?;
    hooks::set_pending(namespace.unbind());
    let described = helper.getattr("describe")?.call1((module,))?;
    described
        .try_iter()?
        .map(|item| {
            let (name, kind, repr): (String, Bound<'_, PyAny>, String) = item?.extract()?;
            Ok(Entry {
                name,
                value: value(&kind)?,
                repr,
            })
        })
        .collect()
}

/// `(kind, payload)` from config_file.py's `kind` as a `Value`.
fn value(described: &Bound<'_, PyAny>) -> PyResult<Value> {
    let (kind, payload): (String, Bound<'_, PyAny>) = described.extract()?;
    Ok(match kind.as_str() {
        "none" => Value::None,
        "bool" => Value::Bool(payload.extract()?),
        "int" => Value::Int(payload.extract()?),
        "float" => Value::Float(payload.extract()?),
        "str" => Value::Str(payload.extract()?),
        "module" => Value::Module,
        "list" => Value::List(
            payload
                .try_iter()?
                .map(|item| value(&item?))
                .collect::<PyResult<_>>()?,
        ),
        "dict" => Value::Dict(
            payload
                .try_iter()?
                .map(|item| {
                    let (key, described): (String, Bound<'_, PyAny>) = item?.extract()?;
                    Ok((key, value(&described)?))
                })
                .collect::<PyResult<_>>()?,
        ),
        "callable" => {
            let (arity, local): (i64, bool) = payload.extract()?;
            Value::Callable {
                arity: usize::try_from(arity).unwrap_or(usize::MAX),
                local,
            }
        }
        _ => Value::Other,
    })
}
