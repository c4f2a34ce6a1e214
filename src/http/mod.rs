//! HTTP/1.1 for one worker: the strict request-head parser, body framing, response framing and the
//! reactor that accepts connections and hands complete request heads to a `Handler`. Never uses
//! wsgi, worker or master.
pub mod chunked;
mod fields;
mod framing;
pub mod parser;
mod proxy;
pub mod request;
mod request_line;
mod target;

#[cfg(test)]
mod chunked_tests;
#[cfg(test)]
mod conformance_feed;
#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod parser_tests;

pub use chunked::ChunkedDecoder;
pub use parser::parse_head;
pub use request::{BodyFraming, Limits, ParseError, ProxyInfo, RequestHead, Version};
