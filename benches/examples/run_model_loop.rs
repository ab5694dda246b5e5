//! A profiling target: in-process `run_model` of a model at batch 1 in a tight loop (or
//! raw ONNX Runtime with `raw`), for perf / callgrind. The model is the tiny MLP, or
//! `mid` (256-1024-256) or `cnn` (1x28x28), as in the comparison's inference rows.
//!
//! `INSITU_TEST_MODELS=DIR perf record -g target/release/examples/run_model_loop [raw] [mid|cnn] [N]`

use insitu::{Client, ModelOptions, Tensor};
use insitu_benches::raw_session;
use ort::value::TensorRef;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let raw = args.iter().any(|a| a == "raw");
    let n: usize = args
        .iter()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(2_000_000);
    let dir =
        std::path::PathBuf::from(std::env::var("INSITU_TEST_MODELS").expect("INSITU_TEST_MODELS"));
    let (file, shape): (&str, Vec<usize>) = if args.iter().any(|a| a == "mid") {
        ("mlp_mid.onnx", vec![1, 256])
    } else if args.iter().any(|a| a == "cnn") {
        ("cnn.onnx", vec![1, 1, 28, 28])
    } else {
        ("mlp.onnx", vec![1, 16])
    };
    let blob = std::fs::read(dir.join(file)).expect("model file");
    let len = shape.iter().product::<usize>();
    let data: Vec<f32> = (0..len).map(|i| (i % 97) as f32 * 0.01 - 0.4).collect();
    let t = std::time::Instant::now();
    if raw {
        let mut s = raw_session(&blob);
        for _ in 0..n {
            let input = TensorRef::from_array_view((shape.clone(), &*data)).expect("in");
            let o = s.run(ort::inputs!["x" => input]).expect("run");
            let (_, y) = o["y"].try_extract_tensor::<f32>().expect("y");
            std::hint::black_box(y.to_vec());
        }
    } else {
        let mut c = Client::connect("inproc").expect("inproc");
        c.set_model("mlp", &blob, &ModelOptions::default())
            .expect("set_model");
        c.put_tensor("x", &Tensor::from_vec(shape, data).expect("x"))
            .expect("put");
        for _ in 0..n {
            c.run_model("mlp", &["x"], &["y"]).expect("run_model");
        }
    }
    println!(
        "{:.3} us per call",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
