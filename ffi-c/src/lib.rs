//! The C ABI of insitu (`libinsitu.so` / `libinsitu.a`, header `include/insitu.h`).
//!
//! Conventions (every function):
//! - names are `insitu_<type>_<verb>`; handles are opaque pointers owned by the caller
//!   and released with their `_free` function (`_free(NULL)` does nothing);
//! - strings and buffers are passed as a pointer *and* a length (no NUL needed), inputs
//!   before outputs; outputs are written only on success;
//! - the result is an [`insitu_status`]; on failure the message is kept per thread and
//!   read with [`insitu_last_error_message`];
//! - no function panics across the boundary or terminates the process: a NULL argument,
//!   a wrong dtype, a missing key or an internal bug all come back as a status.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

//!
//! One module per concept: [`boundary`] (status, last error, the panic guard, argument
//! checks), [`tensor`], [`dataset`] (with aggregation lists), [`client`] (with key
//! prefixes), [`model`] and [`server`] (an embedded server); [`cpp`] is the C++ bridge.

pub mod boundary;
pub mod client;
pub mod cpp;
pub mod dataset;
pub mod model;
pub mod server;
pub mod tensor;

pub use boundary::*;
pub use client::*;
pub use dataset::*;
pub use model::*;
pub use server::*;
pub use tensor::*;
