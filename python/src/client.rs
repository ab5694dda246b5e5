//! `insitu.Client`: the whole client API with numpy arrays in and out.
//!
//! Method names and arguments follow the SmartRedis Python client, so a script moves over
//! by changing its import; `infer`, `copy=False` gets and the `inproc` address are what
//! insitu adds.

use insitu::client::{Address, KeyPrefixes};
use insitu::{Client, ModelOptions, Tensor};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::array::{copy_into, frame_to_py, tensor_from_py, tensor_to_py, Use};
use crate::dataset::PyDataset;
use crate::{bad_input, to_py, IntoPy};

/// A connection to insitu: `inproc` (this process' engine), `unix:///path`,
/// `tcp://host:port` or `host:port`; by default the address in `SSDB` (or
/// `INSITU_ADDRESS`), with ensemble prefixes from `SSKEYOUT` / `SSKEYIN`.
#[pyclass(name = "Client", module = "insitu._native")]
pub struct PyClient {
    inner: Mutex<Option<Client>>,
    address: String,
    inproc: bool,
}

/// Names given as one string or a sequence of strings.
fn names(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.extract::<String>() {
        return Ok(vec![s]);
    }
    obj.extract::<Vec<String>>()
        .map_err(|_| bad_input("expected a str or a sequence of str"))
}

impl PyClient {
    /// Run `f` on the client with the GIL released.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Client) -> insitu::Result<R> + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut guard = self.inner.lock();
            match guard.as_mut() {
                Some(c) => f(c),
                None => Err(insitu::Error::err(
                    insitu::ErrorCode::Io,
                    "the client is closed",
                )),
            }
        })
        .py_err()
    }

    /// How a put uses its array: in process the store keeps it (copy once); over a
    /// socket it is only read during the call (borrowed).
    fn put_use(&self) -> Use {
        if self.inproc {
            Use::Keep
        } else {
            Use::Call
        }
    }
}

