//! HTTP/1.1 for one worker: the strict request-head parser, body framing, response framing and the
//! reactor that accepts connections and hands complete request heads to a `Handler`. Never uses
//! wsgi, worker or master.
pub mod parser;
