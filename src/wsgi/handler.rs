//! Runs one request through the WSGI app: builds the environ, calls the app, has `send.rs` send
//! what it returns, always calls close(), and turns app errors into a 500 (400 for a broken body,
//! 413 past the body limit) or a closed connection. The worker stays alive whatever the app does.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::app::format_error;
use super::environ::{EnvironError, EnvironTemplate};
use super::hooks::{self, RequestHooks};
use super::send::{send_result, SendError};
use super::spares;
use super::start_response::{lock, RequestState, SharedRequest, StartResponse};
use super::streams::{empty_input, InputStream};
use crate::http::body::BodyReader;
use crate::http::response::{reason, HeaderBlock};
use crate::http::{BodyFraming, Exchange, Finished, Handler, RequestHead, ResponseWriter};

/// At most this much unread request body is discarded to keep a connection alive.
const DRAIN_LIMIT: u64 = 1 << 20;

pub struct WsgiHandler {
    app: Py<PyAny>,
    environ: EnvironTemplate,
    hooks: Option<RequestHooks>,
}

impl WsgiHandler {
    pub fn new(app: Py<PyAny>, environ: EnvironTemplate, hooks: Option<RequestHooks>) -> Self {
        WsgiHandler {
            app,
            environ,
            hooks,
        }
    }
}

/// One request as the app call sees it.
#[derive(Clone, Copy)]
struct Request<'a> {
    head: &'a RequestHead,
    peer: &'a crate::http::Peer,
    local: &'a crate::http::Local,
    state: &'a SharedRequest,
}

impl Handler for WsgiHandler {
    fn handle(&self, exchange: Exchange) -> Finished {
        let Exchange {
            head,
            body,
            peer,
            local,
            config,
            last,
        } = exchange;
        let keep_alive = head.keep_alive && !config.close_after_response && !last;
        let mut writer = ResponseWriter::new(
            body.sender(),
            head.version,
            head.method == "HEAD",
            keep_alive,
        );
        if config.hold_small_responses {
            writer.hold_complete_responses();
        }
        let state = RequestState::new(body, writer);
        let request = Request {
            head: &head,
            peer: &peer,
            local: &local,
            state: &state,
        };
        Python::attach(|py| self.run(py, &request));
        match RequestState::into_parts(state) {
            Ok((body, mut response)) => finished(body, &mut response.writer, head),
            Err(state) => {
                let mut response = lock(&state);
                response.ended = true;
                finished(state.input.take(), &mut response.writer, head)
            }
        }
    }
}

/// The connection back, with what the response did.
fn finished(
    body: Option<BodyReader>,
    writer: &mut ResponseWriter,
    head: Box<RequestHead>,
) -> Finished {
    let body = body.expect("the request body is taken back exactly once");
    let (conn, reusable, request_body_bytes) = body.finish(DRAIN_LIMIT);
    Finished {
        conn,
        keep_alive: reusable && writer.keep_alive(),
        held_output: writer.take_held(),
        report: crate::http::Report {
            status: writer.status(),
            body_bytes: writer.body_bytes(),
            request_body_bytes,
            response_headers: writer.take_headers(),
            head,
        },
    }
}

impl WsgiHandler {
    /// Lends the app this thread's callables for the request, and takes back those it let go of.
    fn run(&self, py: Python<'_>, request: &Request<'_>) {
        let Request { head, state, .. } = *request;
        let input = match head.framing {
            BodyFraming::Empty | BodyFraming::Length(0) => empty_input(py),
            BodyFraming::Length(_) | BodyFraming::Chunked => spares::take::<InputStream>(py, state),
        };
        let callables = input.and_then(|input| {
            spares::take::<StartResponse>(py, state).map(|start_response| (input, start_response))
        });
        let (input, start_response) = match callables {
            Ok(callables) => callables,
            Err(error) => return self.app_failed(py, head, state, error),
        };
        let callables = (input.clone_ref(py), start_response.clone_ref(py));
        match &self.hooks {
            None => self.call_app(py, request, callables, None),
            Some(hooks) => self.call_app_with_hooks(py, request, callables, hooks),
        }
        spares::give_back(py, input);
        spares::give_back(py, start_response);
    }

    /// gunicorn's pre_request before the app (an exception fails the request), post_request after
    /// the response, whatever happened.
    fn call_app_with_hooks(
        &self,
        py: Python<'_>,
        request: &Request<'_>,
        callables: (Py<InputStream>, Py<StartResponse>),
        hooks: &RequestHooks,
    ) {
        let (head, state) = (request.head, request.state);
        let req = match hooks::request(py, head) {
            Ok(req) => req,
            Err(error) => return self.app_failed(py, head, state, error),
        };
        let mut environ = None;
        match hooks.pre(py, &req) {
            Ok(()) => self.call_app(py, request, callables, Some(&mut environ)),
            Err(error) => self.app_failed(py, head, state, error),
        }
        if !hooks.has_post() {
            return;
        }
        let (code, status, headers) = {
            let response = lock(state);
            let block = response.writer.headers();
            let status = block.map(|b| b.status_line()).unwrap_or_default();
            let headers = block.map(|b| b.pairs()).unwrap_or_default();
            (response.writer.status(), status, headers)
        };
        let sent = hooks::Sent {
            code,
            status: &status,
            headers: &headers,
        };
        hooks.post(py, &req, environ, &sent);
    }

