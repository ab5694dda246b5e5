//! Models through the server: every generated model against its Python onnxruntime
//! reference, batching, errors, DAGs, replacement and persistence.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{assert_close, err, model_cases, models_dir, ok, TestServer};
use insitu::model::ModelConfig;
use insitu::protocol::resp::Frame;
use insitu::{Client, EngineConfig, ErrorCode, ModelOptions, Tensor};

/// Every generated model, among them any model ONNX Runtime accepts: an input of unknown
/// rank, symbolic and partly known dims, an input with a default, and a scikit-learn
/// classifier with its default ZipMap output (probabilities as a [rows, classes] tensor).
const MODELS: [&str; 11] = [
    "mlp",
    "mlp_wide",
    "two_io",
    "int64",
    "ml",
    "conv",
    "bad_batch",
    "unknown_rank",
    "symbolic_dims",
    "optional_input",
    "zipmap",
];

#[test]
fn every_model_matches_onnxruntime_through_run_model_and_infer() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let mut host = None;
    for mode in common::MODES {
        let mut c = common::connect_mode(mode, &srv, &mut host, "embedded_host");
        for name in MODELS {
            let (file, cases) = model_cases(&dir, name);
            c.set_model_from_file(name, &file, &ModelOptions::default())
                .expect("set_model");
            assert!(c.model_exists(name).expect("exists"));
            assert_eq!(
                c.get_model(name).expect("get_model").as_ref(),
                std::fs::read(&file).expect("file")
            );
            for (k, case) in cases.iter().enumerate() {
                let ins: Vec<String> = (0..case.inputs.len())
                    .map(|i| format!("{name}.{k}.in{i}"))
                    .collect();
                let outs: Vec<String> = (0..case.outputs.len())
                    .map(|i| format!("{name}.{k}.out{i}"))
                    .collect();
                for (n, t) in ins.iter().zip(&case.inputs) {
                    c.put_tensor(n, t).expect("put input");
                }
                let ins_ref: Vec<&str> = ins.iter().map(String::as_str).collect();
                let outs_ref: Vec<&str> = outs.iter().map(String::as_str).collect();
                c.run_model(name, &ins_ref, &outs_ref).expect("run_model");
                for (n, want) in outs.iter().zip(&case.outputs) {
                    assert_close(
                        &c.get_tensor(n).expect("output"),
                        want,
                        &format!("{name} case {k} run_model {n}"),
                    );
                }
                let before = srv.engine.store().len();
                let got = c.infer(name, &case.inputs).expect("infer");
                assert_eq!(
                    srv.engine.store().len(),
                    before,
                    "infer leaves no keys behind"
                );
                assert_eq!(got.len(), case.outputs.len());
                for (i, (g, w)) in got.iter().zip(&case.outputs).enumerate() {
                    assert_close(g, w, &format!("{name} case {k} infer output {i}"));
                }
            }
            let info = c.model_info(name).expect("info");
            assert_eq!(info.calls, 2 * cases.len() as u64);
            assert_eq!(info.errors, 0);
            assert_eq!(
                info.samples,
                2 * cases
                    .iter()
                    .map(|c| c.inputs[0].shape()[0] as u64)
                    .sum::<u64>()
            );
            c.delete_model(name).expect("delete");
            assert!(!c.model_exists(name).expect("exists"));
        }
        c.flush_db().expect("flush");
    }
}

