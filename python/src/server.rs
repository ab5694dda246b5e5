//! `insitu.Server`: this process' engine served over TCP and/or a Unix socket.

use std::path::PathBuf;

use insitu::server::{EmbeddedServer, ListenOptions};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::to_py;

/// Serve this process' in-process engine (the one `Client("inproc")` uses) to other
/// processes, for notebooks, tests and Python-driven workflows. Stops on `stop()`, at the
/// end of a `with` block, or when garbage-collected.
#[pyclass(name = "Server", module = "insitu._native")]
pub struct PyServer {
    inner: Mutex<Option<EmbeddedServer>>,
    tcp: Option<std::net::SocketAddr>,
    unix: Option<PathBuf>,
}

fn io_err(e: std::io::Error) -> PyErr {
    to_py(insitu::Error::io("cannot start the server", &e))
}

#[pymethods]
impl PyServer {
    /// `port=0` picks a free port; `port=None` serves no TCP. `unix_socket` is a path
    /// (created owner-only unless `unix_mode` says otherwise).
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=Some(0), unix_socket=None, unix_mode=None))]
    fn new(
        py: Python<'_>,
        host: &str,
        port: Option<u16>,
        unix_socket: Option<PathBuf>,
        unix_mode: Option<u32>,
    ) -> PyResult<Self> {
        let tcp = match port {
            Some(p) => {
                let ip: std::net::IpAddr = host.parse().map_err(|_| {
                    crate::bad_input(format!("host must be an IP address, not {host:?}"))
                })?;
                Some(std::net::SocketAddr::new(ip, p))
            }
            None => None,
        };
        let opts = ListenOptions {
            tcp,
            unix: unix_socket,
            unix_mode,
        };
        let engine = insitu::client::process_engine();
        let server = py
            .detach(|| EmbeddedServer::start(engine, opts))
            .map_err(io_err)?;
        Ok(PyServer {
            tcp: server.tcp_addr(),
            unix: server.unix_path().map(PathBuf::from),
            inner: Mutex::new(Some(server)),
        })
    }

    /// `host:port` of the TCP listener (None without one).
    #[getter]
    fn address(&self) -> Option<String> {
        self.tcp.map(|a| a.to_string())
    }

    /// The TCP port (None without a TCP listener).
    #[getter]
    fn port(&self) -> Option<u16> {
        self.tcp.map(|a| a.port())
    }

    /// `unix:///path` of the Unix socket (None without one).
    #[getter]
    fn unix_address(&self) -> Option<String> {
        self.unix
            .as_ref()
            .map(|p| format!("unix://{}", p.display()))
    }

    /// Whether it is serving.
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().is_some()
    }

    /// Stop accepting, finish the requests already read, close. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.inner.lock().take();
        match s {
            Some(s) => py.detach(|| s.stop()).map_err(io_err),
            None => Ok(()),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.stop(py)
    }

    fn __repr__(&self) -> String {
        let show = |v: Option<String>| v.map_or("None".to_string(), |s| format!("'{s}'"));
        format!(
            "insitu.Server(address={}, unix_address={}, running={})",
            show(self.address()),
            show(self.unix_address()),
            if self.running() { "True" } else { "False" }
        )
    }
}
