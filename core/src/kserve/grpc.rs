//! KServe v2 over gRPC: `inference.GRPCInferenceService`, served by tonic.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::conn::Counted;
use super::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use super::proto::infer_parameter::ParameterChoice;
use super::proto::model_repository_parameter::ParameterChoice as RepoChoice;
use super::proto::*;
use super::service::{
    not_uint, server_metadata, shm_ref, timeout_param, InferCall, InferDone, InputData, Kserve,
    OutputWanted, Params, Source,
};
use super::status::{invalid, KsError, KsResult};
use super::tensors;

impl From<KsError> for Status {
    fn from(e: KsError) -> Status {
        Status::new(e.code, e.message)
    }
}

/// The gRPC service over the shared state.
pub struct Service(pub Arc<Kserve>);

impl Params for HashMap<String, InferParameter> {
    fn string(&self, key: &str) -> Option<String> {
        match self.get(key)?.parameter_choice.as_ref()? {
            ParameterChoice::StringParam(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn uint(&self, key: &str) -> KsResult<Option<u64>> {
        let Some(v) = self.get(key).and_then(|v| v.parameter_choice.as_ref()) else {
            return Ok(None);
        };
        match v {
            ParameterChoice::Int64Param(i) if *i >= 0 => Ok(Some(*i as u64)),
            ParameterChoice::Uint64Param(u) => Ok(Some(*u)),
            _ => Err(not_uint(key)),
        }
    }
}

/// The `grpc-timeout` header (gRPC's deadline: digits and a unit, H M S m u n).
fn grpc_timeout(m: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = m.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn param(p: ParameterChoice) -> InferParameter {
    InferParameter {
        parameter_choice: Some(p),
    }
}

/// Parse a ModelInferRequest into an [`InferCall`].
pub fn call_of(req: ModelInferRequest) -> KsResult<InferCall> {
    let mut raw = req.raw_input_contents.into_iter();
    let raw_given = raw.len();
    let mut raw_used = 0;
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for i in req.inputs {
        let what = format!("input '{}'", i.name);
        let source = if let Some((region, offset, size)) = shm_ref(&i.parameters, &what)? {
            Source::Shm(region, offset, size)
        } else if let Some(key) = i.parameters.string("tensor_key") {
            Source::Key(key)
        } else if raw_given > 0 {
            raw_used += 1;
            Source::Raw(raw.next().ok_or_else(|| {
                invalid(format!(
                    "raw_input_contents holds {raw_given} entries, fewer than the inputs that need one"
                ))
            })?)
        } else {
            Source::Contents(i.contents.unwrap_or_default())
        };
        inputs.push(InputData {
            name: i.name,
            datatype: i.datatype,
            shape: i.shape,
            source,
        });
    }
    if raw_used != raw_given {
        return Err(invalid(format!(
            "raw_input_contents holds {raw_given} entries for {raw_used} inputs"
        )));
    }
    let outputs = req
        .outputs
        .into_iter()
        .map(|o| {
            let what = format!("output '{}'", o.name);
            Ok(OutputWanted {
                shm: shm_ref(&o.parameters, &what)?,
                key: o.parameters.string("tensor_key"),
                binary: true,
                name: o.name,
            })
        })
        .collect::<KsResult<Vec<_>>>()?;
    let timeout = timeout_param(&req.parameters)?;
    Ok(InferCall {
        model: req.model_name,
        version: req.model_version,
        id: req.id,
        inputs,
        outputs,
        timeout,
    })
}

/// A finished request as a ModelInferResponse: every output's bytes in
/// raw_output_contents (an empty entry for one written to shared memory, so entries line
/// up with outputs).
pub fn response_of(done: InferDone) -> KsResult<ModelInferResponse> {
    let mut outputs = Vec::with_capacity(done.outputs.len());
    let mut raw = Vec::with_capacity(done.outputs.len());
    for o in done.outputs {
        let mut parameters = HashMap::new();
        if let Some((region, offset, size)) = &o.wanted.shm {
            parameters.insert(
                "shared_memory_region".into(),
                param(ParameterChoice::StringParam(region.clone())),
            );
            parameters.insert(
                "shared_memory_byte_size".into(),
                param(ParameterChoice::Int64Param(*size as i64)),
            );
            if *offset > 0 {
                parameters.insert(
                    "shared_memory_offset".into(),
                    param(ParameterChoice::Int64Param(*offset as i64)),
                );
            }
            raw.push(bytes::Bytes::new());
        } else {
            raw.push(tensors::to_raw(&o.tensor)?);
        }
        outputs.push(model_infer_response::InferOutputTensor {
            name: o.wanted.name,
            datatype: tensors::datatype(o.tensor.dtype()).into(),
            shape: o.tensor.shape().iter().map(|&d| d as i64).collect(),
            parameters,
            contents: None,
        });
    }
    Ok(ModelInferResponse {
        model_name: done.model,
        model_version: done.version,
        id: done.id,
        parameters: HashMap::new(),
        outputs,
        raw_output_contents: raw,
    })
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Reply<ServerLiveResponse> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Reply<ServerReadyResponse> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.0.is_ready(),
        }))
    }