#[test]
fn bad_models_are_refused_with_clear_errors() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let o = ModelOptions::default();
    for bad in ["garbage.onnx", "truncated.onnx"] {
        let e = c.set_model_from_file("bad", dir.join(bad), &o).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadInput, "{bad}: {e}");
        assert!(e.text().starts_with("ERR "), "{e}");
        assert!(!c.model_exists("bad").expect("exists"));
    }
    let e = c
        .set_model_from_file("seq", dir.join("seq.onnx"), &o)
        .unwrap_err();
    assert_eq!(
        e.text(),
        "ERR output 's' of the model is a sequence, not a tensor: insitu exchanges tensors only (for scikit-learn classifiers export with options={'zipmap': False})"
    );
    let e = c
        .set_model_from_file("ext", dir.join("ext.onnx"), &o)
        .unwrap_err();
    assert_eq!(
        e.text(),
        "ERR model refers to external data file(s) [\"ext_weights.bin\"]; reading external data is disabled (start the server with --model-external-data-dir DIR to allow files from DIR)"
    );
    let mut gpu = o.clone();
    gpu.device = "GPU".into();
    let e = c
        .set_model_from_file("g", dir.join("mlp.onnx"), &gpu)
        .unwrap_err();
    assert!(
        e.text()
            .starts_with("ERR GPU requested but the CUDA execution provider is not available"),
        "{e}"
    );
    // The server keeps serving.
    c.set_model_from_file("mlp", dir.join("mlp.onnx"), &o)
        .expect("a good model still stores");
}

#[test]
fn external_data_loads_from_the_allowed_directory_only() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start_with(EngineConfig {
        models: ModelConfig {
            external_data_dir: Some(dir.clone()),
            ..ModelConfig::default()
        },
        ..EngineConfig::default()
    });
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let (file, cases) = model_cases(&dir, "ext");
    c.set_model_from_file("ext", &file, &ModelOptions::default())
        .expect("allowed");
    let got = c.infer("ext", &cases[0].inputs).expect("infer");
    assert_close(&got[0], &cases[0].outputs[0], "ext");
    // A model naming a file outside the directory is refused before ONNX Runtime sees it.
    let mut blob = std::fs::read(&file).expect("read");
    let at = blob
        .windows(15)
        .position(|w| w == b"ext_weights.bin")
        .expect("location in model");
    blob[at..at + 15].copy_from_slice(b"../../etc/x.bin");
    let e = c
        .set_model("evil", &blob, &ModelOptions::default())
        .unwrap_err();
    assert_eq!(
        e.text(),
        format!("ERR model refers to external data file '../../etc/x.bin' outside the allowed directory {}", dir.display())
    );
}

