//! insitu: couple running simulations with AI models.
//!
//! This crate is the core library: [`Tensor`]s and the sharded [`store::Store`], the
//! [`Engine`] that executes RedisAI-compatible commands, the RESP wire protocol
//! ([`resp`]), the server loop ([`server::run`]) and the native [`Client`].
//!
//! ```no_run
//! use insitu::{Client, Tensor};
//! let mut client = Client::connect("127.0.0.1:6780")?;
//! let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
//! client.put_tensor("field", &t)?;
//! assert_eq!(client.get_tensor("field")?, t);
//! # Ok::<(), insitu::Error>(())
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

// The layers, lowest first: each uses only those declared before it (`core/tests/layers.rs`
// reads every path into the crate and fails on one that points up).

// Errors with their codes, and the few OS calls the rest shares.
pub mod error;

pub mod sys;

// RESP frames and parsers, peer limits, the shared-memory heap.
pub mod protocol;

// Values: tensors, datasets, the Fortran/C layout transpose.
pub mod data;

// ONNX Runtime: sessions, the runner pool, the batcher.
pub mod model;

// The sharded key space, its atomic checks, the change sink.
pub mod store;

// Snapshot and journal: the change sink's implementation and replay.
pub mod persistence;

// The engine (typed operations), its settings table and client registry.
pub mod engine;

// The command table and one file per command family: parse, encode, apply, decode.
pub mod cmd;

// KServe v2 over gRPC and HTTP, Prometheus metrics, the model repository: on the engine.
pub mod kserve;

// The RESP server: listeners, connections, the shared-memory transport.
pub mod server;

// The client: remote (TCP, Unix socket + shared memory) or in process.
pub mod client;

pub use client::{Client, ModelInfo, ModelOptions};
pub use data::dataset::{Dataset, MetaValue};
pub use data::tensor::{DType, Element, Tensor};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, ErrorCode, Result};
pub use protocol::limits::Limits;
