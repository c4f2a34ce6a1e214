//! The worker's identity inside Python: `RGUNICORN_WORKER_ID` in os.environ, and prometheus_client's
//! multiprocess files named by it (worker_identity.py) so that a replacement worker reuses them.
//! Never imports the app and never fails a boot: without prometheus_client nothing is installed.
use pyo3::prelude::*;
use pyo3::types::PyModule;

const MODULE: &str = "_rgunicorn_worker_identity";
const SOURCE: &std::ffi::CStr = pyo3::ffi::c_str!(include_str!("worker_identity.py"));

/// Whether prometheus_client's multiprocess mode is asked for in this process's environment.
fn multiprocess() -> bool {
    ["PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Names prometheus_client's multiprocess files after the worker id; call before the app is
/// imported (metrics the app creates at import take their value class then).
pub fn install_prometheus_identity() {
    if !multiprocess() {
        return;
    }
    let installed = Python::attach(|py| -> PyResult<()> {
        let modules = py.import("sys")?.getattr("modules")?;
        if modules.contains(MODULE)? {
            return Ok(());
        }
        let module = PyModule::from_code(
            py,
            SOURCE,
            c"worker_identity.py",
            c"_rgunicorn_worker_identity",
        )?;
        modules.set_item(MODULE, module)?;
        Ok(())
    });
    if let Err(error) = installed {
        tracing::debug!("prometheus_client multiprocess identity not installed: {error}");
    }
}

/// This process is worker `id`: sets RGUNICORN_WORKER_ID (os.environ and the C environment) and
/// tells the prometheus identity, when installed.
pub fn identify_worker(id: u32) {
    let done = Python::attach(|py| -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        environ.set_item("RGUNICORN_WORKER_ID", id.to_string())?;
        let modules = py.import("sys")?.getattr("modules")?;
        if let Ok(module) = modules.get_item(MODULE) {
            module.call_method1("set_worker", (id,))?;
        }
        Ok(())
    });
    if let Err(error) = done {
        tracing::warn!("cannot set RGUNICORN_WORKER_ID: {error}");
    }
}