#[test]
fn concurrent_batch_one_requests_are_batched_and_each_gets_its_rows() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let addr = srv.tcp();
    let mut c = Client::connect(&addr).expect("connect");
    let file = dir.join("mlp.onnx");
    c.set_model_from_file("plain", &file, &ModelOptions::default())
        .expect("plain");
    let batched = ModelOptions {
        batch_size: 16,
        min_batch_size: 8,
        min_batch_timeout_ms: 20,
        ..Default::default()
    };
    c.set_model_from_file("batched", &file, &batched)
        .expect("batched");
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 20;
    let input = |client: usize, r: usize| {
        Tensor::from_vec(
            vec![1, 16],
            (0..16)
                .map(|j| (client * 1000 + r * 16 + j) as f32 * 1e-3 - 0.3)
                .collect(),
        )
        .expect("t")
    };
    // Expected rows from the unbatched model, one request at a time.
    let mut expected = vec![Vec::new(); CLIENTS];
    for (cl, exp) in expected.iter_mut().enumerate() {
        for r in 0..REQUESTS {
            exp.push(
                c.infer("plain", &[input(cl, r)])
                    .expect("plain infer")
                    .remove(0),
            );
        }
    }
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|cl| {
            let (addr, barrier, expected) = (addr.clone(), barrier.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&addr).expect("connect");
                barrier.wait();
                for r in 0..REQUESTS {
                    let got = c.infer("batched", &[input(cl, r)]).expect("batched infer");
                    assert_close(
                        &got[0],
                        &expected[cl][r],
                        &format!("client {cl} request {r}"),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    let info = c.model_info("batched").expect("info");
    assert_eq!(info.calls, (CLIENTS * REQUESTS) as u64);
    assert_eq!(info.samples, (CLIENTS * REQUESTS) as u64);
    assert_eq!(info.errors, 0);
    assert!(
        info.runs < info.calls,
        "batching merged requests: {} runs for {} calls",
        info.runs,
        info.calls
    );
    c.reset_model_info("batched").expect("reset");
    assert_eq!(
        c.model_info("batched").expect("info"),
        insitu::ModelInfo::default()
    );
}

#[test]
fn a_bad_request_fails_alone_and_bad_batch_models_are_caught() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    c.set_model_from_file(
        "mlp",
        dir.join("mlp.onnx"),
        &ModelOptions {
            batch_size: 8,
            ..Default::default()
        },
    )
    .expect("mlp");
    let good = Tensor::from_vec(vec![1, 16], vec![0.5f32; 16]).expect("t");
    let wrong_dtype = Tensor::from_vec(vec![1, 16], vec![0.5f64; 16]).expect("t");
    let wrong_shape = Tensor::from_vec(vec![1, 15], vec![0.5f32; 15]).expect("t");
    let e = c.infer("mlp", &[wrong_dtype]).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))"
    );
    let e = c.infer("mlp", &[wrong_shape]).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR Got invalid dimensions for input: x for the following indices  index: 1 Got: 15 Expected: 16  Please fix either the inputs/outputs or the model."
    );
    let e = c.infer("mlp", &[good.clone(), good.clone()]).unwrap_err();
    assert_eq!(
        e.text(),
        "Number of keys given as INPUTS here does not match model definition"
    );
    assert_eq!(c.infer("mlp", &[good]).expect("good request").len(), 1);
    c.set_model_from_file(
        "bb",
        dir.join("bad_batch.onnx"),
        &ModelOptions {
            batch_size: 8,
            ..Default::default()
        },
    )
    .expect("bb");
    let x = Tensor::from_vec(vec![3, 4], vec![1.0f32; 12]).expect("t");
    let e = c.infer("bb", &[x]).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR Model did not generate the expected batch size"
    );
    assert_eq!(c.model_info("bb").expect("info").errors, 1);
}