fn model_options(
    backend: &str,
    device: &str,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout: u64,
    tag: &str,
) -> ModelOptions {
    ModelOptions {
        backend: backend.to_string(),
        device: device.to_string(),
        tag: tag.to_string(),
        batch_size,
        min_batch_size,
        min_batch_timeout_ms: min_batch_timeout,
    }
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (address=None, *, key_in=None, key_out=None, shared_memory=None, password=None))]
    fn new(
        py: Python<'_>,
        address: Option<String>,
        key_in: Option<&Bound<'_, PyAny>>,
        key_out: Option<String>,
        shared_memory: Option<bool>,
        password: Option<String>,
    ) -> PyResult<Self> {
        let key_in = match key_in {
            None => std::env::var("SSKEYIN").ok(),
            Some(k) => Some(names(k)?.join(",")),
        };
        let key_out = key_out.or_else(|| std::env::var("SSKEYOUT").ok());
        let client = py
            .detach(|| -> insitu::Result<Client> {
                let addr = match address.as_deref() {
                    Some(a) => Address::parse(a)?,
                    None => Address::from_env()?,
                };
                let keys = KeyPrefixes::new(key_out.as_deref(), key_in.as_deref())?;
                let mut c = Client::connect_to(addr, keys)?;
                if let Some(p) = password.as_deref() {
                    c.auth(p)?;
                }
                if let Some(on) = shared_memory {
                    c.set_shared_memory(on)?;
                }
                Ok(c)
            })
            .py_err()?;
        let inproc = client.engine().is_some();
        Ok(PyClient {
            address: client.address().to_string(),
            inner: Mutex::new(Some(client)),
            inproc,
        })
    }

    /// The address this client is connected to.
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    /// Whether large tensors travel through shared memory (Unix sockets only).
    #[getter]
    fn shared_memory(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |c| Ok(c.shared_memory()))
    }

    /// Close the connection (later calls raise `insitu.Io`). Idempotent.
    fn close(&self, py: Python<'_>) {
        let c = py.detach(|| self.inner.lock().take());
        drop(c);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) {
        self.close(py);
    }

    fn __repr__(&self) -> String {
        format!("insitu.Client({:?})", self.address)
    }

    /// Authenticate (`AUTH`).
    fn auth(&self, py: Python<'_>, password: String) -> PyResult<()> {
        self.with(py, |c| c.auth(&password))
    }

    /// Send any command; the reply as bytes / int / None / list.
    #[pyo3(signature = (*args))]
    fn command<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(args.len());
        for a in args.iter() {
            if let Ok(b) = a.cast::<PyBytes>() {
                parts.push(b.as_bytes().to_vec());
            } else {
                parts.push(a.str()?.to_str()?.as_bytes().to_vec());
            }
        }
        let frame = self.with(py, |c| c.command(&parts))?;
        frame_to_py(py, frame)
    }

    // ----- tensors -----

    /// Store an array (any dtype numpy has an insitu type for, any memory order).
    fn put_tensor(&self, py: Python<'_>, name: String, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = tensor_from_py(py, data, self.put_use())?;
        self.with(py, |c| c.put_tensor(&name, &t))
    }

    /// Fetch a tensor as a numpy array. `copy=False` may return a read-only view of the
    /// stored bytes (no copy at all in process).
    #[pyo3(signature = (name, copy=true))]
    fn get_tensor<'py>(
        &self,
        py: Python<'py>,
        name: String,
        copy: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self.with(py, |c| c.get_tensor(&name))?;
        tensor_to_py(py, t, copy)
    }

    /// Fetch a tensor into `out` (a writable C-contiguous array of its dtype and size).
    fn unpack_tensor(&self, py: Python<'_>, name: String, out: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = self.with(py, |c| c.get_tensor(&name))?;
        copy_into(py, &t, out, &name)
    }

    fn delete_tensor(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with(py, |c| c.delete_tensor(&name))
    }

    fn copy_tensor(&self, py: Python<'_>, src_name: String, dest_name: String) -> PyResult<()> {
        self.with(py, |c| c.copy_tensor(&src_name, &dest_name))
    }

    fn rename_tensor(&self, py: Python<'_>, old_name: String, new_name: String) -> PyResult<()> {
        self.with(py, |c| c.rename_tensor(&old_name, &new_name))
    }

    fn tensor_exists(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        self.with(py, |c| c.tensor_exists(&name))
    }

    /// Whether a key exists, exactly as named (no prefix).
    fn key_exists(&self, py: Python<'_>, key: String) -> PyResult<bool> {
        self.with(py, |c| c.key_exists(&key))
    }

    /// Wait until the tensor exists: up to `num_tries` waits of `poll_frequency_ms`. The
    /// wait ends as soon as it is put (a notification, not a poll).
    fn poll_tensor(
        &self,
        py: Python<'_>,
        name: String,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| c.poll_tensor(&name, poll_frequency_ms, num_tries))
    }

    fn poll_key(
        &self,
        py: Python<'_>,
        key: String,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| c.poll_key(&key, poll_frequency_ms, num_tries))
    }

    // ----- datasets -----

    fn put_dataset(&self, py: Python<'_>, dataset: PyRef<'_, PyDataset>) -> PyResult<()> {
        let ds = dataset.inner.clone();
        self.with(py, |c| c.put_dataset(&ds))
    }

    fn get_dataset(&self, py: Python<'_>, name: String) -> PyResult<PyDataset> {
        let ds = self.with(py, |c| c.get_dataset(&name))?;
        Ok(PyDataset { inner: ds })
    }

    fn delete_dataset(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with(py, |c| c.delete_dataset(&name))
    }

    fn copy_dataset(&self, py: Python<'_>, src_name: String, dest_name: String) -> PyResult<()> {
        self.with(py, |c| c.copy_dataset(&src_name, &dest_name))
    }

    fn rename_dataset(&self, py: Python<'_>, old_name: String, new_name: String) -> PyResult<()> {
        self.with(py, |c| c.rename_dataset(&old_name, &new_name))
    }

    fn dataset_exists(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        self.with(py, |c| c.dataset_exists(&name))
    }

    fn poll_dataset(
        &self,
        py: Python<'_>,
        name: String,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| c.poll_dataset(&name, poll_frequency_ms, num_tries))
    }

    // ----- aggregation lists -----

    /// Append a dataset, already stored with `put_dataset`, to a list (SmartRedis
    /// `append_to_list`: the list holds its name).
    fn append_to_list(
        &self,
        py: Python<'_>,
        list_name: String,
        dataset: PyRef<'_, PyDataset>,
    ) -> PyResult<()> {
        let ds = dataset.inner.clone();
        self.with(py, |c| c.append_to_list(&list_name, &ds))
    }

    fn get_list_length(&self, py: Python<'_>, list_name: String) -> PyResult<usize> {
        self.with(py, |c| c.get_list_length(&list_name))
    }

    fn poll_list_length(
        &self,
        py: Python<'_>,
        list_name: String,
        list_length: usize,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| {
            c.poll_list_length(&list_name, list_length, poll_frequency_ms, num_tries)
        })
    }

    fn poll_list_length_gte(
        &self,
        py: Python<'_>,
        list_name: String,
        list_length: usize,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| {
            c.poll_list_length_gte(&list_name, list_length, poll_frequency_ms, num_tries)
        })
    }

    fn poll_list_length_lte(
        &self,
        py: Python<'_>,
        list_name: String,
        list_length: usize,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| {
            c.poll_list_length_lte(&list_name, list_length, poll_frequency_ms, num_tries)
        })
    }

    fn get_datasets_from_list(
        &self,
        py: Python<'_>,
        list_name: String,
    ) -> PyResult<Vec<PyDataset>> {
        let v = self.with(py, |c| c.get_datasets_from_list(&list_name))?;
        Ok(v.into_iter().map(|inner| PyDataset { inner }).collect())
    }

    /// Datasets `start_index..=end_index` of a list (negative indices count from the end).
    fn get_dataset_list_range(
        &self,
        py: Python<'_>,
        list_name: String,
        start_index: i64,
        end_index: i64,
    ) -> PyResult<Vec<PyDataset>> {
        let v = self.with(py, |c| {
            c.get_dataset_list_range(&list_name, start_index, end_index)
        })?;
        Ok(v.into_iter().map(|inner| PyDataset { inner }).collect())
    }

    fn delete_list(&self, py: Python<'_>, list_name: String) -> PyResult<()> {
        self.with(py, |c| c.delete_list(&list_name))
    }

    fn copy_list(&self, py: Python<'_>, src_name: String, dest_name: String) -> PyResult<()> {
        self.with(py, |c| c.copy_list(&src_name, &dest_name))
    }

    fn rename_list(&self, py: Python<'_>, src_name: String, dest_name: String) -> PyResult<()> {
        self.with(py, |c| c.rename_list(&src_name, &dest_name))
    }

    // ----- models -----

    /// Store an ONNX model from its bytes. `batch_size > 0` turns on dynamic batching.
    #[pyo3(signature = (name, model, backend="ONNX", device="CPU", batch_size=0, min_batch_size=0, min_batch_timeout=0, tag=""))]
    #[allow(clippy::too_many_arguments)]
    fn set_model(
        &self,
        py: Python<'_>,
        name: String,
        model: &[u8],
        backend: &str,
        device: &str,
        batch_size: usize,
        min_batch_size: usize,
        min_batch_timeout: u64,
        tag: &str,
    ) -> PyResult<()> {
        let opts = model_options(
            backend,
            device,
            batch_size,
            min_batch_size,
            min_batch_timeout,
            tag,
        );
        self.with(py, |c| c.set_model(&name, model, &opts))
    }

    /// Store an ONNX model from a file.
    #[pyo3(signature = (name, model_file, backend="ONNX", device="CPU", batch_size=0, min_batch_size=0, min_batch_timeout=0, tag=""))]
    #[allow(clippy::too_many_arguments)]
    fn set_model_from_file(
        &self,
        py: Python<'_>,
        name: String,
        model_file: std::path::PathBuf,
        backend: &str,
        device: &str,
        batch_size: usize,
        min_batch_size: usize,
        min_batch_timeout: u64,
        tag: &str,
    ) -> PyResult<()> {
        let opts = model_options(
            backend,
            device,
            batch_size,
            min_batch_size,
            min_batch_timeout,
            tag,
        );
        self.with(py, |c| c.set_model_from_file(&name, &model_file, &opts))
    }

    /// The stored model's bytes.
    fn get_model<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.with(py, |c| c.get_model(&name))?;
        Ok(PyBytes::new(py, &b))
    }

    fn delete_model(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with(py, |c| c.delete_model(&name))
    }

    fn model_exists(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        self.with(py, |c| c.model_exists(&name))
    }

    fn poll_model(
        &self,
        py: Python<'_>,
        name: String,
        poll_frequency_ms: u64,
        num_tries: u32,
    ) -> PyResult<bool> {
        self.with(py, |c| c.poll_model(&name, poll_frequency_ms, num_tries))
    }

    /// Run a model on stored tensors, storing its outputs (`AI.MODELEXECUTE`).
    fn run_model(
        &self,
        py: Python<'_>,
        name: String,
        inputs: &Bound<'_, PyAny>,
        outputs: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let ins = names(inputs)?;
        let outs = names(outputs)?;
        self.with(py, |c| {
            let i: Vec<&str> = ins.iter().map(String::as_str).collect();
            let o: Vec<&str> = outs.iter().map(String::as_str).collect();
            c.run_model(&name, &i, &o)
        })
    }

    /// A model's input and output names, in order.
    fn model_io(&self, py: Python<'_>, name: String) -> PyResult<(Vec<String>, Vec<String>)> {
        self.with(py, |c| c.model_io(&name))
    }

    /// Run a model on arrays and return its outputs by name, storing nothing. `inputs` is
    /// a dict by input name, a sequence in input order, or one array.
    #[pyo3(signature = (name, inputs, copy=true))]
    fn infer<'py>(
        &self,
        py: Python<'py>,
        name: String,
        inputs: &Bound<'py, PyAny>,
        copy: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (in_names, out_names) = self.with(py, |c| c.model_io(&name))?;
        let mut tensors: Vec<Tensor> = Vec::with_capacity(in_names.len());
        if let Ok(d) = inputs.cast::<PyDict>() {
            for k in d.keys() {
                let k: String = k.extract()?;
                if !in_names.contains(&k) {
                    return Err(bad_input(format!(
                        "model '{name}' has no input '{k}' (inputs: {})",
                        in_names.join(", ")
                    )));
                }
            }
            for n in &in_names {
                let v = d
                    .get_item(n)?
                    .ok_or_else(|| bad_input(format!("missing input '{n}' of model '{name}'")))?;
                tensors.push(tensor_from_py(py, &v, Use::Call)?);
            }
        } else if inputs.cast::<PyList>().is_ok() || inputs.cast::<PyTuple>().is_ok() {
            for v in inputs.try_iter()? {
                tensors.push(tensor_from_py(py, &v?, Use::Call)?);
            }
        } else {
            tensors.push(tensor_from_py(py, inputs, Use::Call)?);
        }
        let outs = self.with(py, |c| c.infer(&name, &tensors))?;
        drop(tensors);
        let d = PyDict::new(py);
        for (n, t) in out_names.iter().zip(outs) {
            d.set_item(n, tensor_to_py(py, t, copy)?)?;
        }
        Ok(d)
    }

    /// A model's run statistics: duration (us), samples, calls, errors, runs.
    fn model_info<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyDict>> {
        let i = self.with(py, |c| c.model_info(&name))?;
        let d = PyDict::new(py);
        d.set_item("duration", i.duration_us)?;
        d.set_item("samples", i.samples)?;
        d.set_item("calls", i.calls)?;
        d.set_item("errors", i.errors)?;
        d.set_item("runs", i.runs)?;
        Ok(d)
    }

    fn reset_model_info(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with(py, |c| c.reset_model_info(&name))
    }

    // ----- ensemble prefixes -----

    /// Read with the prefix of another ensemble member (one of `key_in`).
    fn set_data_source(&self, py: Python<'_>, source_id: String) -> PyResult<()> {
        self.with(py, |c| c.set_data_source(&source_id))
    }

    fn use_tensor_ensemble_prefix(&self, py: Python<'_>, use_prefix: bool) -> PyResult<()> {
        self.with(py, |c| {
            c.prefixes().tensors = use_prefix;
            Ok(())
        })
    }

    fn use_dataset_ensemble_prefix(&self, py: Python<'_>, use_prefix: bool) -> PyResult<()> {
        self.with(py, |c| {
            c.prefixes().datasets = use_prefix;
            Ok(())
        })
    }

    fn use_list_ensemble_prefix(&self, py: Python<'_>, use_prefix: bool) -> PyResult<()> {
        self.with(py, |c| {
            c.prefixes().lists = use_prefix;
            Ok(())
        })
    }

    fn use_model_ensemble_prefix(&self, py: Python<'_>, use_prefix: bool) -> PyResult<()> {
        self.with(py, |c| {
            c.prefixes().models = use_prefix;
            Ok(())
        })
    }

    // ----- server -----

    /// `INFO [section]` as `{section: {key: value}}`.
    #[pyo3(signature = (section="everything"))]
    fn info<'py>(&self, py: Python<'py>, section: &str) -> PyResult<Bound<'py, PyDict>> {
        let section = section.to_string();
        let triples = self.with(py, |c| c.info(&section))?;
        let out = PyDict::new(py);
        for (s, k, v) in triples {
            let sec = match out.get_item(&s)? {
                Some(d) => d.cast_into::<PyDict>()?,
                None => {
                    let d = PyDict::new(py);
                    out.set_item(&s, &d)?;
                    d
                }
            };
            sec.set_item(k, v)?;
        }
        Ok(out)
    }

    /// Remove every key.
    fn flush_db(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |c| c.flush_db())
    }

    /// Write a snapshot to the server's configured directory.
    fn save(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |c| c.save())
    }

    /// `CONFIG GET pattern` as a dict.
    fn config_get<'py>(&self, py: Python<'py>, pattern: String) -> PyResult<Bound<'py, PyDict>> {
        let f = self.with(py, |c| c.command(&["CONFIG", "GET", pattern.as_str()]))?;
        let d = PyDict::new(py);
        if let insitu::protocol::resp::Frame::Array(items) = f {
            for pair in items.chunks(2) {
                if let [insitu::protocol::resp::Frame::Bulk(k), insitu::protocol::resp::Frame::Bulk(v)] =
                    pair
                {
                    d.set_item(
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )?;
                }
            }
        }
        Ok(d)
    }

    /// `CONFIG SET name value`.
    fn config_set(&self, py: Python<'_>, name: String, value: String) -> PyResult<()> {
        let f = self.with(py, |c| {
            c.command(&["CONFIG", "SET", name.as_str(), value.as_str()])
        })?;
        match f {
            insitu::protocol::resp::Frame::Error(e) => Err(to_py(e)),
            _ => Ok(()),
        }
    }
}
