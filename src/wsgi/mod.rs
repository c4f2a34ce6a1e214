//! The Python bridge, and the only user of pyo3: the interpreter, the app, and one request's run
//! through PEP 3333 (environ, wsgi.input, start_response, file_wrapper). Uses http's types and
//! body/response machinery; never touches sockets, processes or signals.
mod app;
mod config_file;
mod environ;
mod environ_strings;
mod file_wrapper;
mod handler;
pub mod hooks;
mod identity;
mod interpreter;
mod module;
mod proxy;
mod send;
mod spares;
mod start_response;
mod streams;

use pyo3::prelude::*;

pub use app::load_app;
pub use config_file::ConfigReader;
pub use environ::EnvironSettings;
pub use handler::WsgiHandler;
pub use identity::{identify_worker, install_prometheus_identity};
pub use interpreter::{fork_with_python, hold_thread_state, initialize, is_running, PythonSetup};
pub use module::host_prefix;

use crate::{Error, Result};

/// A loaded app, ready to be wrapped into a handler in each worker.
pub struct App(Py<PyAny>);

impl App {
    pub fn load(spec: &str) -> Result<App> {
        load_app(spec).map(App)
    }

    /// The request handler for this worker's settings and request hooks.
    pub fn handler(
        &self,
        settings: EnvironSettings,
        hooks: Option<hooks::RequestHooks>,
    ) -> Result<WsgiHandler> {
        Python::attach(|py| {
            let template = environ::EnvironTemplate::new(py, settings)
                .map_err(|e| Error::Python(e.to_string()))?;
            Ok(WsgiHandler::new(self.0.clone_ref(py), template, hooks))
        })
    }
}

/// Moves everything imported so far out of the garbage collector's reach (gc.freeze), so forked
/// workers do not dirty the pages they share with the zygote by scanning them.
pub fn freeze_heap() {
    let _ = Python::attach(|py| -> PyResult<()> {
        let gc = py.import("gc")?;
        gc.call_method0("collect")?;
        gc.call_method0("freeze")?;
        Ok(())
    });
}

/// The source files of every imported module and their modification times (for `reload`).
pub fn module_mtimes() -> std::collections::HashMap<std::path::PathBuf, std::time::SystemTime> {
    let files: Vec<String> = Python::attach(|py| {
        let modules = py
            .import("sys")?
            .getattr("modules")?
            .call_method0("values")?;
        let mut files = Vec::new();
        for module in modules.try_iter()? {
            if let Ok(file) = module?
                .getattr("__file__")
                .and_then(|f| f.extract::<String>())
            {
                files.push(file);
            }
        }
        Ok::<_, PyErr>(files)
    })
    .unwrap_or_default();
    files
        .into_iter()
        .filter_map(|file| {
            let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
            Some((std::path::PathBuf::from(file), mtime))
        })
        .collect()
}

/// Makes Python dump every thread's traceback on SIGABRT, which is how the master asks a
/// timed-out worker what it was doing before killing it: to stderr, or to `file` (JSON logs,
/// where the master puts the traceback into the timeout's record).
pub fn enable_fault_handler(file: Option<&std::path::Path>) -> Result<()> {
    Python::attach(|py| -> PyResult<()> {
        let faulthandler = py.import("faulthandler")?;
        match file {
            None => faulthandler.call_method0("enable")?,
            Some(path) => {
                let file = py.import("builtins")?.call_method1("open", (path, "w"))?;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("file", file)?;
                kwargs.set_item("all_threads", true)?;
                faulthandler.call_method("enable", (), Some(&kwargs))?
            }
        };
        Ok(())
    })
    .map_err(|e| Error::Python(e.to_string()))
}