#[test]
fn model_command_errors_match_redisai() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let blob = std::fs::read(dir.join("mlp.onnx")).expect("mlp");
    let mut r = srv.raw();
    let cases: &[(&[&[u8]], &str)] = &[
        (&[b"AI.MODELSTORE", b"m", b"ONNX"], "ERR wrong number of arguments for 'AI.MODELSTORE' command"),
        (&[b"AI.MODELSTORE", b"m", b"FOO", b"CPU", b"BLOB", b"x"], "ERR unsupported backend"),
        (&[b"AI.MODELSTORE", b"m", b"TORCH", b"CPU", b"BLOB", b"x"], "ERR backend TORCH is not supported by insitu: export the model to ONNX (tf2onnx, torch.onnx.export) and store it with backend ONNX"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"TPU", b"BLOB", b"x"], "ERR Invalid DEVICE"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BATCHSIZE", b"x", b"BLOB", b"x"], "ERR Invalid argument for BATCHSIZE"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"MINBATCHSIZE", b"2", b"BLOB", b"x"], "ERR MINBATCHSIZE specified without BATCHSIZE"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BATCHSIZE", b"2", b"MINBATCHTIMEOUT", b"2", b"BLOB", b"x"], "ERR MINBATCHTIMEOUT specified without MINBATCHSIZE"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"INPUTS", b"1", b"x", b"BLOB", b"x"], "ERR INPUTS argument should not be specified for this backend"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"TAG", b"t"], "ERR Insufficient arguments, missing model BLOB"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BLOB"], "ERR wrong number of arguments for 'AI.MODELSTORE' command"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"TAG", b"t", b"BLOB"], "ERR Insufficient arguments, missing model BLOB"),
        (&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"SOMETHING", b"x"], "ERR Invalid argument, expected BLOB"),
        (&[b"AI.MODELGET", b"nope"], "ERR model key is empty"),
        (&[b"AI.MODELDEL", b"nope"], "ERR model key is empty"),
        (&[b"AI.MODELEXECUTE", b"nope", b"INPUTS", b"1", b"a", b"OUTPUTS", b"1", b"b"], "ERR model key is empty"),
        (&[b"AI.INFO", b"nope"], "ERR cannot find run info for key"),
        (&[b"AI.SCRIPTSET", b"s", b"CPU", b"SOURCE", b"def f(a): return a"], "ERR TorchScript is not supported by insitu (it needs the Torch backend): express the computation as an ONNX model and use AI.MODELSTORE / AI.MODELEXECUTE"),
        (&[b"AI.DAGEXECUTE", b"|>", b"AI.TENSORSET", b"a", b"FLOAT", b"1"], "ERR AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords"),
        (&[b"AI.DAGEXECUTE_RO", b"PERSIST", b"1", b"a", b"|>", b"AI.TENSORGET", b"a"], "ERR PERSIST cannot be specified in a read-only DAG"),
        (&[b"AI.DAGEXECUTE", b"LOAD", b"1", b"missing", b"|>", b"AI.TENSORGET", b"missing"], "ERR tensor key is empty or in a different shard"),
    ];
    common::assert_errors(&mut r, cases);
    assert_eq!(
        r.cmd(&[b"AI.CONFIG", b"GET", b"MODEL_CHUNK_SIZE"]),
        Frame::Integer(511 << 20)
    );
    assert_eq!(r.cmd(&[b"AI.CONFIG", b"MODEL_CHUNK_SIZE", b"1000"]), ok());
    assert_eq!(
        r.cmd(&[b"AI.CONFIG", b"GET", b"MODEL_CHUNK_SIZE"]),
        Frame::Integer(1000)
    );
    // Chunks concatenate (the client splits at MODEL_CHUNK_SIZE = 1000 now).
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    c.set_model(
        "mlp",
        &blob,
        &ModelOptions {
            tag: "v1".into(),
            batch_size: 4,
            min_batch_size: 2,
            min_batch_timeout_ms: 7,
            ..Default::default()
        },
    )
    .expect("chunked store");
    assert_eq!(c.get_model("mlp").expect("get").as_ref(), &blob[..]);
    let meta = r.cmd(&[b"AI.MODELGET", b"mlp", b"META"]);
    let expect_meta = vec![
        common::bulk(b"backend"),
        common::bulk(b"ONNX"),
        common::bulk(b"device"),
        common::bulk(b"CPU"),
        common::bulk(b"tag"),
        common::bulk(b"v1"),
        common::bulk(b"batchsize"),
        Frame::Integer(4),
        common::bulk(b"minbatchsize"),
        Frame::Integer(2),
        common::bulk(b"inputs"),
        Frame::Array(vec![common::bulk(b"x")]),
        common::bulk(b"outputs"),
        Frame::Array(vec![common::bulk(b"y")]),
        common::bulk(b"minbatchtimeout"),
        Frame::Integer(7),
    ];
    assert_eq!(meta, Frame::Array(expect_meta.clone()));
    let mut full = expect_meta;
    full.extend([common::bulk(b"blob"), common::bulk(&blob)]);
    assert_eq!(r.cmd(&[b"AI.MODELGET", b"mlp"]), Frame::Array(full));
    assert_eq!(
        r.cmd(&[b"AI._MODELSCAN"]),
        Frame::Array(vec![Frame::Array(vec![
            common::bulk(b"mlp"),
            common::bulk(b"v1")
        ])])
    );
    assert_eq!(r.cmd(&[b"TYPE", b"mlp"]), Frame::simple("AI__MODEL"));
    // MODELEXECUTE argument errors.
    r.cmd(&[b"AI.TENSORSET", b"x", b"FLOAT", b"1", b"16"]);
    let exec: &[(&[&[u8]], &str)] = &[
        (
            &[b"AI.MODELEXECUTE", b"mlp", b"OUTPUTS", b"1", b"y"],
            "ERR wrong number of arguments for 'AI.MODELEXECUTE' command",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"TIMEOUT",
                b"1000",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
            ],
            "ERR INPUTS not specified",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"x",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
            ],
            "ERR Invalid argument for input_count",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"0",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
            ],
            "ERR Input count must be a positive integer",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"2",
                b"x",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
            ],
            "Number of keys given as INPUTS here does not match model definition",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"2",
                b"y",
                b"z",
            ],
            "Number of keys given as OUTPUTS here does not match model definition",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"NOT_OUTPUTS",
                b"1",
                b"y",
            ],
            "ERR OUTPUTS not specified",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
                b"bad_arg",
            ],
            "Invalid argument: bad_arg",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
                b"TIMEOUT",
                b"5",
                b"bad_arg",
            ],
            "Invalid argument: bad_arg",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
                b"TIMEOUT",
            ],
            "ERR No value provided for TIMEOUT",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"x",
                b"OUTPUTS",
                b"1",
                b"y",
                b"TIMEOUT",
                b"-5",
            ],
            "ERR Invalid value for TIMEOUT",
        ),
        (
            &[
                b"AI.MODELEXECUTE",
                b"mlp",
                b"INPUTS",
                b"1",
                b"nokey",
                b"OUTPUTS",
                b"1",
                b"y",
            ],
            "ERR tensor key is empty or in a different shard",
        ),
    ];
    common::assert_errors(&mut r, exec);
    assert_eq!(
        r.cmd(&[
            b"AI.MODELEXECUTE",
            b"mlp",
            b"INPUTS",
            b"1",
            b"x",
            b"OUTPUTS",
            b"1",
            b"y"
        ]),
        ok()
    );
    // A DAG op reading a key nothing provides: RedisAI's error before any op runs;
    // nothing persists.
    let reply = r.cmd(&[
        b"AI.DAGEXECUTE",
        b"PERSIST",
        b"1",
        b"out",
        b"|>",
        b"AI.TENSORSET",
        b"in",
        b"FLOAT",
        b"1",
        b"16",
        b"|>",
        b"AI.MODELEXECUTE",
        b"mlp",
        b"INPUTS",
        b"1",
        b"absent",
        b"OUTPUTS",
        b"1",
        b"out",
        b"|>",
        b"AI.TENSORGET",
        b"out",
        b"META",
    ]);
    assert_eq!(reply, err("ERR INPUT key cannot be found in DAG"));
    assert_eq!(r.cmd(&[b"EXISTS", b"out", b"in"]), Frame::Integer(0));
    let reply = r.cmd(&[
        b"AI.DAGEXECUTE",
        b"LOAD",
        b"1",
        b"x",
        b"PERSIST",
        b"1",
        b"out",
        b"|>",
        b"AI.MODELEXECUTE",
        b"mlp",
        b"INPUTS",
        b"1",
        b"x",
        b"OUTPUTS",
        b"1",
        b"out",
        b"|>",
        b"AI.TENSORGET",
        b"out",
        b"BLOB",
    ]);
    let Frame::Array(items) = reply else {
        panic!("array")
    };
    assert_eq!(items[0], ok());
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"out", b"BLOB"]),
        items[1],
        "PERSIST stored what TENSORGET returned"
    );
    assert_eq!(r.cmd(&[b"AI.MODELDEL", b"mlp"]), ok());
    assert_eq!(r.cmd(&[b"EXISTS", b"mlp"]), Frame::Integer(0));
}

