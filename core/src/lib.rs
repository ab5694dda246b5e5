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

pub mod aof;
pub mod client;
pub mod clients;
pub mod cmd;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod layout;
pub mod model;
pub mod persist;
pub mod resp;
pub mod server;
pub mod settings;
pub mod shm;
pub mod store;
pub mod sys;
pub mod tensor;

pub use client::{Client, ModelInfo, ModelOptions};
pub use config::Limits;
pub use dataset::{Dataset, MetaValue};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, ErrorCode, Result};
pub use tensor::{DType, Element, Tensor};
