//! start_response and the write() callable (PEP 3333): records status and headers, enforces the
//! exc_info rules, and writes through the response writer with the GIL released.
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::LocalKey;

use pyo3::exceptions::{PyAssertionError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::spares::{rebind_if_unshared, Rebind, Spare, SpareSlot};
use super::streams::InputShared;
use crate::http::body::BodyReader;
use crate::http::response::{HeaderBlock, ResponseError};
use crate::http::ResponseWriter;

/// The response of one request, shared by start_response, write() and the request runner.
pub struct ResponseState {
    pub writer: ResponseWriter,
    pub started: bool,
    /// The request is over: callables the app kept must not touch the connection any more.
    pub ended: bool,
}

/// What one request's callables (start_response, write(), wsgi.input) share with the runner,
/// in one allocation.
pub struct RequestState {
    pub input: InputShared,
    response: Mutex<ResponseState>,
}

impl RequestState {
    pub fn new(body: BodyReader, writer: ResponseWriter) -> SharedRequest {
        Arc::new(RequestState {
            input: InputShared::new(body),
            response: Mutex::new(ResponseState {
                writer,
                started: false,
                ended: false,
            }),
        })
    }

    /// The body reader and the response when the app kept none of the request's callables, so
    /// they are taken apart without a lock; otherwise the state, still shared.
    pub fn into_parts(
        state: SharedRequest,
    ) -> Result<(Option<BodyReader>, ResponseState), SharedRequest> {
        let state = Arc::try_unwrap(state)?;
        let response = state
            .response
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok((state.input.into_body(), response))
    }
}

pub type SharedRequest = Arc<RequestState>;

pub fn lock(state: &RequestState) -> MutexGuard<'_, ResponseState> {
    state
        .response
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[pyclass(module = "rgunicorn")]
pub struct StartResponse {
    /// None between requests, while the object waits as a spare.
    state: Option<SharedRequest>,
    /// The write() callable last returned, pointed at the next request too unless the app kept it.
    write: Option<Py<Write>>,
}

thread_local! {
    static SPARE_START_RESPONSE: SpareSlot<StartResponse> = const { SpareSlot::new() };
}

impl Spare for StartResponse {
    fn spare() -> &'static LocalKey<SpareSlot<Self>> {
        &SPARE_START_RESPONSE
    }

    fn new_unbound(py: Python<'_>) -> PyResult<Py<Self>> {
        let unbound = StartResponse {
            state: None,
            write: None,
        };
        Py::new(py, unbound)
    }
}

impl Rebind for StartResponse {
    /// Its write() is let go of with the request: `write_callable` points it at the next one.
    fn rebind(&mut self, py: Python<'_>, request: Option<&SharedRequest>) {
        self.state = request.cloned();
        if request.is_some() {
            return;
        }
        if let Some(write) = &self.write {
            if !rebind_if_unshared(py, write, None) {
                self.write = None;
            }
        }
    }
}

impl StartResponse {
    /// The write() callable of this request.
    fn write_callable(&mut self, py: Python<'_>, state: &SharedRequest) -> PyResult<Py<Write>> {
        if let Some(write) = &self.write {
            if rebind_if_unshared(py, write, Some(state)) {
                return Ok(write.clone_ref(py));
            }
        }
        let write = Py::new(
            py,
            Write {
                state: Some(state.clone()),
            },
        )?;
        self.write = Some(write.clone_ref(py));
        Ok(write)
    }
}

/// Validates and renders the app's status and headers without copying them into Rust strings.
fn header_block(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<HeaderBlock> {
    let status = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("status must be a str"))?;
    let mut block = HeaderBlock::new(status.to_str()?).map_err(invalid)?;
    // A list (what apps pass) is read in place, without an iterator object per response.
    if let Ok(list) = headers.cast::<PyList>() {
        for item in list.iter() {
            push_header(&mut block, &item)?;
        }
    } else {
        for item in headers.try_iter()? {
            push_header(&mut block, &item?)?;
        }
    }
    Ok(block)
}

fn invalid(error: ResponseError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// Adds one `(name, value)` item of the app's header list.
fn push_header(block: &mut HeaderBlock, item: &Bound<'_, PyAny>) -> PyResult<()> {
    let not_a_pair = || PyTypeError::new_err("response headers must be (str, str) tuples");
    let pair = item.cast::<PyTuple>().map_err(|_| not_a_pair())?;
    if pair.len() != 2 {
        return Err(not_a_pair());
    }
    let (name, value) = (pair.get_borrowed_item(0)?, pair.get_borrowed_item(1)?);
    let name = name.cast::<PyString>().map_err(|_| not_a_pair())?;
    let value = value.cast::<PyString>().map_err(|_| not_a_pair())?;
    block.push(name.to_str()?, value.to_str()?).map_err(invalid)
}

fn request_over() -> PyErr {
    PyRuntimeError::new_err("the request this callable belongs to is over")
}

/// Re-raises the exception of an exc_info triple.
fn reraise(exc_info: &Bound<'_, PyAny>) -> PyErr {
    match exc_info
        .cast::<PyTuple>()
        .ok()
        .and_then(|t| t.get_item(1).ok())
    {
        Some(value) => PyErr::from_value(value),
        None => PyValueError::new_err("exc_info must be a (type, value, traceback) tuple"),
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &mut self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<Write>> {
        let block = header_block(status, headers)?;
        let with_exc_info = exc_info.is_some_and(|e| !e.is_none());
        let request = self.state.clone().ok_or_else(request_over)?;
        {
            let mut state = lock(&request);
            if state.ended {
                return Err(request_over());
            }
            if with_exc_info && state.writer.headers_sent() {
                return Err(reraise(exc_info.expect("checked above")));
            }
            if state.started && !with_exc_info {
                return Err(PyAssertionError::new_err(
                    "start_response called a second time without exc_info",
                ));
            }
            state.writer.start(block);
            state.started = true;
        }
        self.write_callable(py, &request)
    }
}

/// The legacy write() callable returned by start_response.
#[pyclass(module = "rgunicorn")]
pub struct Write {
    state: Option<SharedRequest>,
}

impl Rebind for Write {
    fn rebind(&mut self, _py: Python<'_>, request: Option<&SharedRequest>) {
        self.state = request.cloned();
    }
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let bytes = data.as_bytes();
        let request = self.state.as_ref().ok_or_else(request_over)?;
        py.detach(|| {
            let mut state = lock(request);
            if state.ended {
                return Err(request_over());
            }
            if !state.started {
                return Err(PyRuntimeError::new_err(
                    "write() called before start_response",
                ));
            }
            state
                .writer
                .write(bytes, None)
                .map_err(|e| PyOSError::new_err(e.to_string()))
        })
    }
}
