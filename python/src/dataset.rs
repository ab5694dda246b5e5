//! `insitu.Dataset`: named tensors and metadata stored and fetched as one unit.

use insitu::{Dataset, MetaValue};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList};

use crate::array::{tensor_from_py, tensor_to_py, Use};
use crate::{bad_input, IntoPy};

/// Tensors and metadata (scalars of six types, strings) under one name, as SmartRedis'
/// `Dataset`. Tensors are copied in when added: later changes to the array do not change
/// the dataset.
#[pyclass(name = "Dataset", module = "insitu._native")]
#[derive(Clone)]
pub struct PyDataset {
    pub(crate) inner: Dataset,
}

fn meta_type(m: &MetaValue) -> &'static str {
    match m {
        MetaValue::F64(_) => "float64",
        MetaValue::F32(_) => "float32",
        MetaValue::I32(_) => "int32",
        MetaValue::I64(_) => "int64",
        MetaValue::U32(_) => "uint32",
        MetaValue::U64(_) => "uint64",
        MetaValue::Strings(_) => "string",
    }
}

#[pymethods]
impl PyDataset {
    #[new]
    fn new(name: String) -> Self {
        PyDataset {
            inner: Dataset::new(name),
        }
    }

    /// The dataset's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "insitu.Dataset({:?}, tensors={:?}, metadata={:?})",
            self.inner.name(),
            self.inner.tensor_names(),
            self.inner.meta_field_names()
        )
    }

    /// Add (or replace) a tensor; the array is copied.
    fn add_tensor(
        &mut self,
        py: Python<'_>,
        name: String,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = tensor_from_py(py, data, Use::Keep)?;
        self.inner.add_tensor(name, t);
        Ok(())
    }

    /// A tensor of the dataset as a numpy array (`copy=False`: a read-only view).
    #[pyo3(signature = (name, copy=true))]
    fn get_tensor<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        copy: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self.inner.get_tensor(name).py_err()?.clone();
        tensor_to_py(py, t, copy)
    }

    fn get_tensor_names(&self) -> Vec<String> {
        self.inner
            .tensor_names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// A tensor's insitu dtype name (`FLOAT`, `INT64`, ...).
    fn get_tensor_type(&self, name: &str) -> PyResult<String> {
        Ok(self
            .inner
            .get_tensor(name)
            .py_err()?
            .dtype()
            .name()
            .to_string())
    }

    fn get_tensor_dims(&self, name: &str) -> PyResult<Vec<usize>> {
        Ok(self.inner.get_tensor(name).py_err()?.shape().to_vec())
    }

    /// Append a scalar to a metadata field: Python int is int64, float is float64; numpy
    /// scalars keep their type (float32/64, int32/64, uint32/64).
    fn add_meta_scalar(&mut self, name: &str, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = if data.is_instance_of::<PyBool>() {
            return Err(bad_input("metadata scalars are numbers, not bool"));
        } else if data.is_exact_instance_of::<PyInt>() {
            self.inner.add_meta_scalar(name, data.extract::<i64>()?)
        } else if data.is_exact_instance_of::<PyFloat>() {
            self.inner.add_meta_scalar(name, data.extract::<f64>()?)
        } else {
            let dtype: String = match data.getattr("dtype") {
                Ok(d) => d.getattr("name")?.extract()?,
                Err(_) => {
                    return Err(bad_input(format!(
                        "metadata scalars are int, float or numpy scalars, not {}",
                        data.get_type().name()?
                    )))
                }
            };
            match dtype.as_str() {
                "float64" => self.inner.add_meta_scalar(name, data.extract::<f64>()?),
                "float32" => self.inner.add_meta_scalar(name, data.extract::<f32>()?),
                "int32" => self.inner.add_meta_scalar(name, data.extract::<i32>()?),
                "int64" => self.inner.add_meta_scalar(name, data.extract::<i64>()?),
                "uint32" => self.inner.add_meta_scalar(name, data.extract::<u32>()?),
                "uint64" => self.inner.add_meta_scalar(name, data.extract::<u64>()?),
                other => {
                    return Err(bad_input(format!(
                        "metadata scalars are float32, float64, int32, int64, uint32 or uint64, not {other}"
                    )))
                }
            }
        };
        r.py_err()
    }

    /// Append a string (str is stored as UTF-8; bytes as they are).
    fn add_meta_string(&mut self, name: &str, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes: Vec<u8> = if let Ok(s) = data.extract::<String>() {
            s.into_bytes()
        } else if let Ok(b) = data.extract::<Vec<u8>>() {
            b
        } else {
            return Err(bad_input("metadata strings are str or bytes"));
        };
        self.inner.add_meta_string(name, bytes).py_err()
    }

    /// A scalar field's values as a 1-D numpy array of their type.
    fn get_meta_scalars<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        use numpy::IntoPyArray;
        Ok(match self.inner.meta(name).py_err()? {
            MetaValue::F64(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::F32(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::I32(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::I64(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::U32(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::U64(v) => v.clone().into_pyarray(py).into_any(),
            MetaValue::Strings(_) => {
                return Err(bad_input(format!(
                    "metadata field '{name}' holds strings: use get_meta_strings"
                )))
            }
        })
    }

    /// A string field's values: str where they are UTF-8, bytes where not.
    fn get_meta_strings<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
        let v = self.inner.get_meta_strings(name).py_err()?;
        let out = PyList::empty(py);
        for s in v {
            match std::str::from_utf8(s) {
                Ok(t) => out.append(t)?,
                Err(_) => out.append(pyo3::types::PyBytes::new(py, s))?,
            }
        }
        Ok(out)
    }

    fn get_metadata_field_names(&self) -> Vec<String> {
        self.inner
            .meta_field_names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// A field's type: float64, float32, int64, int32, uint64, uint32 or string.
    fn get_metadata_field_type(&self, name: &str) -> PyResult<&'static str> {
        Ok(meta_type(self.inner.meta(name).py_err()?))
    }
}
