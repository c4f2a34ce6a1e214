//! The embedded CPython: initialises it to see the user's virtualenv (or finds the one the wheel's
//! host process runs), puts chdir/pythonpath on sys.path, keeps one persistent thread state per
//! request thread, and wraps every fork of a process that has an interpreter in CPython's fork
//! hooks. The only place in wsgi that calls the raw C API (it is the interpreter's OS boundary).
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::{Error, Result};

/// What the interpreter needs to know before the app is imported.
#[derive(Debug, Clone, Default)]
pub struct PythonSetup {
    pub virtualenv: Option<PathBuf>,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Vec<PathBuf>,
}

/// The interpreter the cargo binary was built against, started when no virtualenv is given.
#[cfg(not(feature = "abi3"))]
const BUILD_PYTHON: &str = env!("RGUNICORN_BUILD_PYTHON");

/// The `python` whose location tells CPython where its prefix and site-packages are: the
/// virtualenv's when there is one (so its pyvenv.cfg is found), else the build interpreter.
#[cfg(not(feature = "abi3"))]
fn interpreter_executable(virtualenv: Option<&Path>) -> Option<PathBuf> {
    match virtualenv {
        Some(venv) => Some(venv.join("bin").join("python")),
        None => Some(PathBuf::from(BUILD_PYTHON)).filter(|p| p.exists()),
    }
}

/// Set once sys.path was set up for the app; a forked child inherits it with the interpreter.
static APP_PATHS_SET: AtomicBool = AtomicBool::new(false);

/// Whether this process has a running interpreter: the wheel's host process, or one started here.
pub fn is_running() -> bool {
    // SAFETY: Py_IsInitialized may be called at any time.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// Starts CPython if this process has none yet (the cargo binary's master reading a Python config,
/// a worker or zygote of a master without one); leaves the GIL released. The wheel's host process
/// already runs the venv's interpreter, so `virtualenv` is then not used.
pub fn start(virtualenv: Option<&Path>) -> Result<()> {
    if is_running() {
        return Ok(());
    }
    #[cfg(not(feature = "abi3"))]
    return init_from_config(interpreter_executable(virtualenv).as_deref());
    // The wheel's build (the stable ABI has no PyConfig) runs only inside a Python process.
    #[cfg(feature = "abi3")]
    return Err(Error::Python(format!(
        "this build runs only inside Python (no interpreter for {virtualenv:?})"
    )));
}

/// Starts CPython if needed and sets up sys.path for the app once per process lineage (a worker
/// forked from a zygote or a preloading master finds it done); leaves the GIL released.
pub fn initialize(setup: &PythonSetup) -> Result<()> {
    start(setup.virtualenv.as_deref())?;
    if APP_PATHS_SET.load(Ordering::Relaxed) {
        return Ok(());
    }
    Python::attach(|py| {
        sync_environ(py)?;
        configure_sys_path(py, setup)
    })
    .map_err(|e| Error::Python(e.to_string()))?;
    APP_PATHS_SET.store(true, Ordering::Relaxed);
    Ok(())
}

#[cfg(not(feature = "abi3"))]
fn init_from_config(executable: Option<&Path>) -> Result<()> {
    let fail = |what: &str| Error::Python(format!("cannot initialise the interpreter: {what}"));
    let executable = executable
        .map(|p| std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())))
        .transpose()
        .map_err(|_| fail("executable path contains NUL"))?;
    // SAFETY: PyConfig is a plain C struct that PyConfig_InitPythonConfig fully initialises; it is
    // used only on this thread, cleared before it goes out of scope, and the interpreter is not
    // running yet (checked by the caller), which is what Py_InitializeFromConfig requires.
    unsafe {
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        // Signals belong to the worker's Rust code; Python must not install SIGINT handling.
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        if let Some(exe) = &executable {
            let status =
                ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr());
            if ffi::PyStatus_Exception(status) != 0 {
                ffi::PyConfig_Clear(&mut config);
                return Err(fail("cannot set executable"));
            }
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(fail(&status_message(status)));
        }
        // Hand the GIL back: every thread attaches when it needs Python, as pyo3 expects.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

#[cfg(not(feature = "abi3"))]
fn status_message(status: ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: a non-null err_msg of a PyStatus is a static NUL-terminated C string.
    unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}

/// Makes os.environ the process environment again: an interpreter that was already running (the
/// wheel's, or a master's that read a Python config) took its copy before raw_env was exported and
/// systemd's and USR2's variables were removed.
fn sync_environ(py: Python<'_>) -> PyResult<()> {
    let environ = py.import("os")?.getattr("environ")?;
    let current: std::collections::HashMap<_, _> = std::env::vars_os().collect();
    for key in environ
        .call_method0("keys")?
        .try_iter()?
        .collect::<PyResult<Vec<_>>>()?
    {
        if !current.contains_key(&key.extract::<std::ffi::OsString>()?) {
            environ.del_item(key)?;
        }
    }
    for (key, value) in current {
        if environ.get_item(&key).ok().and_then(|v| v.extract().ok()) != Some(value.clone()) {
            environ.set_item(key, value)?;
        }
    }
    Ok(())
}

/// gunicorn puts chdir first on sys.path, then the pythonpath entries in front of it; an entry
/// already there (the master's interpreter may have put the directory there to read the config)
/// moves to the front instead of appearing twice.
fn configure_sys_path(py: Python<'_>, setup: &PythonSetup) -> PyResult<()> {
    let sys_path = py.import("sys")?.getattr("path")?;
    let mut front: Vec<String> = Vec::new();
    for dir in &setup.pythonpath {
        front.push(dir.display().to_string());
    }
    let cwd = match &setup.chdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().unwrap_or_default(),
    };
    front.push(cwd.display().to_string());
    for dir in front.iter().rev() {
        while sys_path.contains(dir)? {
            sys_path.call_method1("remove", (dir,))?;
        }
        sys_path.call_method1("insert", (0, dir))?;
    }
    Ok(())
}

/// Runs `body` on this thread with a Python thread state that lives as long as `body`, detached
/// from the interpreter. Requests attach to it and detach again, so `threading.local` (where Django
/// keeps its database connection) survives from one request to the next.
pub fn hold_thread_state<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    Python::attach(|py| py.detach(body))
}

/// Forks with CPython's own before/after-fork hooks (what os.fork() does) when this process has an
/// interpreter (the wheel's master, a master that read a Python config or preloaded the app, the
/// zygote); a plain fork otherwise. `is_child` tells which side of the fork we are on; a `fork`
/// that forks more than once (daemonize) returns only in the last child.
pub fn fork_with_python<T>(fork: impl FnOnce() -> T, is_child: impl Fn(&T) -> bool) -> T {
    if !is_running() {
        return fork();
    }
    Python::attach(|_py| {
        // SAFETY: called attached to the interpreter on the thread that forks, the contract of
        // PyOS_BeforeFork / PyOS_AfterFork_*.
        unsafe { ffi::PyOS_BeforeFork() };
        let forked = fork();
        // SAFETY: as above; exactly one of the two after-fork calls runs on each side.
        unsafe {
            if is_child(&forked) {
                ffi::PyOS_AfterFork_Child();
            } else {
                ffi::PyOS_AfterFork_Parent();
            }
        }
        forked
    })
}
