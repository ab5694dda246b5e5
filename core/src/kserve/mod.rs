//! The KServe v2 inference protocol — what Triton, KServe, Seldon/MLServer and OpenVINO
//! Model Server speak — over gRPC ([`grpc`], tonic) and HTTP/REST ([`http`], axum), with
//! Prometheus `/metrics` ([`metrics`]) and a Triton model repository ([`repository`]).
//!
//! Both front ends parse a request into an [`InferCall`] and hand it to [`Kserve::infer`],
//! which looks the model up in the engine and runs it with the engine's typed operations
//! (`Engine::infer`): a model stored over RESP (SmartRedis' `set_model`, `AI.MODELSTORE`)
//! is served here under its key, and a repository model is stored as RESP clients store
//! theirs, so either side runs what the other stored. A model's KServe version is its tag
//! when the tag is a positive integer (the repository sets it), else `1`.
//!
//! insitu's own extension, for coupling with a simulation: an input may name a stored
//! tensor instead of carrying data (parameter `tensor_key`), and an output may be stored
//! under a key (parameter `tensor_key`) as `AI.MODELEXECUTE` stores its outputs.

pub mod config;
pub mod conn;
pub mod grpc;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod proto;
pub mod repository;
pub mod service;
pub mod shm;
pub mod status;
pub mod tensors;

pub use conn::{accept_counted, Counted};
pub use listen::Frontends;
pub use repository::version_of;
pub use service::{
    server_metadata, InferCall, InferDone, InputData, Kserve, OutputDone, OutputWanted, Source,
};
pub use status::{invalid, KsError, KsResult};
