//! The server's request parser on arbitrary bytes, fed in arbitrary pieces: it must never
//! panic, and once it reports a protocol error the connection is over (it is not called
//! again, as the server closes it).
#![no_main]

use bytes::BytesMut;
use insitu::protocol::resp::{Request, RequestParser};
use insitu::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size (1..=256); small limits make limit paths reachable.
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    let limits = Limits {
        max_bulk_len: 4096,
        max_array_len: 64,
        max_dims: 8,
        max_tensor_bytes: 1 << 16,
        ..Limits::default()
    };
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(Request::Command(args))) => assert!(!args.is_empty()),
                Ok(Some(Request::Rejected(_))) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
