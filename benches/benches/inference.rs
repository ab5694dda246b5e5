//! Inference latency: insitu's run_model and infer, in process and through the server
//! over the Unix socket and TCP, next to raw ONNX Runtime in this same process, for the
//! MLP (16 -> 32 -> 4) at batch 1 and 1024. p50 and p99 per workload and the ratio to raw
//! ONNX Runtime's p50.
//!
//! Run with `./dev.sh bench` (it generates the models and points INSITU_TEST_MODELS at
//! them), or `INSITU_TEST_MODELS=DIR cargo bench -p insitu-benches --bench inference`.

use std::path::PathBuf;
use std::sync::Arc;

use insitu::model::pool::InferencePool;
use insitu::model::runner::{run_direct, Runner};
use insitu::model::{runtime, Device, ModelConfig, ModelSpec};
use insitu::{Client, ModelOptions, Tensor};
use insitu_benches::{raw_session, report, BenchServer, Samples};
use ort::value::TensorRef;

fn main() {
    let Some(dir) = std::env::var("INSITU_TEST_MODELS").ok().map(PathBuf::from) else {
        eprintln!("set INSITU_TEST_MODELS to the generated models (./dev.sh bench does)");
        std::process::exit(2);
    };
    let quick = std::env::args().any(|a| a == "--quick");
    let model_path = dir.join("mlp.onnx");
    let blob = std::fs::read(&model_path).expect("mlp.onnx");
    let rt = runtime::runtime().expect("ONNX Runtime");
    println!("ONNX Runtime {} from {}", rt.version, rt.path.display());

    let srv = BenchServer::start("inference");
    let (tcp, unix) = (srv.tcp.clone(), srv.unix.clone());
    let mut c_unix = Client::connect(&unix).expect("unix client");
    let mut c_tcp = Client::connect(&tcp).expect("tcp client");
    c_unix
        .set_model("mlp", &blob, &ModelOptions::default())
        .expect("set_model");

    let pool = Arc::new(InferencePool::new(1).expect("pool"));
    let spec = ModelSpec {
        backend: "ONNX".into(),
        device: Device::Cpu(None),
        tag: Default::default(),
        batchsize: 0,
        minbatchsize: 0,
        minbatchtimeout: 0,
    };
    let runner =
        Runner::new(&blob.clone().into(), &spec, &ModelConfig::default(), &pool).expect("runner");

    for batch in [1usize, 1024] {
        let iters = match (batch, quick) {
            (1, false) => 5000,
            (1, true) => 500,
            (_, false) => 500,
            (_, true) => 50,
        };
        let data: Vec<f32> = (0..batch * 16)
            .map(|i| (i % 97) as f32 * 0.01 - 0.4)
            .collect();
        let x = Tensor::from_vec(vec![batch, 16], data.clone()).expect("x");

        let mut session = raw_session(&blob);
        let raw = Samples::measure(
            format!("raw ONNX Runtime (ort), batch {batch}"),
            iters / 10,
            iters,
            || {
                let input = TensorRef::from_array_view(([batch, 16], &*data)).expect("input");
                let out = session.run(ort::inputs!["x" => input]).expect("run");
                let (_, y) = out["y"].try_extract_tensor::<f32>().expect("y");
                std::hint::black_box(y.to_vec());
            },
        );
        let direct = Samples::measure(
            format!("insitu in-process run, batch {batch}"),
            iters / 10,
            iters,
            || {
                std::hint::black_box(run_direct(&runner, std::slice::from_ref(&x)).expect("run"));
            },
        );
        let mut rows = vec![direct];
        for (label, client) in [("unix", &mut c_unix), ("tcp", &mut c_tcp)] {
            rows.push(Samples::measure(
                format!("run_model put+exec+get {label}, batch {batch}"),
                iters / 10,
                iters,
                || {
                    client.put_tensor("x", &x).expect("put");
                    client.run_model("mlp", &["x"], &["y"]).expect("run_model");
                    std::hint::black_box(client.get_tensor("y").expect("get"));
                },
            ));
            rows.push(Samples::measure(
                format!("infer (one DAG round trip) {label}, batch {batch}"),
                iters / 10,
                iters,
                || {
                    std::hint::black_box(
                        client
                            .infer("mlp", std::slice::from_ref(&x))
                            .expect("infer"),
                    );
                },
            ));
        }
        let refs: Vec<&Samples> = rows.iter().collect();
        report(
            &format!("MLP 16->32->4, batch {batch}, {iters} iterations"),
            &raw,
            &refs,
        );
    }
    drop(c_unix);
    drop(c_tcp);
    drop(srv);
}
