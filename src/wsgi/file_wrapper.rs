//! wsgi.file_wrapper: iterates any file-like object in blocks, and lets the request runner send
//! a real file with sendfile(2) instead.
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(module = "rgunicorn", name = "FileWrapper")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let empty = data
            .cast::<PyBytes>()
            .map(|b| b.as_bytes().is_empty())
            .unwrap_or(false);
        Ok((!empty).then_some(data))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}

/// The file descriptor and current position of a wrapped real file, when it has one.
pub fn real_file(py: Python<'_>, wrapper: &FileWrapper) -> Option<(i32, u64)> {
    let filelike = wrapper.filelike.bind(py);
    let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
    let offset: u64 = filelike.call_method0("tell").ok()?.extract().ok()?;
    Some((fd, offset))
}
