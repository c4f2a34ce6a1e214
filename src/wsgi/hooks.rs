//! gunicorn's server hooks in this process: the callables the Python config defined, the objects
//! passed to them (server, worker, req, resp, cfg, log: hooks.py's facades) and the calls, each
//! exception logged with its traceback. Decides nothing about when or what a failure means: the
//! master and the worker call these at gunicorn's moments and take the outcome.
use std::sync::{Mutex, OnceLock, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};

use super::app::format_error;
use crate::config::{BindSpec, Settings};
use crate::http::RequestHead;

const CODE: &std::ffi::CStr = pyo3::ffi::c_str!(include_str!("hooks.py"));

struct Registry {
    /// The namespace of the config read last, not yet accepted (a reload may still fail).
    pending: Option<Py<PyDict>>,
    hooks: Vec<(&'static str, Py<PyAny>)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pending: None,
    hooks: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn set_pending(namespace: Py<PyDict>) {
    registry().pending = Some(namespace);
}

/// Makes `names` (checked by config) this process's hooks, taken from the config read last; no
/// names (a TOML config, none at all) leaves none.
pub fn commit(names: &[&'static str]) {
    let pending = registry().pending.take();
    let hooks = match pending {
        Some(namespace) if !names.is_empty() => Python::attach(|py| {
            let namespace = namespace.bind(py);
            let found = names.iter().filter_map(|name| {
                let hook = namespace.get_item(name).ok().flatten()?;
                Some((*name, hook.unbind()))
            });
            found.collect()
        }),
        _ => Vec::new(),
    };
    registry().hooks = hooks;
}

pub fn defined(name: &str) -> bool {
    registry().hooks.iter().any(|(n, _)| *n == name)
}

fn hook(py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
    let registry = registry();
    let (_, hook) = registry.hooks.iter().find(|(n, _)| *n == name)?;
    Some(hook.clone_ref(py))
}

/// How a hook call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NotDefined,
    Returned,
    /// It raised; the traceback is in the error log.
    Raised,
}

/// Calls a hook that takes the server: on_starting, on_reload, when_ready, pre_exec, on_exit.
pub fn call_server(name: &str, server: &ServerView<'_>) -> Outcome {
    call(name, |py| Ok(vec![self::server(py, server)?]))
}

/// Calls a hook that takes the server and a worker: pre_fork, post_fork, child_exit, worker_exit.
pub fn call_server_worker(name: &str, server: &ServerView<'_>, worker: &WorkerView<'_>) -> Outcome {
    call(name, |py| {
        Ok(vec![self::server(py, server)?, self::worker(py, worker)?])
    })
}

/// Calls a hook that takes a worker: post_worker_init, worker_int, worker_abort.
pub fn call_worker(name: &str, worker: &WorkerView<'_>) -> Outcome {
    call(name, |py| Ok(vec![self::worker(py, worker)?]))
}

/// nworkers_changed(server, new_value, old_value); old_value is None at start, as in gunicorn.
pub fn call_nworkers_changed(server: &ServerView<'_>, new: usize, old: Option<usize>) -> Outcome {
    call("nworkers_changed", |py| {
        let new = new.into_pyobject(py)?.into_any();
        let old = old.into_pyobject(py)?;
        Ok(vec![self::server(py, server)?, new, old])
    })
}

/// Calls hook `name` with the arguments `args` builds (only when it is defined).
fn call<F>(name: &str, args: F) -> Outcome
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>,
{
    if !defined(name) {
        return Outcome::NotDefined;
    }
    Python::attach(|py| {
        let Some(hook) = hook(py, name) else {
            return Outcome::NotDefined;
        };
        let called = args(py).and_then(|args| hook.call1(py, PyTuple::new(py, args)?));
        match called {
            Ok(_) => Outcome::Returned,
            Err(error) => {
                log_raised(py, name, &error);
                Outcome::Raised
            }
        }
    })
}

fn log_raised(py: Python<'_>, name: &str, error: &PyErr) {
    let traceback = format_error(py, error);
    tracing::error!("Exception in {name} hook:\n{}", traceback.trim_end());
}

/// The master as a hook sees it (gunicorn's Arbiter).
pub struct ServerView<'a> {
    pub pid: i32,
    pub num_workers: usize,
    pub settings: &'a Settings,
}

/// A worker as a hook sees it; `pid` is None before it is forked (pre_fork).
pub struct WorkerView<'a> {
    pub pid: Option<i32>,
    pub ppid: i32,
    /// gunicorn's spawn counter: larger for younger workers.
    pub age: u64,
    pub alive: bool,
    pub settings: &'a Settings,
}

fn helper(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static HELPER: OnceLock<Py<PyModule>> = OnceLock::new();
    if HELPER.get().is_none() {
        let module = PyModule::from_code(py, CODE, c"rgunicorn_hooks.py", c"rgunicorn_hooks")?;
        let emit = pyo3::wrap_pyfunction!(emit, &module)?;
        module.add("log", module.getattr("Log")?.call1((emit,))?)?;
        let _ = HELPER.set(module.unbind());
    }
    Ok(HELPER.get().expect("set above").bind(py))
}

/// Where hooks' `log.info(...)` lines go: the error log of this process.
#[pyfunction]
fn emit(level: &str, message: &str) {
    match level {
        "debug" => tracing::debug!("{message}"),
        "info" => tracing::info!("{message}"),
        "warning" => tracing::warn!("{message}"),
        "critical" => tracing::error!(target: crate::logging::CRITICAL, "{message}"),
        _ => tracing::error!("{message}"),
    }
}

fn facade<'py>(
    py: Python<'py>,
    kind: &str,
    attrs: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    helper(py)?.getattr("Facade")?.call1((kind, attrs))
}