#[test]
fn timeout_answers_timedout_while_the_request_waits() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    // A batch that waits for 64 rows with no time limit: the request can only time out.
    let opts = ModelOptions {
        batch_size: 64,
        min_batch_size: 64,
        ..Default::default()
    };
    c.set_model_from_file("slow", dir.join("mlp.onnx"), &opts)
        .expect("store");
    c.put_tensor(
        "x",
        &Tensor::from_vec(vec![1, 16], vec![1.0f32; 16]).expect("t"),
    )
    .expect("put");
    let mut r = srv.raw();
    let t0 = Instant::now();
    let reply = r.cmd(&[
        b"AI.MODELEXECUTE",
        b"slow",
        b"INPUTS",
        b"1",
        b"x",
        b"OUTPUTS",
        b"1",
        b"y",
        b"TIMEOUT",
        b"100",
    ]);
    assert_eq!(reply, Frame::simple("TIMEDOUT"));
    assert!(t0.elapsed() >= Duration::from_millis(90) && t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.cmd(&[b"EXISTS", b"y"]), Frame::Integer(0));
    // Other clients are served meanwhile and after.
    assert_eq!(r.cmd(&[b"PING"]), Frame::simple("PONG"));
}

#[test]
fn replacing_a_model_lets_calls_in_flight_finish_on_the_old_one() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let addr = srv.tcp();
    let mut c = Client::connect(&addr).expect("connect");
    let (mlp, cases) = model_cases(&dir, "mlp");
    // The old model holds its single request for 400 ms waiting for a batch.
    let opts = ModelOptions {
        batch_size: 8,
        min_batch_size: 8,
        min_batch_timeout_ms: 400,
        ..Default::default()
    };
    c.set_model_from_file("m", &mlp, &opts).expect("old");
    c.model_io("m").expect("io");
    let input = cases[0].inputs.clone();
    let want = cases[0].outputs[0].clone();
    let in_flight = std::thread::spawn(move || c.infer("m", &input).expect("in-flight call"));
    std::thread::sleep(Duration::from_millis(100));
    let mut d = Client::connect(&addr).expect("connect");
    let (ml, ml_cases) = model_cases(&dir, "ml");
    d.set_model_from_file("m", &ml, &ModelOptions::default())
        .expect("new");
    let got = in_flight.join().expect("join");
    assert_close(&got[0], &want, "in-flight call answered by the old model");
    let now = d.infer("m", &ml_cases[0].inputs).expect("new model");
    assert_close(
        &now[0],
        &ml_cases[0].outputs[0],
        "next call uses the new model",
    );
}

