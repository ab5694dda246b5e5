//! The wire, the lowest layer: RESP frames and their parsers ([`resp`]), the limits every
//! request from a peer is checked against before anything is allocated ([`limits`]), and
//! the shared-memory heap Unix-socket clients map ([`shm`]).
//!
//! Nothing here knows what a command means or where a value is stored: the layers above
//! (data, model, store, persistence, engine, cmd, server, client) read from it, never the
//! reverse.

pub mod limits;
pub mod resp;
pub mod shm;
