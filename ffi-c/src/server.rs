//! An embedded server: the in-process engine served over TCP or a Unix socket.

use std::ffi::c_char;

use insitu::server::{EmbeddedServer, ListenOptions};
use insitu::Error;

use crate::*;

/// A server serving an in-process engine.
pub struct insitu_server(pub(crate) Option<EmbeddedServer>);

// ----- embedded server -----

/// Serve an inproc client's engine on a Unix socket and/or TCP ("host:port", port 0 for
/// any free port); pass a NULL pointer to skip either.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_start_server(
    client: *mut insitu_client,
    unix_path: *const c_char,
    unix_path_len: usize,
    tcp_address: *const c_char,
    tcp_address_len: usize,
    out: *mut *mut insitu_server,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        check_out(out, "out")?;
        let unix = if unix_path.is_null() {
            None
        } else {
            Some(text(unix_path, unix_path_len, "unix_path")?.into())
        };
        let tcp = if tcp_address.is_null() {
            None
        } else {
            let a = text(tcp_address, tcp_address_len, "tcp_address")?;
            Some(a.parse().map_err(|_| {
                Error::bad_input(format!("invalid TCP address '{a}' (expected ip:port)"))
            })?)
        };
        let s = c.0.start_server(ListenOptions {
            tcp,
            unix,
            unix_mode: None,
        })?;
        put(out, Box::into_raw(Box::new(insitu_server(Some(s)))));
        Ok(())
    })
}

/// The TCP port the server listens on (0 when none, or for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_server_tcp_port(server: *const insitu_server) -> u16 {
    server
        .as_ref()
        .and_then(|s| s.0.as_ref())
        .and_then(|s| s.tcp_addr())
        .map_or(0, |a| a.port())
}

/// Stop the server (finishing requests in flight) and release it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_server_free(server: *mut insitu_server) -> insitu_status {
    if server.is_null() {
        return insitu_status::Ok;
    }
    let mut s = Box::from_raw(server);
    call(|| match s.0.take() {
        Some(srv) => srv
            .stop()
            .map_err(|e| Fail::Err(Error::io("stopping the server", &e))),
        None => Ok(()),
    })
}
