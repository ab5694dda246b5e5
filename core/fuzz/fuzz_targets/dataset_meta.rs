//! Dataset metadata from untrusted bytes (a dataset's `.meta` hash as stored by any
//! client): field values decode or fail cleanly, and what decodes encodes back bit for bit.
#![no_main]

use bytes::Bytes;
use insitu::{Dataset, MetaValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = MetaValue::decode(data) {
        // Bit for bit (NaN != NaN, so compare encodings, not values).
        let bytes = v.encode();
        let again = MetaValue::decode(&bytes).expect("an encoding decodes");
        assert_eq!(again.encode(), bytes);
    }
    // The same bytes split into (field, value) pairs at each 0xff.
    let parts: Vec<Bytes> = data
        .split(|&b| b == 0xff)
        .map(Bytes::copy_from_slice)
        .collect();
    let pairs: Vec<(Bytes, Bytes)> = parts
        .chunks(2)
        .filter_map(|c| match c {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect();
    let mut ds = Dataset::new("fuzz");
    let _ = ds.decode_meta(&pairs);
});