#[test]
fn models_survive_save_and_restart() {
    let Some(dir) = models_dir() else { return };
    let srv = TestServer::start();
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let (file, cases) = model_cases(&dir, "two_io");
    c.set_model_from_file(
        "two",
        &file,
        &ModelOptions {
            tag: "t1".into(),
            batch_size: 4,
            ..Default::default()
        },
    )
    .expect("store");
    c.save().expect("save");
    drop(c);
    let d = srv.stop();
    let srv = TestServer::start_in(EngineConfig::default(), d);
    let mut c = Client::connect(&srv.unix()).expect("connect");
    assert_eq!(
        c.get_model("two").expect("blob").as_ref(),
        std::fs::read(&file).expect("file")
    );
    let got = c
        .infer("two", &cases[1].inputs)
        .expect("infer after restart");
    for (g, w) in got.iter().zip(&cases[1].outputs) {
        assert_close(g, w, "two_io after restart");
    }
    let mut r = srv.raw();
    let Frame::Array(meta) = r.cmd(&[b"AI.MODELGET", b"two", b"META"]) else {
        panic!("meta")
    };
    assert_eq!(meta[5], common::bulk(b"t1"));
    assert_eq!(meta[7], Frame::Integer(4));
}

/// The host process of the "embedded" mode (does nothing in a normal test run).
#[test]
fn embedded_host() {
    common::embedded_host();
}

