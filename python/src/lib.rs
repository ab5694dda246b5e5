//! `insitu._native`: the Rust side of the `insitu` Python package.
//!
//! Everything a Python user calls is here — [`client::PyClient`], [`dataset::PyDataset`],
//! [`server::PyServer`] — over the same [`insitu::Client`] the C, C++ and Fortran bindings
//! use. Arrays cross the boundary as numpy arrays ([`array`]): borrowed while a call needs
//! them, copied once when they are kept. The GIL is released around every call that does
//! I/O, waits, copies large buffers or runs a model. Errors become the exception classes of
//! `insitu.errors`, chosen by their stable error code, with the message kept verbatim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

mod array;
mod client;
mod dataset;
mod server;

/// Counts the bytes this module allocates, so the tests can prove which calls copy a
/// tensor and which do not (one relaxed atomic add per allocation).
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            ALLOCATED.fetch_add((new_size - layout.size()) as u64, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated by the native module since it was loaded (a diagnostic for tests).
#[pyfunction]
fn _allocated_bytes() -> u64 {
    ALLOCATED.load(Ordering::Relaxed)
}

/// The exception for an insitu error: the class `insitu.errors.CODES` holds for its code
/// (`insitu.errors.NotFound`, ...), with the message as the server or library wrote it.
pub(crate) fn to_py(e: insitu::Error) -> PyErr {
    static CODES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Python::attach(|py| {
        let class = CODES
            .get_or_try_init(py, || {
                py.import("insitu.errors")
                    .and_then(|m| m.getattr("CODES"))
                    .map(Bound::unbind)
            })
            .and_then(|codes| codes.bind(py).get_item(e.code() as u32));
        match class.and_then(|c| c.call1((e.text().to_string(), e.code() as u32))) {
            Ok(value) => PyErr::from_value(value),
            Err(err) => err,
        }
    })
}

/// `Result` of insitu into `PyResult`.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for insitu::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A `BadInput` exception with `ERR <msg>`.
pub(crate) fn bad_input(msg: impl AsRef<str>) -> PyErr {
    to_py(insitu::Error::bad_input(msg))
}

/// Run the `insitu` command line (`argv`: the program name first) in this process:
/// `insitu serve`, `insitu cluster start`, or redis-server's command line. Returns the exit
/// status; the GIL is released while the server runs.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.into_iter().map(std::ffi::OsString::from).collect();
    let code = py.detach(|| insitu::server::cli::main(args));
    if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<dataset::PyDataset>()?;
    m.add_class::<server::PyServer>()?;
    m.add_class::<array::TensorBuffer>()?;
    m.add_function(wrap_pyfunction!(_allocated_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    // The stable error codes by name, from the Rust enum: insitu.errors reads its
    // classes' codes from here.
    let codes = pyo3::types::PyDict::new(m.py());
    for c in insitu::ErrorCode::ALL {
        codes.set_item(c.name(), c as u32)?;
    }
    m.add("ERROR_CODES", codes)?;
    Ok(())
}
