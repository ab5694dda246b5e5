//! What both front ends do once a request is parsed: look the model up in the engine,
//! describe it (metadata, configuration, statistics) and run an [`InferCall`] with the
//! engine's typed `Engine::infer`. The state they share ([`Kserve`]): the engine, the
//! shared-memory regions, the model repository.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::proto;
use super::repository::{self, version_of};
use super::status::{invalid, unknown_model, KsError, KsResult};
use super::{shm, tensors};
use crate::data::tensor::Tensor;
use crate::engine::{Engine, LoadedModel, RunOptions, ServingConfig};
use crate::error::ErrorCode;
use crate::model::Model;

/// ServerMetadata: insitu, its version, the extensions it serves.
pub fn server_metadata() -> proto::ServerMetadataResponse {
    proto::ServerMetadataResponse {
        name: "insitu".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: [
            "binary_tensor_data",
            "parameters",
            "statistics",
            "model_configuration",
            "model_repository",
            "model_repository(unload_dependents)",
            "system_shared_memory",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Where an input's elements come from.
pub enum Source {
    /// Raw little-endian bytes (gRPC's raw_input_contents, HTTP's binary extension).
    Raw(Bytes),
    /// gRPC's typed contents, decoded once the datatype and shape are checked.
    Contents(proto::InferTensorContents),
    /// HTTP's JSON `data`, decoded once the datatype and shape are checked.
    Json(serde_json::Value),
    /// A registered shared-memory region: name, offset, size.
    Shm(String, u64, u64),
    /// A tensor stored in the engine under this key.
    Key(String),
}

/// A request's or tensor's parameters, as a front end carries them (gRPC's
/// `InferParameter` map, HTTP's JSON object): what the parameters every front end reads
/// mean is defined once, below.
pub trait Params {
    /// A string parameter (`None`: absent, or not a string).
    fn string(&self, key: &str) -> Option<String>;
    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// Present but not a non-negative integer.
    fn uint(&self, key: &str) -> KsResult<Option<u64>>;
}

/// The error for a parameter that must be a non-negative integer.
pub fn not_uint(key: &str) -> KsError {
    invalid(format!("parameter '{key}' must be a non-negative integer"))
}

/// A shared-memory region, offset and size from `shared_memory_*` parameters, if given.
///
/// # Errors
/// A region without its byte size, a size or offset that is not an integer.
pub fn shm_ref(p: &impl Params, what: &str) -> KsResult<Option<(String, u64, u64)>> {
    let Some(region) = p.string("shared_memory_region") else {
        return Ok(None);
    };
    let size = p.uint("shared_memory_byte_size")?.ok_or_else(|| {
        invalid(format!(
            "{what}: shared_memory_byte_size must be given with shared_memory_region"
        ))
    })?;
    let offset = p.uint("shared_memory_offset")?.unwrap_or(0);
    Ok(Some((region, offset, size)))
}

/// A request's `timeout` parameter (microseconds; 0: none).
///
/// # Errors
/// Not an integer.
pub fn timeout_param(p: &impl Params) -> KsResult<Option<Duration>> {
    Ok(p.uint("timeout")?
        .filter(|&us| us > 0)
        .map(Duration::from_micros))
}

/// One input of a request.
pub struct InputData {
    /// The model input it feeds.
    pub name: String,
    /// Its KServe datatype (`FP32`...).
    pub datatype: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its elements.
    pub source: Source,
}

/// Where a requested output goes besides the response.
#[derive(Debug, Clone, Default)]
pub struct OutputWanted {
    /// The model output.
    pub name: String,
    /// Written into this shared-memory region (name, offset, size) instead of the
    /// response.
    pub shm: Option<(String, u64, u64)>,
    /// Also stored under this key.
    pub key: Option<String>,
    /// HTTP: sent in binary after the JSON header (else as JSON `data`).
    pub binary: bool,
}

/// A parsed inference request.
pub struct InferCall {
    /// The model's name.
    pub model: String,
    /// The version asked for ("": the one served).
    pub version: String,
    /// The request id, echoed.
    pub id: String,
    /// Its inputs.
    pub inputs: Vec<InputData>,
    /// The outputs asked for (none: all, in the model's order).
    pub outputs: Vec<OutputWanted>,
    /// A deadline from the request's `timeout` parameter (microseconds) or gRPC's.
    pub timeout: Option<Duration>,
}

/// One output of a finished request.
pub struct OutputDone {
    /// Where it was asked to go.
    pub wanted: OutputWanted,
    /// Its value.
    pub tensor: Tensor,
}

/// A finished request.
pub struct InferDone {
    /// The model's name.
    pub model: String,
    /// The version that ran.
    pub version: String,
    /// The request id.
    pub id: String,
    /// The outputs, in the order asked for.
    pub outputs: Vec<OutputDone>,
}

/// The state both front ends share: the engine, the shared-memory regions, the model
/// repository.
pub struct Kserve {
    /// The engine every request runs on.
    pub engine: Arc<Engine>,
    /// Registered system shared-memory regions.
    pub regions: shm::Regions,
    /// The model repository.
    pub repository: repository::Repository,
    /// The serving settings.
    pub config: ServingConfig,
    ready: AtomicBool,
}

fn shape_text(s: &[i64]) -> String {
    let parts: Vec<String> = s.iter().map(i64::to_string).collect();
    format!("[{}]", parts.join(","))
}

impl Kserve {
    /// The shared state over `engine`.
    pub fn new(engine: Arc<Engine>) -> Arc<Kserve> {
        let config = engine.with_config(|c| c.serving.clone());
        let max_model = engine.with_config(|c| c.models.max_model_bytes);
        Arc::new(Kserve {
            repository: repository::Repository::new(
                config.model_repository.clone(),
                config.model_control,
                max_model,
            ),
            regions: shm::Regions::default(),
            config,
            engine,
            ready: AtomicBool::new(false),
        })
    }

    /// Whether the server is ready (the repository's models loaded at start).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Mark the server ready (after the repository's initial load).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The model served as `name`, at `version` ("" for any).
    ///
    /// # Errors
    /// Triton's unknown-model text (UNAVAILABLE) for a missing model or version.
    pub fn model(&self, name: &str, version: &str) -> KsResult<(LoadedModel, String)> {
        let loaded = match self.engine.model(name.as_bytes()) {
            Ok(l) => l,
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::WrongType) => {
                return Err(unknown_model(name, version))
            }
            Err(e) => return Err(e.into()),
        };
        let v = version_of(&loaded.model);
        if !version.is_empty() && version != v {
            return Err(unknown_model(name, version));
        }
        Ok((loaded, v))
    }

    /// ModelMetadata.
    ///
    /// # Errors
    /// An unknown model.
    pub fn metadata(&self, name: &str, version: &str) -> KsResult<proto::ModelMetadataResponse> {
        use proto::model_metadata_response::TensorMetadata;
        let (loaded, v) = self.model(name, version)?;
        let io = |specs: &[crate::model::IoSpec]| {
            specs
                .iter()
                .map(|s| TensorMetadata {
                    name: s.name.clone(),
                    datatype: tensors::datatype(s.dtype).into(),
                    shape: s.shape.clone(),
                })
                .collect()
        };
        Ok(proto::ModelMetadataResponse {
            name: name.to_string(),
            versions: vec![v],
            platform: "onnxruntime_onnx".into(),
            inputs: io(loaded.runner.inputs()),
            outputs: io(loaded.runner.outputs()),
        })
    }

    /// ModelConfig: the model's batching, inputs and outputs as Triton describes them
    /// (with a batch dimension taken off the dims when max_batch_size > 0).
    ///
    /// # Errors
    /// An unknown model.
    pub fn model_config(&self, name: &str, version: &str) -> KsResult<proto::ModelConfig> {
        let (loaded, _) = self.model(name, version)?;
        let spec = &loaded.model.spec;
        let max_batch = spec.batchsize;
        let dims = |shape: &[i64]| -> Vec<i64> {
            if max_batch > 0 && !shape.is_empty() {
                shape[1..].to_vec()
            } else {
                shape.to_vec()
            }
        };
        Ok(proto::ModelConfig {
            name: name.to_string(),
            platform: "onnxruntime_onnx".into(),
            backend: "onnxruntime".into(),
            version_policy: Some(proto::ModelVersionPolicy {
                policy_choice: Some(proto::model_version_policy::PolicyChoice::Latest(
                    proto::model_version_policy::Latest { num_versions: 1 },
                )),
            }),
            max_batch_size: max_batch as i32,
            input: loaded
                .runner
                .inputs()
                .iter()
                .map(|s| proto::ModelInput {
                    name: s.name.clone(),
                    data_type: tensors::config_type(s.dtype),
                    dims: dims(&s.shape),
                })
                .collect(),
            output: loaded
                .runner
                .outputs()
                .iter()
                .map(|s| proto::ModelOutput {
                    name: s.name.clone(),
                    data_type: tensors::config_type(s.dtype),
                    dims: dims(&s.shape),
                })
                .collect(),
            instance_group: vec![proto::ModelInstanceGroup {
                name: name.to_string(),
                count: loaded.runner.max_sessions() as i32,
                gpus: vec![],
                kind: match spec.device {
                    crate::model::Device::Cpu(_) => proto::model_instance_group::Kind::Cpu as i32,
                    crate::model::Device::Gpu(_) => proto::model_instance_group::Kind::Gpu as i32,
                },
            }],
            default_model_filename: "model.onnx".into(),
            scheduling_choice: (max_batch > 0).then(|| {
                proto::model_config::SchedulingChoice::DynamicBatching(
                    proto::ModelDynamicBatching {
                        preferred_batch_size: if spec.minbatchsize > 0 {
                            vec![spec.minbatchsize as i32]
                        } else {
                            vec![]
                        },
                        max_queue_delay_microseconds: spec.minbatchtimeout * 1000,
                    },
                )
            }),
        })
    }

    /// ModelStatistics for one model (`name`), or every model ("").
    ///
    /// # Errors
    /// An unknown model.
    pub fn statistics(
        &self,
        name: &str,
        version: &str,
    ) -> KsResult<proto::ModelStatisticsResponse> {
        let models: Vec<(String, Arc<Model>)> = if name.is_empty() {
            self.engine
                .models()
                .into_iter()
                .map(|(k, m)| (String::from_utf8_lossy(&k).into_owned(), m))
                .collect()
        } else {
            let (loaded, _) = self.model(name, version)?;
            vec![(name.to_string(), loaded.model)]
        };
        let d = |count: u64, us: u64| {
            Some(proto::StatisticDuration {
                count,
                ns: us.saturating_mul(1000),
            })
        };
        let model_stats = models
            .into_iter()
            .map(|(name, m)| {
                let s = &m.stats;
                let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
                let calls = l(&s.calls);
                let errors = l(&s.errors);
                let runs = l(&s.runs);
                proto::ModelStatistics {
                    name,
                    version: version_of(&m),
                    last_inference: l(&s.last_ms),
                    inference_count: l(&s.samples),
                    execution_count: runs,
                    inference_stats: Some(proto::InferStatistics {
                        success: d(calls.saturating_sub(errors), l(&s.success_us)),
                        fail: d(errors, l(&s.fail_us)),
                        queue: d(calls, l(&s.queue_us)),
                        // ONNX Runtime's run binds inputs and outputs itself: the whole
                        // run is compute_infer; inputs and outputs are not timed apart.
                        compute_input: d(0, 0),
                        compute_infer: d(runs, l(&s.duration_us)),
                        compute_output: d(0, 0),
                        cache_hit: d(0, 0),
                        cache_miss: d(0, 0),
                    }),
                    batch_stats: vec![],
                }
            })
            .collect();
        Ok(proto::ModelStatisticsResponse { model_stats })
    }

    /// Run an inference request.
    ///
    /// # Errors
    /// An unknown model; inputs that do not match the model (name, count, datatype,
    /// shape, byte size: Triton's texts); shared-memory ranges out of bounds; the run's
    /// own failure.
    pub async fn infer(&self, call: InferCall) -> KsResult<InferDone> {
        let (loaded, version) = self.model(&call.model, &call.version)?;
        let model = &call.model;
        let specs = loaded.runner.inputs();
        let mut slots: Vec<Option<Tensor>> = vec![None; specs.len()];
        let limits = self.engine.limits().0;
        for input in call.inputs {
            let idx = specs
                .iter()
                .position(|s| s.name == input.name)
                .ok_or_else(|| {
                    invalid(format!(
                        "unexpected inference input '{}' for model '{model}'",
                        input.name
                    ))
                })?;
            if slots[idx].is_some() {
                return Err(invalid(format!(
                    "input '{}' is given more than once for model '{model}'",
                    input.name
                )));
            }
            let spec = &specs[idx];
            let tensor = self.input_tensor(input, spec, model, &limits)?;
            slots[idx] = Some(tensor);
        }
        let given = slots.iter().filter(|s| s.is_some()).count();
        if given != specs.len() {
            let missing: Vec<String> = specs
                .iter()
                .zip(&slots)
                .filter(|(_, t)| t.is_none())
                .map(|(s, _)| format!("'{}'", s.name))
                .collect();
            return Err(invalid(format!(
                "expected {} inputs but got {given} inputs for model '{model}'; missing input(s) [{}]",
                specs.len(),
                missing.join(", ")
            )));
        }
        let inputs: Vec<Tensor> = slots.into_iter().flatten().collect();
        // A batching model's max_batch_size bounds each request, as Triton's does.
        let max_batch = loaded.model.spec.batchsize;
        if max_batch > 0 {
            if let Some(rows) = inputs.first().and_then(|t| t.shape().first()) {
                if *rows > max_batch {
                    return Err(invalid(format!(
                        "inference request batch-size must be <= {max_batch} for '{model}'"
                    )));
                }
            }
        }
        let outs_spec = loaded.runner.outputs();
        let wanted: Vec<(usize, OutputWanted)> = if call.outputs.is_empty() {
            outs_spec
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        i,
                        OutputWanted {
                            name: s.name.clone(),
                            binary: true,
                            ..Default::default()
                        },
                    )
                })
                .collect()
        } else {
            call.outputs
                .into_iter()
                .map(|w| {
                    outs_spec
                        .iter()
                        .position(|s| s.name == w.name)
                        .map(|i| (i, w.clone()))
                        .ok_or_else(|| {
                            invalid(format!(
                                "unexpected inference output '{}' for model '{model}'",
                                w.name
                            ))
                        })
                })
                .collect::<KsResult<_>>()?
        };
        let opts = RunOptions {
            deadline: call.timeout.map(|t| Instant::now() + t),
            inline: false,
        };
        let mut results = self
            .engine
            .infer(&loaded, Cow::Owned(inputs), opts)?
            .finish()
            .await?;
        let mut outputs = Vec::with_capacity(wanted.len());
        for (i, w) in wanted {
            let tensor = match results.get_mut(i) {
                Some(t) => t.clone(),
                None => {
                    return Err(KsError {
                        code: tonic::Code::Internal,
                        message: format!("model '{model}' returned no output {i}"),
                    })
                }
            };
            if let Some((region, offset, size)) = &w.shm {
                let raw = tensors::to_raw(&tensor)?;
                self.regions.write(region, *offset, *size, &raw, &w.name)?;
            }
            if let Some(key) = &w.key {
                self.engine
                    .put_tensor(Bytes::from(key.clone().into_bytes()), tensor.clone())?;
            }
            outputs.push(OutputDone { wanted: w, tensor });
        }
        Ok(InferDone {
            model: call.model,
            version,
            id: call.id,
            outputs,
        })
    }

    /// One input as a tensor, checked against the model's input.
    fn input_tensor(
        &self,
        input: InputData,
        spec: &crate::model::IoSpec,
        model: &str,
        limits: &crate::protocol::limits::Limits,
    ) -> KsResult<Tensor> {
        let name = &input.name;
        let wrong_type = |given: &str| {
            invalid(format!(
                "unexpected datatype {given} for inference input '{name}', expecting {}",
                tensors::datatype(spec.dtype)
            ))
        };
        if let Source::Key(key) = &input.source {
            let t = self.engine.get_tensor(key.as_bytes()).map_err(|e| {
                invalid(format!(
                    "input '{name}': tensor_key '{key}': {}",
                    e.message()
                ))
            })?;
            if t.dtype() != spec.dtype {
                return Err(wrong_type(tensors::datatype(t.dtype())));
            }
            return Ok(t);
        }
        let dtype = tensors::dtype(&input.datatype, name)?;
        if dtype != spec.dtype {
            return Err(wrong_type(&input.datatype));
        }
        let fits = input.shape.len() == spec.shape.len()
            && input
                .shape
                .iter()
                .zip(&spec.shape)
                .all(|(&g, &w)| w < 0 || g == w);
        if input.shape.iter().any(|&d| d < 0) || (!spec.shape.is_empty() && !fits) {
            return Err(invalid(format!(
                "unexpected shape for input '{name}' for model '{model}'. Expected {}, got {}",
                shape_text(&spec.shape),
                shape_text(&input.shape)
            )));
        }
        if input.shape.len() > limits.max_dims {
            return Err(crate::data::tensor::too_many_dims(limits.max_dims).into());
        }
        let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
        let tensor = match input.source {
            Source::Raw(raw) => tensors::from_raw(dtype, &shape, raw, name)?,
            Source::Contents(c) => tensors::from_contents(dtype, &shape, &c, name)?,
            Source::Json(j) => tensors::from_json(dtype, &shape, &j, name)?,
            Source::Shm(region, offset, size) => {
                let raw = self.regions.read(&region, offset, size)?;
                tensors::from_raw(dtype, &shape, raw, name)?
            }
            Source::Key(_) => return Err(invalid("tensor_key input handled twice")),
        };
        tensor.check_limits(limits)?;
        Ok(tensor)
    }
}
