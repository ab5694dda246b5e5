//! What KServe clients and model repositories hand the server, from untrusted bytes: a
//! model configuration (config.pbtxt text, or a load request's JSON), raw tensor bytes
//! (`BYTES` elements with their length prefixes) and JSON tensor data. Each reads or
//! fails with an error; a tensor that decodes encodes back to the same bytes.
#![no_main]

use bytes::Bytes;
use insitu::kserve::{config, tensors};
use insitu::DType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = config::from_pbtxt(&text);
    let _ = config::from_json(&text);
    // The first byte picks a dtype and a shape; the rest is the tensor's raw bytes.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let dtype = DType::ALL[pick as usize % DType::ALL.len()];
    let n = (pick as usize / DType::ALL.len()) % 5;
    let raw = Bytes::copy_from_slice(rest);
    if let Ok(t) = tensors::from_raw(dtype, &[n], raw.clone(), "in") {
        assert_eq!(tensors::to_raw(&t).expect("encode"), raw);
        let _ = tensors::to_json(&t);
    }
    if let Ok(j) = serde_json::from_slice::<serde_json::Value>(rest) {
        if let Ok(t) = tensors::from_json(dtype, &[n], &j, "in") {
            assert_eq!(t.shape(), &[n]);
        }
    }
});
