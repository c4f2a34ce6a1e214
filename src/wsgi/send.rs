//! Sends what the app returned: the list fast path, sendfile for file wrappers, any other
//! iterable item by item, with the GIL released while a write may block. Never calls close() or
//! decides the status of a failure: the handler does both.
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::file_wrapper::{real_file, FileWrapper};
use super::start_response::{lock, SharedRequest};

/// Why sending the app's response stopped early.
pub(super) enum SendError {
    App(PyErr),
    Client(std::io::Error),
}

impl From<PyErr> for SendError {
    fn from(error: PyErr) -> Self {
        SendError::App(error)
    }
}

pub(super) fn send_result(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    state: &SharedRequest,
) -> Result<(), SendError> {
    if let Ok(list) = result.cast::<PyList>() {
        if list.len() == 1 {
            // The common `[body]`: no list of items to build.
            let item = list.get_item(0)?;
            let body = as_body_bytes(&item)?.as_bytes();
            return send_parts(py, &[body], state);
        }
        return send_sequence(py, list.iter().collect(), state);
    }
    if let Ok(tuple) = result.cast::<PyTuple>() {
        return send_sequence(py, tuple.iter().collect(), state);
    }
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        if let Some(sent) = send_wrapped_file(py, &wrapper.borrow(), state) {
            return sent;
        }
    }
    for item in result.try_iter()? {
        let item = item?;
        let chunk = as_body_bytes(&item)?;
        write_chunk(py, state, chunk.as_bytes(), None)?;
    }
    Ok(())
}

fn as_body_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "response body items must be bytes, not {}",
            item.get_type()
        ))
    })
}

/// A list or tuple holds the whole body: its length becomes Content-Length and head plus body go
/// out in one writev.
fn send_sequence(
    py: Python<'_>,
    items: Vec<Bound<'_, PyAny>>,
    state: &SharedRequest,
) -> Result<(), SendError> {
    let parts = items
        .iter()
        .map(|item| as_body_bytes(item).map(|chunk| chunk.as_bytes()))
        .collect::<PyResult<Vec<&[u8]>>>()?;
    send_parts(py, &parts, state)
}

/// Sends a whole body.
fn send_parts(py: Python<'_>, parts: &[&[u8]], state: &SharedRequest) -> Result<(), SendError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total == 0 {
        return Ok(());
    }
    write_parts(py, state, parts, Some(total as u64))
}

fn write_chunk(
    py: Python<'_>,
    state: &SharedRequest,
    data: &[u8],
    known_total: Option<u64>,
) -> Result<(), SendError> {
    if data.is_empty() {
        return Ok(());
    }
    write_parts(py, state, &[data], known_total)
}

/// Writes body bytes of a started response, with the GIL released unless the writer only holds
/// the response in memory.
fn write_parts(
    py: Python<'_>,
    state: &SharedRequest,
    parts: &[&[u8]],
    known_total: Option<u64>,
) -> Result<(), SendError> {
    let mut response = lock(state);
    if !response.started {
        return Err(SendError::App(PyRuntimeError::new_err(
            "the app returned a body before calling start_response",
        )));
    }
    let sent = if response.writer.would_hold(parts, known_total) {
        response.writer.write_parts(parts, known_total)
    } else {
        drop(response);
        py.detach(|| lock(state).writer.write_parts(parts, known_total))
    };
    sent.map_err(SendError::Client)
}

/// sendfile(2) for a wrapped real file; None means "iterate it instead" (no fileno, not a regular
/// file, or a response that would need chunking).
fn send_wrapped_file(
    py: Python<'_>,
    wrapper: &FileWrapper,
    state: &SharedRequest,
) -> Option<Result<(), SendError>> {
    let ready = {
        let state = lock(state);
        state.started && state.writer.can_send_file()
    };
    if !ready {
        return None;
    }
    let (fd, offset) = real_file(py, wrapper)?;
    let (file, size) = crate::http::conn::dup_regular_file(fd)?;
    let count = size.saturating_sub(offset);
    Some(
        py.detach(|| lock(state).writer.send_file(&file, offset, count))
            .map_err(SendError::Client),
    )
}
