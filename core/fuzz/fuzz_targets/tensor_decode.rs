//! Tensors from untrusted parts (what AI.TENSORSET and a snapshot load do): a dtype, a
//! shape and bytes. Either an error, or a tensor whose every accessor works.
#![no_main]

use bytes::Bytes;
use insitu::{DType, Limits, Tensor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [id, ndims, rest @ ..] = data else { return };
    let Some(dtype) = DType::from_id(*id % 16) else {
        return;
    };
    let ndims = usize::from(*ndims % 6);
    if rest.len() < ndims * 2 {
        return;
    }
    let (dims, blob) = rest.split_at(ndims * 2);
    let shape: Vec<usize> = dims
        .chunks(2)
        .map(|d| usize::from(u16::from_le_bytes([d[0], d[1]])))
        .collect();
    let limits = Limits {
        max_tensor_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(t) = Tensor::from_peer(dtype, &shape, Bytes::copy_from_slice(blob), &limits) {
        assert_eq!(t.shape(), &shape[..]);
        let n: usize = shape.iter().product();
        assert_eq!(t.len(), n);
        if dtype == DType::String {
            assert_eq!(t.strings().expect("strings of a STRING tensor").len(), n);
        } else {
            assert_eq!(t.data().len(), n * dtype.size().expect("fixed size"));
        }
    }
});
