//! The client's reply decoder on arbitrary bytes: never a panic; a decoded frame consumed
//! no more than it was given.
#![no_main]

use bytes::BytesMut;
use insitu::protocol::resp::{decode_reply, parse_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = parse_reply(data) {
        assert!(used <= data.len());
    }
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = decode_reply(&mut buf) {}
});
