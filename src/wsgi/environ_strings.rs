//! Per-thread caches of the Python strings the environ is made of (address strings, header keys
//! and repeated header values), so a request rarely creates a string it made before. Bounded, and
//! a client choosing colliding names or ports only makes its own strings anew.
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::environ::latin1;

/// Host and port of an address as Python strings.
type AddressStrings = (SocketAddr, Py<PyString>, Py<PyString>);

/// Slots of the address cache. Direct-mapped on the port, so a lookup needs no hashing and a
/// client choosing colliding ports only costs itself a formatting.
const ADDRESS_SLOTS: usize = 1024;

thread_local! {
    static ADDRESS_STRINGS: RefCell<Vec<Option<AddressStrings>>> =
        RefCell::new((0..ADDRESS_SLOTS).map(|_| None).collect());
}

/// The host and port of an address as Python strings, formatted once per address (a keep-alive
/// client or a listener comes back request after request).
pub(super) fn address_strings(
    py: Python<'_>,
    addr: SocketAddr,
) -> (Bound<'_, PyString>, Bound<'_, PyString>) {
    ADDRESS_STRINGS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let slot = &mut cache[usize::from(addr.port()) % ADDRESS_SLOTS];
        if let Some((cached, ip, port)) = slot {
            if *cached == addr {
                return (ip.bind(py).clone(), port.bind(py).clone());
            }
        }
        let ip = PyString::new(py, &addr.ip().to_string());
        let port = PyString::new(py, &addr.port().to_string());
        *slot = Some((addr, ip.clone().unbind(), port.clone().unbind()));
        (ip, port)
    })
}

/// Header names remembered per thread, and the longest value remembered for each.
const HEADER_SLOTS: usize = 512;
const REMEMBERED_VALUE: usize = 256;

/// A header name's environ key (interned), and the string made for its last value: the same few
/// names come every request, and many values repeat too (Host, User-Agent, Accept).
struct HeaderSlot {
    key: Py<PyString>,
    last_value: Vec<u8>,
    last: Option<Py<PyString>>,
    /// The last request (see `next_request`) that had this header.
    seen_in: u64,
}

impl HeaderSlot {
    fn new(py: Python<'_>, name: &str) -> Self {
        HeaderSlot {
            key: environ_key(py, name).unbind(),
            last_value: Vec::new(),
            last: None,
            seen_in: 0,
        }
    }

    /// The key and value for this field of `request`, and whether the request had the header
    /// before.
    fn item<'py>(
        &mut self,
        py: Python<'py>,
        request: u64,
        value: &[u8],
    ) -> (Bound<'py, PyString>, Bound<'py, PyString>, bool) {
        let repeated = std::mem::replace(&mut self.seen_in, request) == request;
        let key = self.key.bind(py).clone();
        match &self.last {
            Some(last) if self.last_value == value => (key, last.bind(py).clone(), repeated),
            _ => {
                let string = latin1(py, value);
                if value.len() <= REMEMBERED_VALUE {
                    self.last_value.clear();
                    self.last_value.extend_from_slice(value);
                    self.last = Some(string.clone().unbind());
                }
                (key, string, repeated)
            }
        }
    }
}

thread_local! {
    static HEADER_NAMES: RefCell<HashMap<String, HeaderSlot>> = RefCell::new(HashMap::new());
    static REQUESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Numbers this thread's requests, so `header_item` can tell a header's first occurrence.
pub(super) fn next_request() -> u64 {
    REQUESTS.with(|count| {
        count.set(count.get() + 1);
        count.get()
    })
}

/// A header's environ key and value (`name` upper-cased as the parser leaves it), and whether an
/// earlier field of the same `request` may have set the key already (then the values join).
pub(super) fn header_item<'py>(
    py: Python<'py>,
    request: u64,
    name: &str,
    value: &[u8],
) -> (Bound<'py, PyString>, Bound<'py, PyString>, bool) {
    HEADER_NAMES.with(|slots| {
        let mut slots = slots.borrow_mut();
        if let Some(slot) = slots.get_mut(name) {
            return slot.item(py, request, value);
        }
        if slots.len() >= HEADER_SLOTS {
            return (environ_key(py, name), latin1(py, value), true);
        }
        slots
            .entry(name.to_string())
            .or_insert_with(|| HeaderSlot::new(py, name))
            .item(py, request, value)
    })
}

/// `HTTP_` + the name with `-` as `_`; the two CGI names without the prefix.
fn environ_key<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    match name {
        "CONTENT-TYPE" => intern!(py, "CONTENT_TYPE").clone(),
        "CONTENT-LENGTH" => intern!(py, "CONTENT_LENGTH").clone(),
        other => PyString::intern(py, &format!("HTTP_{}", other.replace('-', "_"))),
    }
}
