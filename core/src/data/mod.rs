//! The values insitu stores and moves: [`tensor::Tensor`] (a dtype, a shape and
//! refcounted bytes), [`dataset::Dataset`] (named tensors plus metadata, in SmartRedis'
//! layout) and the [`layout`] transpose between Fortran and C order.
//!
//! Values are built two ways: from a peer, checked against
//! [`Limits`](crate::protocol::limits::Limits) (`Tensor::from_peer`), or inside insitu,
//! where no peer limit applies (`Tensor::new`).

pub mod dataset;
pub mod layout;
pub mod tensor;
