//! The access log's JSON object, one per request: `ts`, `remote_ip`, `method`, `path`, `query`,
//! `protocol`, `status`, `size`, `duration_ms`, `referer`, `user_agent`, `request_id`, `pid`,
//! `worker`. It runs for every request, so what stays the same from line to line (the second's
//! timestamp, the pid and worker tail) is kept in a `Template`, and a value that needs no escape
//! is copied whole. Pure text: never writes anywhere.
use super::access::AccessRecord;
use super::json::{push_bytes, push_inner, push_millis, Stamp};
use crate::digits::push_u64;

/// What one access log's lines share: the current second and the `,"pid":..,"worker":..}` tail.
#[derive(Debug, Default)]
pub struct Template {
    stamp: Stamp,
    /// The pid and worker `tail` was made for.
    tail_of: Option<(u32, Option<u32>)>,
    tail: Vec<u8>,
}

impl Template {
    fn push_tail(&mut self, out: &mut Vec<u8>, pid: u32, worker: Option<u32>) {
        if self.tail_of != Some((pid, worker)) {
            self.tail.clear();
            self.tail.extend_from_slice(b",\"pid\":");
            push_u64(&mut self.tail, u64::from(pid));
            self.tail.extend_from_slice(b",\"worker\":");
            match worker {
                Some(worker) => push_u64(&mut self.tail, u64::from(worker)),
                None => self.tail.extend_from_slice(b"null"),
            }
            self.tail.push(b'}');
            self.tail_of = Some((pid, worker));
        }
        out.extend_from_slice(&self.tail);
    }
}

/// One access-log object (without newline), `ts` being when the response ended.
pub fn render_access(out: &mut Vec<u8>, template: &mut Template, r: &AccessRecord<'_>) {
    template.stamp.push(out, r.ended);
    match r.remote_addr {
        "" => out.extend_from_slice(b",\"remote_ip\":null,\"method\":\""),
        remote => {
            out.extend_from_slice(b",\"remote_ip\":\"");
            push_inner(out, remote);
            out.extend_from_slice(b"\",\"method\":\"");
        }
    }
    push_inner(out, r.method);
    out.extend_from_slice(b"\",\"path\":\"");
    push_inner(out, r.path);
    out.extend_from_slice(b"\",\"query\":\"");
    push_inner(out, r.query);
    out.extend_from_slice(b"\",\"protocol\":\"");
    push_inner(out, r.version);
    out.extend_from_slice(b"\",\"status\":");
    push_u64(out, u64::from(r.status));
    out.extend_from_slice(b",\"size\":");
    match r.response_length {
        Some(size) => push_u64(out, size),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"duration_ms\":");
    push_millis(out, r.duration);
    let [referer, agent, request_id] = wanted_headers(r.request_headers);
    out.extend_from_slice(b",\"referer\":");
    or_null(out, referer);
    out.extend_from_slice(b",\"user_agent\":");
    or_null(out, agent);
    out.extend_from_slice(b",\"request_id\":");
    or_null(out, request_id);
    template.push_tail(out, r.pid, r.worker);
}

fn or_null(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => push_bytes(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// The referer, user agent and request id of a request, found in one pass over its headers
/// (their names are upper-case, as the parser stores them).
fn wanted_headers(headers: &[(String, Vec<u8>)]) -> [Option<&[u8]>; 3] {
    const NAMES: [&str; 3] = ["REFERER", "USER-AGENT", "X-REQUEST-ID"];
    let mut found = [None; 3];
    for (name, value) in headers {
        for (slot, wanted) in found.iter_mut().zip(NAMES) {
            if name == wanted {
                *slot = Some(value.as_slice());
            }
        }
    }
    found
}
