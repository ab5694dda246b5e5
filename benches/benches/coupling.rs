//! Coupling modes side by side: put+get round trips of float32 tensors (1 KiB, 1 MiB,
//! 16 MiB) in process, over the Unix socket (shared memory for large tensors) and over
//! TCP, next to a memory copy of the same size and to redis-server SET/GET over TCP
//! (same client, same bytes); and run_model at batch 1 in each mode next to raw ONNX
//! Runtime. Medians, p99 and ratios; targets from the coupling issue are printed with
//! where each stands.
//!
//! `./dev.sh bench` runs it (with redis-server from Debian when available), or
//! `INSITU_TEST_MODELS=DIR cargo bench -p insitu-benches --bench coupling [-- --quick]`.

use std::path::PathBuf;

use insitu::{Client, ModelOptions, Tensor};
use insitu_benches::{raw_session, report, BenchServer, RedisServer, Samples};
use ort::value::TensorRef;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let models = std::env::var("INSITU_TEST_MODELS").ok().map(PathBuf::from);
    let srv = BenchServer::start("coupling");
    let (engine, tcp, unix) = (srv.engine.clone(), srv.tcp.clone(), srv.unix.clone());
    let mut modes: Vec<(&str, Client)> = vec![
        ("inproc", Client::inproc(engine.clone()).expect("inproc")),
        ("unix", Client::connect(&unix).expect("unix")),
        ("tcp", Client::connect(&tcp).expect("tcp")),
    ];
    let redis = RedisServer::start();
    let mut redis_client = redis
        .as_ref()
        .map(|r| Client::connect(&r.address()).expect("redis client"));
    if redis.is_none() {
        println!(
            "redis-server not found on PATH: its rows are skipped (apt-get install redis-server)"
        );
    }

    let mut verdicts = Vec::new();
    for (label, bytes) in [
        ("1 KiB", 1usize << 10),
        ("1 MiB", 1 << 20),
        ("16 MiB", 16 << 20),
    ] {
        let iters = match (bytes, quick) {
            (b, false) if b <= 1 << 10 => 5000,
            (b, false) if b <= 1 << 20 => 500,
            (_, false) => 60,
            (b, true) if b <= 1 << 20 => 200,
            _ => 15,
        };
        let n = bytes / 4;
        let t = Tensor::from_vec(vec![n], (0..n).map(|i| i as f32).collect()).expect("t");
        let src = t.data().to_vec();
        let mut dst = vec![0u8; bytes];
        let copy = Samples::measure(format!("memory copy {label}"), iters / 10, iters, || {
            dst.copy_from_slice(&src);
            std::hint::black_box(&dst);
        });
        let mut rows = Vec::new();
        for (mode, c) in modes.iter_mut() {
            rows.push(Samples::measure(
                format!("insitu {mode} put+get {label}"),
                iters / 10,
                iters,
                || {
                    c.put_tensor("bench", &t).expect("put");
                    std::hint::black_box(c.get_tensor("bench").expect("get"));
                },
            ));
        }
        if let Some(r) = redis_client.as_mut() {
            let blob = t.data().clone();
            rows.push(Samples::measure(
                format!("redis-server tcp SET+GET {label}"),
                iters / 10,
                iters,
                || {
                    r.command(&[&b"SET"[..], b"bench", &blob]).expect("set");
                    std::hint::black_box(r.command(&["GET", "bench"]).expect("get"));
                },
            ));
        }
        let refs: Vec<&Samples> = rows.iter().collect();
        report(
            &format!(
                "put+get round trip, {label}, {iters} iterations (ratio: p50 vs one memory copy)"
            ),
            &copy,
            &refs,
        );
        // Bandwidth of a round trip (2 x size moved) against one memory copy (1 x size).
        let bw = |s: &Samples| 2.0 * copy.pct(50.0) / s.pct(50.0);
        if bytes == 16 << 20 {
            verdicts.push(format!(
                "unix 16 MiB put+get: {:.2}x memory-copy bandwidth (target >= 0.5x)",
                bw(&rows[1])
            ));
        }
        if let Some(redis_row) = rows.get(3) {
            verdicts.push(format!(
                "tcp {label} put+get: {:.2}x redis-server's throughput (target >= 1.0x)",
                redis_row.pct(50.0) / rows[2].pct(50.0)
            ));
        }
    }

    if let Some(models) = models {
        let blob = std::fs::read(models.join("mlp.onnx")).expect("mlp.onnx");

        let iters = if quick { 500 } else { 5000 };
        let data: Vec<f32> = (0..16).map(|i| i as f32 * 0.05 - 0.4).collect();
        let x = Tensor::from_vec(vec![1, 16], data.clone()).expect("x");
        let mut session = raw_session(&blob);
        let raw = Samples::measure("raw ONNX Runtime (ort), batch 1", iters / 10, iters, || {
            let input = TensorRef::from_array_view(([1usize, 16], &*data)).expect("input");
            let out = session.run(ort::inputs!["x" => input]).expect("run");
            let (_, y) = out["y"].try_extract_tensor::<f32>().expect("y");
            std::hint::black_box(y.to_vec());
        });
        for (_, c) in modes.iter_mut() {
            c.set_model("mlp", &blob, &ModelOptions::default())
                .expect("set_model");
            c.put_tensor("x", &x).expect("put x");
        }
        let mut rows = Vec::new();
        for (mode, c) in modes.iter_mut() {
            rows.push(Samples::measure(
                format!("insitu {mode} run_model (stored x -> y)"),
                iters / 10,
                iters,
                || {
                    c.run_model("mlp", &["x"], &["y"]).expect("run_model");
                },
            ));
        }
        let refs: Vec<&Samples> = rows.iter().collect();
        report(
            &format!("run_model, MLP batch 1, {iters} iterations (ratio: p50 vs raw ONNX Runtime)"),
            &raw,
            &refs,
        );
        verdicts.push(format!(
            "inproc run_model: {:.2}x raw ONNX Runtime (target <= 1.1x)",
            rows[0].pct(50.0) / raw.pct(50.0)
        ));
    } else {
        println!("INSITU_TEST_MODELS not set: run_model rows skipped");
    }
    println!("\nwhere each target stands:");
    for v in verdicts {
        println!("  {v}");
    }
    drop(modes);
    drop(srv);
}