fn server<'py>(py: Python<'py>, view: &ServerView<'_>) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    attrs.set_item("pid", view.pid)?;
    attrs.set_item("num_workers", view.num_workers)?;
    attrs.set_item("address", address(py, &view.settings.bind)?)?;
    attrs.set_item("cfg", cfg(py, view.settings)?)?;
    attrs.set_item("log", helper(py)?.getattr("log")?)?;
    facade(py, "server", attrs)
}

fn worker<'py>(py: Python<'py>, view: &WorkerView<'_>) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    attrs.set_item("pid", view.pid)?;
    attrs.set_item("ppid", view.ppid)?;
    attrs.set_item("age", view.age)?;
    attrs.set_item("alive", view.alive)?;
    attrs.set_item("cfg", cfg(py, view.settings)?)?;
    attrs.set_item("log", helper(py)?.getattr("log")?)?;
    facade(py, "worker", attrs)
}

/// gunicorn's `cfg.address`: (host, port) for TCP, the path of a unix socket.
fn address<'py>(py: Python<'py>, bind: &[BindSpec]) -> PyResult<Bound<'py, PyList>> {
    let items = bind.iter().map(|spec| match spec {
        BindSpec::Tcp { host, port } => (host.as_str(), *port)
            .into_pyobject(py)
            .map(Bound::into_any),
        BindSpec::Unix(path) => path.into_pyobject(py).map(Bound::into_any),
        BindSpec::Fd(fd) => Ok(format!("fd://{fd}").into_pyobject(py)?.into_any()),
    });
    PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
}

/// The settings as attributes, under gunicorn's names.
fn cfg<'py>(py: Python<'py>, settings: &Settings) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    for (key, value) in settings.toml_entries() {
        match value {
            Some(value) => attrs.set_item(key, toml_to_py(py, &value)?)?,
            None => attrs.set_item(key, py.None())?,
        }
    }
    attrs.set_item("umask", settings.umask)?;
    attrs.set_item("socket_mode", settings.socket_mode)?;
    facade(py, "cfg", attrs)
}

fn toml_to_py<'py>(py: Python<'py>, value: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        toml::Value::String(s) => s.into_pyobject(py)?.into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(f) => f.into_pyobject(py)?.into_any(),
        toml::Value::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any(),
        toml::Value::Array(items) => {
            let items = items.iter().map(|v| toml_to_py(py, v));
            PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        toml::Value::Table(table) => {
            let dict = PyDict::new(py);
            for (k, v) in table {
                dict.set_item(k, toml_to_py(py, v)?)?;
            }
            dict.into_any()
        }
        toml::Value::Datetime(d) => d.to_string().into_pyobject(py)?.into_any(),
    })
}

/// gunicorn's Request as pre_request and post_request see it.
pub fn request<'py>(py: Python<'py>, head: &RequestHead) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    attrs.set_item("method", &head.method)?;
    attrs.set_item("uri", &head.target)?;
    attrs.set_item("path", &head.path)?;
    attrs.set_item("query", &head.query)?;
    attrs.set_item("fragment", &head.fragment)?;
    let version = match head.version {
        crate::http::Version::Http10 => (1, 0),
        crate::http::Version::Http11 => (1, 1),
    };
    attrs.set_item("version", version)?;
    let headers = head
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), super::environ::latin1(py, value)));
    attrs.set_item("headers", PyList::new(py, headers)?)?;
    facade(py, "req", attrs)
}

/// What the app answered, as post_request sees it: its status (code and line) and the headers
/// that went out, latin-1 text as the app gave them.
pub struct Sent<'a> {
    pub code: u16,
    pub status: &'a str,
    pub headers: &'a [(String, String)],
}

/// gunicorn's Response as post_request sees it.
fn response<'py>(py: Python<'py>, sent: &Sent<'_>) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    attrs.set_item("status", sent.status)?;
    attrs.set_item("status_code", sent.code)?;
    attrs.set_item("headers", PyList::new(py, sent.headers)?)?;
    facade(py, "resp", attrs)
}

/// pre_request and post_request, held by a worker's request handler (None when neither is
/// defined, so requests pay nothing for them).
pub struct RequestHooks {
    worker: Py<PyAny>,
    pre: Option<Py<PyAny>>,
    post: Option<Py<PyAny>>,
}

/// The request hooks of this worker, if the config defines any.
pub fn for_requests(worker: &WorkerView<'_>) -> Option<RequestHooks> {
    if !defined("pre_request") && !defined("post_request") {
        return None;
    }
    Python::attach(|py| {
        Some(RequestHooks {
            worker: self::worker(py, worker).ok()?.unbind(),
            pre: hook(py, "pre_request"),
            post: hook(py, "post_request"),
        })
    })
}

impl RequestHooks {
    /// pre_request(worker, req): an exception fails the request (gunicorn answers 500). `req`
    /// is the one post_request gets too, as in gunicorn.
    pub(super) fn pre(&self, py: Python<'_>, req: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(pre) = &self.pre else {
            return Ok(());
        };
        pre.call1(py, (self.worker.clone_ref(py), req)).map(drop)
    }

    pub(super) fn has_post(&self) -> bool {
        self.post.is_some()
    }

    /// post_request(worker, req, environ, resp), after the response; an exception is logged.
    pub(super) fn post(
        &self,
        py: Python<'_>,
        req: &Bound<'_, PyAny>,
        environ: Option<Py<PyDict>>,
        response: &Sent<'_>,
    ) {
        let Some(post) = &self.post else {
            return;
        };
        let called = self::response(py, response)
            .and_then(|resp| post.call1(py, (self.worker.clone_ref(py), req, environ, resp)));
        if let Err(error) = called {
            log_raised(py, "post_request", &error);
        }
    }
}