    /// Calls the app and sends what it returns; the callables come back to `run` once the app
    /// has let go of them. `keep_environ` receives the environ, for post_request.
    fn call_app(
        &self,
        py: Python<'_>,
        request: &Request<'_>,
        (input, start_response): (Py<InputStream>, Py<StartResponse>),
        keep_environ: Option<&mut Option<Py<pyo3::types::PyDict>>>,
    ) {
        let Request {
            head,
            peer,
            local,
            state,
        } = *request;
        let environ = match self.environ.build(py, head, peer, local, input) {
            Ok(environ) => environ,
            Err(EnvironError::BadRequest(why)) => return respond_error(py, state, 400, why),
            Err(EnvironError::Python(error)) => return self.app_failed(py, head, state, error),
        };
        if let Some(slot) = keep_environ {
            *slot = Some(environ.clone().unbind());
        }
        let result = match self.app.call1(py, (environ, start_response)) {
            Ok(result) => result.into_bound(py),
            Err(error) => return self.app_failed(py, head, state, error),
        };
        // The body broke while the app read it: the request is malformed whatever the app made
        // of that (Django answers 500 for its UnreadablePostError), so its response is dropped.
        if let Some(why) = state.input.malformed() {
            if let Err(error) = close_result(&result) {
                log_app_error(py, head, &error);
            }
            return body_failed(py, head, state, why);
        }
        let sent = send_result(py, &result, state);
        let closed = close_result(&result);
        match (sent, closed) {
            (Err(SendError::App(error)), _) | (Ok(()), Err(error)) => {
                self.app_failed(py, head, state, error)
            }
            (Err(SendError::Client(error)), _) => client_gone(state, head, &error),
            (Ok(()), Ok(())) => finish(py, state, head),
        }
    }

    /// The app raised: answer 500 with its traceback in the log (413 if it hit the body limit,
    /// 400 if the body broke), when no header went out yet; else cut the connection so the client
    /// sees a truncated response.
    fn app_failed(&self, py: Python<'_>, head: &RequestHead, state: &SharedRequest, error: PyErr) {
        if let (false, Some(why)) = (state.input.too_large(), state.input.malformed()) {
            tracing::debug!("the app raised\n{}", format_error(py, &error).trim_end());
            return body_failed(py, head, state, why);
        }
        log_app_error(py, head, &error);
        let status = if state.input.too_large() { 413 } else { 500 };
        respond_error(py, state, status, reason(status));
    }
}

fn log_app_error(py: Python<'_>, head: &RequestHead, error: &PyErr) {
    tracing::error!(
        traceback = %format_error(py, error).trim_end(),
        "Error handling request {}",
        head.target
    );
}

/// The client's body was malformed or cut short (found while the app read it): 400, logged as
/// an invalid request, when nothing went out yet (gunicorn 27).
fn body_failed(py: Python<'_>, head: &RequestHead, state: &SharedRequest, why: &str) {
    tracing::info!(
        status = 400,
        "invalid request body in {} {}: {why}",
        head.method,
        head.target
    );
    respond_error(py, state, 400, why);
}

fn respond_error(py: Python<'_>, state: &SharedRequest, status: u16, detail: &str) {
    py.detach(|| {
        let mut state = lock(state);
        state.writer.abort();
        if state.writer.headers_sent() {
            return;
        }
        let body = format!("{}\n", reason(status));
        let block = HeaderBlock::new(&format!("{status} {}", reason(status)))
            .and_then(|mut block| block.push("Content-Type", "text/plain").map(|()| block));
        if let Ok(block) = block {
            state.writer.start(block);
            let _ = state.writer.write(body.as_bytes(), Some(body.len() as u64));
        }
        tracing::debug!(status, "answered with an error: {detail}");
    });
}

fn client_gone(state: &SharedRequest, head: &RequestHead, error: &std::io::Error) {
    tracing::debug!(
        "client went away during {} {}: {error}",
        head.method,
        head.target
    );
    lock(state).writer.abort();
}

fn finish(py: Python<'_>, state: &SharedRequest, head: &RequestHead) {
    match end_response(py, state) {
        Ok(true) => {}
        Ok(false) => {
            tracing::error!(
                "Error handling request {}: the app returned without calling start_response",
                head.target
            );
            respond_error(py, state, 500, "no start_response");
        }
        Err(error) => client_gone(state, head, &error),
    }
}

/// Ends a started response (false: it never started), with the GIL released if that may block.
fn end_response(py: Python<'_>, state: &SharedRequest) -> std::io::Result<bool> {
    let mut response = lock(state);
    if !response.started {
        return Ok(false);
    }
    if response.writer.finish_is_quiet() {
        return response.writer.finish().map(|()| true);
    }
    drop(response);
    py.detach(|| lock(state).writer.finish().map(|()| true))
}

/// PEP 3333: close() is called whatever happened, if the iterable has one.
fn close_result(result: &Bound<'_, PyAny>) -> PyResult<()> {
    if result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>() {
        return Ok(());
    }
    match result.getattr(pyo3::intern!(result.py(), "close")) {
        Ok(close) => close.call0().map(drop),
        Err(_) => Ok(()),
    }
}
