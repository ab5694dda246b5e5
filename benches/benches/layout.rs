//! The Fortran <-> C layout transpose (`insitu::data::layout::transpose_into`) next to a plain
//! memory copy of the same bytes, for a 16 MiB float field in 2-D and 3-D shapes and
//! for 8-byte and 4-byte elements: p50 and p99, and the ratio to the copy.
//!
//! `cargo bench -p insitu-benches --bench layout [-- --quick]`

use insitu::data::layout::transpose_into;
use insitu_benches::{report, Samples};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let iters = if quick { 10 } else { 60 };
    let bytes = 16usize << 20;
    let src: Vec<u8> = (0..bytes).map(|i| (i * 31 + i / 4093) as u8).collect();
    let mut out = vec![0u8; bytes];
    let copy = Samples::measure("memory copy, 16 MiB", 3, iters, || {
        out.copy_from_slice(&src);
        std::hint::black_box(&out);
    });
    let cases: [(&str, &[usize], usize); 4] = [
        ("transpose 2-D 2048 x 2048 f32", &[2048, 2048], 4),
        ("transpose 2-D 1024 x 2048 f64", &[1024, 2048], 8),
        ("transpose 3-D 128 x 128 x 256 f32", &[128, 128, 256], 4),
        ("transpose 3-D 64 x 128 x 256 f64", &[64, 128, 256], 8),
    ];
    let rows: Vec<Samples> = cases
        .iter()
        .flat_map(|&(name, dims, esz)| {
            [true, false].map(|to_row| {
                let dir = if to_row {
                    "to C order"
                } else {
                    "to Fortran order"
                };
                Samples::measure(format!("{name}, {dir}"), 3, iters, || {
                    transpose_into(&src, &mut out, dims, esz, to_row);
                    std::hint::black_box(&out);
                })
            })
        })
        .collect();
    report(
        "Layout transpose vs a memory copy (16 MiB)",
        &copy,
        &rows.iter().collect::<Vec<_>>(),
    );
}
