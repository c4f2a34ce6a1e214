//! The wheel's extension module `rgunicorn._rgunicorn`: `main(argv)` runs rgunicorn inside the
//! Python process that called it (the venv's own interpreter, so no libpython.so is needed), with
//! the GIL released while the master supervises. Decides nothing: `cli::run` does the rest.
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use pyo3::prelude::*;

use crate::cli::{self, Program};

/// `sys.prefix` of the Python process the wheel's `main` runs in.
static HOST_PREFIX: OnceLock<PathBuf> = OnceLock::new();

/// The venv (sys.prefix) whose interpreter runs this server, when it runs from the wheel.
pub fn host_prefix() -> Option<&'static PathBuf> {
    HOST_PREFIX.get()
}

#[pymodule]
#[pyo3(name = "_rgunicorn")]
fn extension(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// Runs rgunicorn with `argv` (program name first) and returns its exit code. USR2 starts
/// `sys.executable` again with the interpreter's original command line (`sys.orig_argv`), so
/// `python -m rgunicorn ...` and the console script both come back as they were started.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> PyResult<i32> {
    let sys = py.import("sys")?;
    let executable: PathBuf = sys.getattr("executable")?.extract()?;
    let original: Vec<OsString> = sys.getattr("orig_argv")?.extract()?;
    let _ = HOST_PREFIX.set(sys.getattr("prefix")?.extract()?);
    // Python's SIGINT handler would turn the master's next hook call into a KeyboardInterrupt:
    // the master's own handlers take every signal it acts on.
    let signal = py.import("signal")?;
    signal.call_method1(
        "signal",
        (signal.getattr("SIGINT")?, signal.getattr("SIG_DFL")?),
    )?;
    let program = Program {
        executable,
        args: original.into_iter().skip(1).collect(),
    };
    Ok(py.detach(move || cli::run(argv, program)))
}
