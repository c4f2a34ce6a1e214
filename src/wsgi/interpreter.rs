//! The embedded CPython: initialises it to see the user's virtualenv, puts chdir/pythonpath on
//! sys.path, keeps one persistent thread state per request thread, and wraps fork for preload.
//! The only place in wsgi that calls the raw C API (it is the interpreter's OS boundary).
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

/// The interpreter rgunicorn was built against, for the docs and `--version`.
pub const BUILD_PYTHON: &str = env!("RGUNICORN_BUILD_PYTHON");

/// The `python` whose location tells CPython where its prefix and site-packages are: the
/// virtualenv's when there is one (so its pyvenv.cfg is found), else the build interpreter.
fn interpreter_executable(virtualenv: Option<&Path>) -> Option<PathBuf> {
    match virtualenv {
        Some(venv) => Some(venv.join("bin").join("python")),
        None => Some(PathBuf::from(BUILD_PYTHON)).filter(|p| p.exists()),
    }
}

/// Starts CPython once per process and sets up sys.path (nothing to do in a worker forked from
/// an interpreter that already did: preload or the zygote); leaves the GIL released.
pub fn initialize(setup: &PythonSetup) -> Result<()> {
    // SAFETY: Py_IsInitialized may be called at any time.
    if unsafe { ffi::Py_IsInitialized() } != 0 {
        return Ok(());
    }
    let executable = interpreter_executable(setup.virtualenv.as_deref());
    init_from_config(executable.as_deref())?;
    Python::attach(|py| configure_sys_path(py, setup)).map_err(|e| Error::Python(e.to_string()))
}

fn init_from_config(executable: Option<&Path>) -> Result<()> {
    let fail = |what: &str| Error::Python(format!("cannot initialise the interpreter: {what}"));
    let executable = executable
        .map(|p| CString::new(p.as_os_str().as_bytes()))
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

fn status_message(status: ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: a non-null err_msg of a PyStatus is a static NUL-terminated C string.
    unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}

/// gunicorn puts chdir first on sys.path, then the pythonpath entries in front of it.
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

/// Forks with CPython's own before/after-fork hooks (what os.fork() does), for preload_app where
/// the master holds an initialised interpreter. `is_child` tells which side of the fork we are on.
pub fn fork_with_python<T>(fork: impl FnOnce() -> T, is_child: impl Fn(&T) -> bool) -> T {
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
