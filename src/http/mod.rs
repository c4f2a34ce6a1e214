//! HTTP/1.1 for one worker: the strict request-head parser, body framing, response framing and the
//! reactor that accepts connections and hands complete request heads to a `Handler`. Never uses
//! wsgi, worker or master.
mod acceptor;
mod app_headers;
pub mod body;
mod buffers;
pub mod chunked;
pub mod conn;
pub mod date;
mod fields;
mod framing;
mod head_read;
mod outbox;
pub mod parser;
mod peers;
pub mod prefetch;
pub mod proxy;
pub mod request;
mod request_line;
pub mod response;
pub mod server;
mod target;

#[cfg(test)]
mod chunked_tests;
#[cfg(test)]
mod conformance_feed;
#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod rules_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use body::BodyReader;
pub use chunked::ChunkedDecoder;
pub use conn::{ConnIo, Stream};
pub use parser::{parse_head, parse_head_into};
pub use peers::TrustedPeers;
pub use request::{
    BodyFraming, HeadRules, Limits, ParseError, ProxyInfo, ProxyPolicy, RequestHead, Version,
};
pub use response::{ResponseError, ResponseWriter};
pub use server::{serve, PoolJob, Runner, ServeConfig};

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    Tcp(SocketAddr),
    /// Unix-socket peers have no address; gunicorn reports them as an empty REMOTE_ADDR.
    Unix,
}

/// The listening address a connection arrived on, for SERVER_NAME / SERVER_PORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Tcp(SocketAddr),
    /// Shared: every request on the socket carries it.
    Unix(Arc<str>),
}

/// Per-request settings fixed for the worker's life.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeConfig {
    /// Deadline for each blocking read or write while a request runs.
    pub io_timeout: Duration,
    /// 0 = unlimited; the reactor applies it when it makes the request's `BodyReader`.
    pub limit_request_body: u64,
    /// `sync` semantics: `Connection: close` after every response.
    pub close_after_response: bool,
    /// Small complete responses come back in `Finished::held_output` for the reactor to send
    /// (only when requests run inline on the reactor thread).
    pub hold_small_responses: bool,
}

/// One request handed to a `Handler`: the parsed head, its body (which holds the connection, with
/// any bytes already read past the head), and where it came from.
pub struct Exchange {
    pub head: Box<RequestHead>,
    pub body: BodyReader,
    pub peer: Peer,
    pub local: Local,
    pub config: ExchangeConfig,
    /// This is the connection's last request (the worker is stopping): answer with
    /// `Connection: close` so the client never sends another one into a closing socket.
    pub last: bool,
}

/// What a `Handler` gives back: the connection (holding any bytes read past this request, for
/// pipelining), whether it may serve another request, and what happened, for the access log.
pub struct Finished {
    pub conn: ConnIo,
    pub keep_alive: bool,
    /// A complete response not yet sent (see `ExchangeConfig::hold_small_responses`).
    pub held_output: Vec<u8>,
    pub report: Report,
}

/// The request and the response's status line facts, for logging.
pub struct Report {
    /// Handed back to the connection for its next request (see `parse_head_into`).
    pub head: Box<RequestHead>,
    pub status: u16,
    pub body_bytes: u64,
    /// Request body bytes read (by the app, and drained after it).
    pub request_body_bytes: u64,
    /// The app's status and headers as sent (None when the app never started a response).
    pub response_headers: Option<response::HeaderBlock>,
}

/// Runs one request to completion on the calling thread, blocking on the socket as needed.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, exchange: Exchange) -> Finished;
}
