//! Spare Python objects for a request's callables (start_response, wsgi.input), one of each per
//! thread: an object the app did not keep is pointed at the next request instead of being freed
//! and made again. Never decides what the callables do.
use std::cell::RefCell;
use std::thread::LocalKey;

use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::False;
use pyo3::PyClass;

use super::start_response::SharedRequest;

/// Where a thread keeps a spare object. At thread exit the object is left to the process rather
/// than dropped: a thread-local destructor runs detached from the interpreter, where a drop can
/// only queue a decref that nothing would carry out.
pub struct SpareSlot<T>(RefCell<Option<Py<T>>>);

impl<T> SpareSlot<T> {
    pub const fn new() -> Self {
        SpareSlot(RefCell::new(None))
    }

    pub fn take(&self) -> Option<Py<T>> {
        self.0.borrow_mut().take()
    }

    pub fn put(&self, object: Py<T>) {
        *self.0.borrow_mut() = Some(object);
    }
}

impl<T> Drop for SpareSlot<T> {
    fn drop(&mut self) {
        if let Some(object) = self.0.get_mut().take() {
            std::mem::forget(object);
        }
    }
}

/// A request callable that can be pointed at another request, or at none between requests.
pub trait Rebind: PyClass<Frozen = False> {
    fn rebind(&mut self, py: Python<'_>, request: Option<&SharedRequest>);
}

/// A request callable kept as a spare per thread.
pub trait Spare: Rebind {
    /// The thread's spare object of this class.
    fn spare() -> &'static LocalKey<SpareSlot<Self>>;
    /// A new object, pointed at no request.
    fn new_unbound(py: Python<'_>) -> PyResult<Py<Self>>;
}

/// An object of class `T` pointed at `request`: the thread's spare one, or a new one.
pub fn take<T: Spare>(py: Python<'_>, request: &SharedRequest) -> PyResult<Py<T>> {
    if let Some(spare) = T::spare().with(SpareSlot::take) {
        if rebind_if_unshared(py, &spare, Some(request)) {
            return Ok(spare);
        }
    }
    let object = T::new_unbound(py)?;
    object.borrow_mut(py).rebind(py, Some(request));
    Ok(object)
}

/// Keeps `object` as the thread's spare when this is its last reference. An object the app kept
/// stays with its request, and reports that request's end when used.
pub fn give_back<T: Spare>(py: Python<'_>, object: Py<T>) {
    if rebind_if_unshared(py, &object, None) {
        T::spare().with(|spare| spare.put(object));
    }
}

/// Points `object` at `request` when `object` is the only reference to it, so no code can be
/// using it or see the change. False, and nothing changed, otherwise.
pub fn rebind_if_unshared<T: Rebind>(
    py: Python<'_>,
    object: &Py<T>,
    request: Option<&SharedRequest>,
) -> bool {
    // pyo3 deprecates this safe read of the count for the unsafe `ffi::Py_REFCNT`, and this
    // layer holds no unsafe code.
    #[allow(deprecated)]
    let count = object.get_refcnt(py);
    if count != 1 {
        return false;
    }
    match object.try_borrow_mut(py) {
        Ok(mut unshared) => {
            unshared.rebind(py, request);
            true
        }
        Err(_) => false,
    }
}
