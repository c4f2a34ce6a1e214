//! wsgi.input: the request body as a Python file-like object (read, readline, readlines,
//! iteration) streaming from the socket with the GIL released while it waits. Owns no socket: the
//! body reader is lent for one request and taken back afterwards.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::LocalKey;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::spares::{Rebind, Spare, SpareSlot};
use super::start_response::SharedRequest;
use crate::http::body::{BodyError, BodyReader};

/// The body reader shared between wsgi.input and the request runner.
pub struct InputShared {
    body: Mutex<Option<BodyReader>>,
    too_large: AtomicBool,
    /// Why the body turned out malformed or cut short while the app read it, when that was its
    /// first failure (after any failure a reader only says it is cut short).
    malformed: OnceLock<String>,
    failed: AtomicBool,
}

impl InputShared {
    pub fn new(body: BodyReader) -> Self {
        InputShared {
            body: Mutex::new(Some(body)),
            too_large: AtomicBool::new(false),
            malformed: OnceLock::new(),
            failed: AtomicBool::new(false),
        }
    }

    /// Takes the reader back once the app is done; wsgi.input then raises on use.
    pub fn take(&self) -> Option<BodyReader> {
        self.body.lock().ok()?.take()
    }

    /// The reader, when nothing else can use the input any more.
    pub fn into_body(self) -> Option<BodyReader> {
        self.body.into_inner().ok()?
    }

    /// Whether the app hit limit_request_body while reading (the answer is then 413).
    pub fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }

    /// Why the body's framing failed while the app read it: the request, not the app, was at
    /// fault (the answer is then 400).
    pub fn malformed(&self) -> Option<&str> {
        self.malformed.get().map(String::as_str)
    }

    /// Runs `op` on the reader with the GIL released, mapping failures to Python errors.
    fn with_body(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&mut BodyReader, &mut Vec<u8>) -> Result<(), BodyError> + Send,
    ) -> PyResult<Vec<u8>> {
        let result = py.detach(|| {
            let mut guard = self.body.lock().map_err(|_| None)?;
            let body = guard.as_mut().ok_or(None)?;
            let mut out = Vec::new();
            op(body, &mut out).map(|()| out).map_err(Some)
        });
        result.map_err(|error| match error {
            None => finished_body(),
            Some(error) => {
                let first = !self.failed.swap(true, Ordering::Relaxed);
                match &error {
                    BodyError::TooLarge(_) => self.too_large.store(true, Ordering::Relaxed),
                    BodyError::Parse(_) | BodyError::Truncated if first => {
                        let _ = self.malformed.set(error.to_string());
                    }
                    _ => {}
                }
                PyOSError::new_err(error.to_string())
            }
        })
    }
}

fn finished_body() -> PyErr {
    PyValueError::new_err("I/O operation on a finished request body")
}

/// A negative or missing size means "no limit", as in io.RawIOBase.
fn limit(size: Option<isize>) -> usize {
    match size {
        Some(n) if n >= 0 => n as usize,
        _ => usize::MAX,
    }
}

fn read_exact_or_eof(
    body: &mut BodyReader,
    want: usize,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    while out.len() < want {
        let chunk = (want - out.len()).min(1 << 20);
        if body.read(chunk, out)? == 0 {
            break;
        }
    }
    Ok(())
}

#[pyclass(module = "rgunicorn", name = "Input")]
pub struct InputStream {
    /// None between requests, while the object waits as a spare.
    shared: Option<SharedRequest>,
    /// Reads as an empty body: the thread's one input for requests without a body.
    empty: bool,
}

thread_local! {
    static SPARE_INPUT: SpareSlot<InputStream> = const { SpareSlot::new() };
    static EMPTY_INPUT: SpareSlot<InputStream> = const { SpareSlot::new() };
}

/// The wsgi.input of a request without a body. It is one object per thread, never pointed at a
/// request, so every read, during the request or after, finds an empty body (as gunicorn's
/// does).
pub fn empty_input(py: Python<'_>) -> PyResult<Py<InputStream>> {
    EMPTY_INPUT.with(|slot| {
        let empty = match slot.take() {
            Some(empty) => empty,
            None => Py::new(
                py,
                InputStream {
                    shared: None,
                    empty: true,
                },
            )?,
        };
        slot.put(empty.clone_ref(py));
        Ok(empty)
    })
}

impl Spare for InputStream {
    fn spare() -> &'static LocalKey<SpareSlot<Self>> {
        &SPARE_INPUT
    }

    fn new_unbound(py: Python<'_>) -> PyResult<Py<Self>> {
        Py::new(
            py,
            InputStream {
                shared: None,
                empty: false,
            },
        )
    }
}

impl Rebind for InputStream {
    fn rebind(&mut self, _py: Python<'_>, request: Option<&SharedRequest>) {
        self.shared = request.cloned();
    }
}

impl InputStream {
    fn with_body(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&mut BodyReader, &mut Vec<u8>) -> Result<(), BodyError> + Send,
    ) -> PyResult<Vec<u8>> {
        match &self.shared {
            Some(shared) => shared.input.with_body(py, op),
            None if self.empty => Ok(Vec::new()),
            None => Err(finished_body()),
        }
    }

    fn line(&self, py: Python<'_>, max: usize) -> PyResult<Vec<u8>> {
        self.with_body(py, |body, out| body.read_line(max, out).map(drop))
    }
}

#[pymethods]
impl InputStream {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = limit(size);
        let data = self.with_body(py, |body, out| read_exact_or_eof(body, want, out))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.line(py, limit(size))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = limit(hint);
        let mut lines = Vec::new();
        let mut total = 0usize;
        while total < hint || hint == 0 {
            let line = self.line(py, usize::MAX)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.push(PyBytes::new(py, &line));
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.line(py, usize::MAX)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