    async fn model_ready(&self, r: Request<ModelReadyRequest>) -> Reply<ModelReadyResponse> {
        let r = r.into_inner();
        Ok(Response::new(ModelReadyResponse {
            ready: self.0.model(&r.name, &r.version).is_ok(),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Reply<ServerMetadataResponse> {
        Ok(Response::new(server_metadata()))
    }

    async fn model_metadata(
        &self,
        r: Request<ModelMetadataRequest>,
    ) -> Reply<ModelMetadataResponse> {
        let r = r.into_inner();
        Ok(Response::new(self.0.metadata(&r.name, &r.version)?))
    }

    async fn model_infer(&self, r: Request<ModelInferRequest>) -> Reply<ModelInferResponse> {
        let deadline = grpc_timeout(r.metadata());
        let mut call = call_of(r.into_inner())?;
        // The client's gRPC deadline bounds the run too (the earlier of it and `timeout`).
        call.timeout = match (call.timeout, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let done = self.0.infer(call).await?;
        Ok(Response::new(response_of(done)?))
    }

    type ModelStreamInferStream =
        Pin<Box<dyn Stream<Item = Result<ModelStreamInferResponse, Status>> + Send + 'static>>;

    async fn model_stream_infer(
        &self,
        r: Request<Streaming<ModelInferRequest>>,
    ) -> Reply<Self::ModelStreamInferStream> {
        let mut inbound = r.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let kserve = self.0.clone();
        tokio::spawn(async move {
            while let Some(msg) = inbound.next().await {
                let reply = match msg {
                    Ok(req) => {
                        let id = req.id.clone();
                        let result = match call_of(req) {
                            Ok(call) => match kserve.infer(call).await {
                                Ok(done) => response_of(done),
                                Err(e) => Err(e),
                            },
                            Err(e) => Err(e),
                        };
                        match result {
                            Ok(resp) => ModelStreamInferResponse {
                                error_message: String::new(),
                                infer_response: Some(resp),
                            },
                            Err(e) => ModelStreamInferResponse {
                                error_message: e.message,
                                infer_response: Some(ModelInferResponse {
                                    id,
                                    ..Default::default()
                                }),
                            },
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn model_config(&self, r: Request<ModelConfigRequest>) -> Reply<ModelConfigResponse> {
        let r = r.into_inner();
        Ok(Response::new(ModelConfigResponse {
            config: Some(self.0.model_config(&r.name, &r.version)?),
        }))
    }

    async fn model_statistics(
        &self,
        r: Request<ModelStatisticsRequest>,
    ) -> Reply<ModelStatisticsResponse> {
        let r = r.into_inner();
        Ok(Response::new(self.0.statistics(&r.name, &r.version)?))
    }

    async fn repository_index(
        &self,
        r: Request<RepositoryIndexRequest>,
    ) -> Reply<RepositoryIndexResponse> {
        let r = r.into_inner();
        let models = self
            .0
            .repository
            .index(&self.0.engine, r.ready)
            .into_iter()
            .map(|e| repository_index_response::ModelIndex {
                name: e.name,
                version: e.version,
                state: e.state.into(),
                reason: e.reason,
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        r: Request<RepositoryModelLoadRequest>,
    ) -> Reply<RepositoryModelLoadResponse> {
        let r = r.into_inner();
        let mut config = None;
        let mut files = Vec::new();
        for (k, v) in r.parameters {
            match (k.as_str(), v.parameter_choice) {
                ("config", Some(RepoChoice::StringParam(s))) => config = Some(s),
                (f, Some(RepoChoice::BytesParam(b))) if f.starts_with("file:") => {
                    files.push((k, b))
                }
                _ => {}
            }
        }
        self.0
            .repository
            .load(
                &self.0.engine,
                &r.model_name,
                config.as_deref(),
                &files,
                true,
            )
            .await?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        r: Request<RepositoryModelUnloadRequest>,
    ) -> Reply<RepositoryModelUnloadResponse> {
        let r = r.into_inner();
        self.0
            .repository
            .unload(&self.0.engine, &r.model_name, true)
            .await?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }

    async fn system_shared_memory_status(
        &self,
        r: Request<SystemSharedMemoryStatusRequest>,
    ) -> Reply<SystemSharedMemoryStatusResponse> {
        let r = r.into_inner();
        let regions = self
            .0
            .regions
            .status(&r.name)?
            .into_iter()
            .map(|g| {
                (
                    g.name.clone(),
                    system_shared_memory_status_response::RegionStatus {
                        name: g.name.clone(),
                        key: g.key.clone(),
                        offset: g.offset,
                        byte_size: g.byte_size,
                    },
                )
            })
            .collect();
        Ok(Response::new(SystemSharedMemoryStatusResponse { regions }))
    }

    async fn system_shared_memory_register(
        &self,
        r: Request<SystemSharedMemoryRegisterRequest>,
    ) -> Reply<SystemSharedMemoryRegisterResponse> {
        let r = r.into_inner();
        self.0.regions.register(
            &r.name,
            &r.key,
            r.offset,
            r.byte_size,
            self.0.config.max_shm_regions,
        )?;
        Ok(Response::new(SystemSharedMemoryRegisterResponse {}))
    }

    async fn system_shared_memory_unregister(
        &self,
        r: Request<SystemSharedMemoryUnregisterRequest>,
    ) -> Reply<SystemSharedMemoryUnregisterResponse> {
        self.0.regions.unregister(&r.into_inner().name);
        Ok(Response::new(SystemSharedMemoryUnregisterResponse {}))
    }
}

/// Serve gRPC on `listener` until `stop` turns true.
pub async fn serve(
    kserve: Arc<Kserve>,
    incoming: mpsc::Receiver<Counted>,
    mut stop: watch::Receiver<bool>,
) {
    let max = kserve.config.max_message_bytes;
    let svc = GrpcInferenceServiceServer::new(Service(kserve))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let r = tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(
            ReceiverStream::new(incoming).map(Ok::<_, std::io::Error>),
            async move {
                let _ = stop.changed().await;
            },
        )
        .await;
    if let Err(e) = r {
        tracing::warn!("gRPC server stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_in_every_unit() {
        let mut m = tonic::metadata::MetadataMap::new();
        for (v, d) in [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("4S", Duration::from_secs(4)),
            ("250m", Duration::from_millis(250)),
            ("99u", Duration::from_micros(99)),
            ("7n", Duration::from_nanos(7)),
        ] {
            m.insert("grpc-timeout", v.parse().unwrap());
            assert_eq!(grpc_timeout(&m), Some(d), "{v}");
        }
        for bad in ["", "5", "5x", "S", "-1S"] {
            m.insert("grpc-timeout", bad.parse().unwrap());
            assert_eq!(grpc_timeout(&m), None, "{bad:?}");
        }
    }
}
