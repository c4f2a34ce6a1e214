//! Loading the WSGI callable from its spec, and formatting Python errors for the log.
use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::{Error, Result};

const LOADER: &std::ffi::CStr = pyo3::ffi::c_str!(include_str!("loader.py"));

fn loader(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    PyModule::from_code(py, LOADER, c"rgunicorn_loader.py", c"rgunicorn_loader")
}

/// Imports `spec` (`module`, `module:name`, `module:factory(args)`); the error carries the Python
/// traceback.
pub fn load_app(spec: &str) -> Result<Py<PyAny>> {
    Python::attach(|py| {
        let loaded = loader(py).and_then(|m| m.getattr("load")?.call1((spec,)));
        loaded.map(Bound::unbind).map_err(|error| Error::AppLoad {
            app: spec.to_string(),
            traceback: format_error(py, &error),
        })
    })
}

/// The full traceback of a Python exception, as `traceback.format_exception` renders it.
pub fn format_error(py: Python<'_>, error: &PyErr) -> String {
    let formatted = loader(py)
        .and_then(|m| {
            m.getattr("format_exception")?
                .call1((error.value(py), error.traceback(py)))
        })
        .and_then(|text| text.extract::<String>());
    formatted.unwrap_or_else(|_| error.to_string())
}