#[test]
fn inproc_run_model_runs_on_the_calling_thread_and_batched_models_still_batch() {
    let Some(dir) = models_dir() else { return };
    let engine = std::sync::Arc::new(insitu::Engine::new(EngineConfig::default()));
    let mut c = Client::inproc(engine.clone()).expect("inproc");
    let (file, cases) = model_cases(&dir, "conv");
    c.set_model_from_file("conv", &file, &ModelOptions::default())
        .expect("store");
    let got = c.infer("conv", &cases[1].inputs).expect("infer");
    assert_close(&got[0], &cases[1].outputs[0], "inproc infer");
    c.put_tensor("img", &cases[0].inputs[0]).expect("put");
    c.run_model("conv", &["img"], &["out"]).expect("run");
    assert_close(
        &c.get_tensor("out").expect("out"),
        &cases[0].outputs[0],
        "inproc run_model",
    );
    let info = c.model_info("conv").expect("info");
    assert_eq!((info.calls, info.runs, info.errors), (2, 2, 0));
    // The stored output is the very buffer the model produced: a get shares it.
    let a = c.get_tensor("out").expect("out");
    let b = c.get_tensor("out").expect("out");
    assert_eq!(
        a.data().as_ptr(),
        b.data().as_ptr(),
        "inproc get does not copy"
    );
    // A put hands over the caller's buffer.
    let mine = Tensor::from_vec(vec![1 << 20], vec![1.5f32; 1 << 20]).expect("t");
    c.put_tensor("big", &mine).expect("put");
    let back = c.get_tensor("big").expect("get");
    assert_eq!(
        back.data().as_ptr(),
        mine.data().as_ptr(),
        "inproc put does not copy"
    );
}

#[test]
fn cheap_runs_move_onto_the_connection_thread_once_measured() {
    let Some(dir) = models_dir() else { return };
    let file = dir.join("mlp.onnx");
    let (_, cases) = model_cases(&dir, "mlp");
    let x = &cases[0].inputs[0];
    let inline_runs = |c: &mut Client| -> u64 {
        let info = c.info("stats").expect("info");
        info.iter()
            .find(|(_, k, _)| k == "insitu_inline_model_runs")
            .map(|(_, _, v)| v.parse().expect("number"))
            .expect("insitu_inline_model_runs in INFO stats")
    };
    // A threshold far above any run's cost (a loaded machine runs a debug build slowly),
    // so which way a request goes does not depend on timing; and 0, which never inlines.
    for (max_us, inline_expected) in [(10_000_000u64, true), (0, false)] {
        let srv = TestServer::start_with(EngineConfig {
            models: ModelConfig {
                inline_max_us: max_us,
                ..ModelConfig::default()
            },
            ..EngineConfig::default()
        });
        let mut c = Client::connect(&srv.tcp()).expect("connect");
        c.set_model_from_file("mlp", &file, &ModelOptions::default())
            .expect("set_model");
        c.put_tensor("x", x).expect("put");
        for i in 0..40 {
            // Every path gives the same rows, inline or not.
            c.run_model("mlp", &["x"], &["y"]).expect("run_model");
            assert_close(&c.get_tensor("y").expect("y"), &cases[0].outputs[0], "mlp");
            let got = c.infer("mlp", std::slice::from_ref(x)).expect("infer");
            assert_close(&got[0], &cases[0].outputs[0], "mlp");
            // The first 16 runs are measured on the inference threads.
            if i < 8 {
                assert_eq!(inline_runs(&mut c), 0, "run {i}");
            }
        }
        let n = inline_runs(&mut c);
        if inline_expected {
            // 80 runs; the first 16 measured on the inference threads.
            assert_eq!(n, 64, "every run after the 16 measured ones inline");
        } else {
            assert_eq!(n, 0);
        }
        let info = c.model_info("mlp").expect("info");
        assert_eq!((info.calls, info.runs, info.errors), (80, 80, 0));
        // A model with batching never runs inline: its requests must meet in the batcher.
        let batched = ModelOptions {
            batch_size: 8,
            ..ModelOptions::default()
        };
        c.set_model_from_file("mlp_b", &file, &batched)
            .expect("set");
        let before = inline_runs(&mut c);
        for _ in 0..30 {
            let got = c.infer("mlp_b", std::slice::from_ref(x)).expect("infer");
            assert_close(&got[0], &cases[0].outputs[0], "mlp_b");
        }
        assert_eq!(inline_runs(&mut c), before);
    }
}
