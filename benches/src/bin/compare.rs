//! The side-by-side comparison harness: starts `insitu serve` and `redis-server` on
//! loopback and runs the same workloads against each in one run, next to a memory copy
//! and raw ONNX Runtime; writes every figure and where each target stands as JSON, which
//! `benches/report.py` turns into BENCHMARKS.md and plots.
//!
//! ```sh
//! ./dev.sh compare                       # the documented command (release build)
//! INSITU_BIN=target/release/insitu INSITU_TEST_MODELS=DIR \
//!     target/release/compare --out results.json [--quick]
//! ```
//!
//! Sections: put+get round trips (1 KiB .. 16 MiB, 1 and 32 clients: in process, Unix
//! socket + shared memory, TCP, redis-server SET/GET, memory copy); inference in process
//! and through the server (a tiny MLP, a mid-size MLP and a small CNN at batch 1 and 32 vs
//! raw ONNX Runtime); redis-benchmark (AI.TENSORSET/GET vs SET/GET at 1 and 32 clients and
//! pipelined, AI.MODELEXECUTE vs SET, AI.DAGEXECUTE vs PING, AI.MODELEXECUTE of each model;
//! each beside RedisAI 1.2.7 when INSITU_REDISAI_MODULE names its module, as
//! `./dev.sh compare` does after building it with benches/redisai/build.sh); dynamic batching (32 batch-1 requesters, with and without
//! batching, vs raw ONNX Runtime at batch 32); tail latency (256 clients on one event
//! loop). `--quick` runs every cell briefly: a smoke test that keeps the harness working,
//! not a measurement.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use insitu::{Client, ModelOptions, Tensor};
use insitu_benches::{raw_session, BenchServer, RedisServer};
use ort::value::TensorRef;
use serde_json::{json, Value};

/// Latency percentiles (us) and throughput of one cell.
#[derive(Clone, Copy, Default)]
struct Stat {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    ops_per_s: f64,
    ops: usize,
}

fn stat(mut us: Vec<f64>, elapsed_s: f64) -> Stat {
    us.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if us.is_empty() {
            return f64::NAN;
        }
        us[(((p / 100.0) * (us.len() - 1) as f64).round() as usize).min(us.len() - 1)]
    };
    Stat {
        p50: pct(50.0),
        p99: pct(99.0),
        p999: pct(99.9),
        max: us.last().copied().unwrap_or(f64::NAN),
        ops_per_s: us.len() as f64 / elapsed_s.max(1e-9),
        ops: us.len(),
    }
}

/// `clients` threads, each with its own state from `init`, repeating `op` for `dur`.
fn run_clients<S>(
    clients: usize,
    dur: Duration,
    init: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) + Sync,
) -> Stat {
    let (us, secs) = run_clients_raw(clients, dur, init, op);
    stat(us, secs)
}

/// [`run_clients`] returning every latency (us) and the seconds it ran.
fn run_clients_raw<S>(
    clients: usize,
    dur: Duration,
    init: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) + Sync,
) -> (Vec<f64>, f64) {
    let barrier = Barrier::new(clients + 1);
    let (all, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (barrier, init, op) = (&barrier, &init, &op);
                s.spawn(move || {
                    // Warm up (connections, sessions, shared memory); a failure still reaches
                    // the barrier, so the others are not left waiting, then re-raises.
                    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut state = init(i);
                        op(&mut state);
                        state
                    }));
                    barrier.wait();
                    let mut state = ready.unwrap_or_else(|e| std::panic::resume_unwind(e));
                    let start = Instant::now();
                    let mut us = Vec::with_capacity(1024);
                    while start.elapsed() < dur {
                        let t = Instant::now();
                        op(&mut state);
                        us.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    us
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().expect("client thread"));
        }
        (all, start.elapsed().as_secs_f64())
    });
    (all, elapsed)
}

struct Out {
    rows: Vec<Value>,
    targets: Vec<Value>,
}

impl Out {
    fn row(&mut self, section: &str, workload: &str, contender: &str, clients: usize, s: Stat) {
        println!(
            "{section:<10} {workload:<34} {contender:<30} c={clients:<3} p50 {:>10.2} us  p99 {:>10.2} us  {:>12.0} ops/s",
            s.p50, s.p99, s.ops_per_s
        );
        self.rows.push(json!({
            "section": section, "workload": workload, "contender": contender,
            "clients": clients, "p50_us": s.p50, "p99_us": s.p99, "p999_us": s.p999,
            "max_us": s.max, "ops_per_s": s.ops_per_s, "ops": s.ops,
        }));
    }

    fn target(&mut self, name: &str, value: f64, goal: &str, met: bool, detail: String) {
        println!(
            "target {name}: {value:.2} (goal {goal}) {}  [{detail}]",
            if met { "MET" } else { "MISSED" }
        );
        self.targets.push(json!({
            "name": name, "value": value, "goal": goal, "met": met, "detail": detail,
        }));
    }
}

fn sizes() -> [(&'static str, usize); 4] {
    [
        ("1 KiB", 1 << 10),
        ("64 KiB", 64 << 10),
        ("1 MiB", 1 << 20),
        ("16 MiB", 16 << 20),
    ]
}

fn tensor_of(bytes: usize) -> Tensor {
    let n = bytes / 4;
    Tensor::from_vec(vec![n], (0..n).map(|i| i as f32).collect()).expect("tensor")
}

/// put+get round trips, 1 and 32 clients, every mode and the peers: three interleaved
/// rounds of `dur / 3` each, so that the machine's drifts hit every contender alike.
fn put_get(out: &mut Out, srv: &BenchServer, redis: Option<&RedisServer>, dur: Duration) {
    const ROUNDS: u32 = 3;
    let part = dur / ROUNDS;
    for (label, bytes) in sizes() {
        let t = tensor_of(bytes);
        for clients in [1usize, 32] {
            let workload = format!("put+get {label} float32");
            let src = t.data().to_vec();
            let names = [
                "memory copy (1x size)",
                "insitu inproc",
                "insitu unix+shm",
                "insitu tcp",
                "redis-server tcp SET+GET",
            ];
            let mut acc: Vec<(Vec<f64>, f64)> = vec![(Vec::new(), 0.0); names.len()];
            for _ in 0..ROUNDS {
                let mut add = |i: usize, (us, secs): (Vec<f64>, f64)| {
                    acc[i].0.extend(us);
                    acc[i].1 += secs;
                };
                add(
                    0,
                    run_clients_raw(
                        clients,
                        part,
                        |_| (src.clone(), vec![0u8; bytes]),
                        |(a, b)| {
                            b.copy_from_slice(a);
                            std::hint::black_box(&b);
                        },
                    ),
                );
                for (i, addr) in [
                    (1, "inproc".to_string()),
                    (2, srv.unix.clone()),
                    (3, srv.tcp.clone()),
                ] {
                    let engine = srv.engine.clone();
                    add(
                        i,
                        run_clients_raw(
                            clients,
                            part,
                            |i| {
                                let c = if addr == "inproc" {
                                    Client::inproc(engine.clone()).expect("inproc")
                                } else {
                                    Client::connect(&addr).expect("connect")
                                };
                                (c, format!("k{i}"))
                            },
                            |(c, k)| {
                                c.put_tensor(k, &t).expect("put");
                                std::hint::black_box(c.get_tensor(k).expect("get"));
                            },
                        ),
                    );
                }
                if let Some(r) = redis {
                    let blob = t.data().clone();
                    add(
                        4,
                        run_clients_raw(
                            clients,
                            part,
                            |i| {
                                (
                                    Client::connect(&r.address()).expect("redis"),
                                    format!("k{i}"),
                                )
                            },
                            |(c, k)| {
                                c.command(&[b"SET".as_slice(), k.as_bytes(), &blob])
                                    .expect("set");
                                std::hint::black_box(c.command(&["GET", k.as_str()]).expect("get"));
                            },
                        ),
                    );
                }
            }
            for (name, (us, secs)) in names.iter().zip(acc) {
                if !us.is_empty() {
                    out.row("put_get", &workload, name, clients, stat(us, secs));
                }
            }
        }
    }
}

/// The inference rows' models (generated by core/tests/models/gen_models.py, input `x`,
/// output `y`): file, label, one row's shape. The tiny MLP is what the targets name; the
/// mid-size MLP (~1 MFLOP per row) and the small CNN show how the figures hold as the
/// model's own work grows.
const MODELS: [(&str, &str, &[usize]); 3] = [
    ("mlp.onnx", "MLP 16-32-4", &[16]),
    ("mlp_mid.onnx", "MLP 256-1024-256", &[256]),
    ("cnn.onnx", "CNN 1x28x28", &[1, 28, 28]),
];

/// The batch sizes of the inference rows.
const BATCHES: [usize; 2] = [1, 32];

/// A model's input at `batch`: its shape and deterministic values.
fn model_input(row: &[usize], batch: usize) -> (Vec<usize>, Vec<f32>) {
    let shape: Vec<usize> = std::iter::once(batch).chain(row.iter().copied()).collect();
    let n = shape.iter().product::<usize>();
    let data = (0..n).map(|i| (i % 97) as f32 * 0.01 - 0.4).collect();
    (shape, data)
}

/// One client's calls, each timed (us); the seconds they took.
struct Timed {
    us: Vec<f64>,
    secs: f64,
}

/// Rounds of [`interleaved`]: each contender runs `dur / ROUNDS` at a time, in turn.
const ROUNDS: u32 = 10;

/// Runs each of `ops` in turn for `dur / ROUNDS` at a time, `ROUNDS` times over, and
/// returns each one's latencies: contenders on one thread, interleaved, so a machine
/// whose speed drifts during the run (this VM's does) moves all of them alike.
fn interleaved(dur: Duration, ops: &mut [Box<dyn FnMut() + '_>]) -> Vec<Stat> {
    let slice = dur / ROUNDS;
    let mut acc: Vec<Timed> = ops
        .iter()
        .map(|_| Timed {
            us: Vec::new(),
            secs: 0.0,
        })
        .collect();
    for op in ops.iter_mut() {
        op(); // warm up
    }
    for _ in 0..ROUNDS {
        for (op, a) in ops.iter_mut().zip(acc.iter_mut()) {
            let start = Instant::now();
            while start.elapsed() < slice {
                let t = Instant::now();
                op();
                a.us.push(t.elapsed().as_secs_f64() * 1e6);
            }
            a.secs += start.elapsed().as_secs_f64();
        }
    }
    acc.into_iter().map(|a| stat(a.us, a.secs)).collect()
}

/// Every model at batch 1 and 32: raw ONNX Runtime, run_model and infer in every mode,
/// interleaved on one thread.
fn inference(out: &mut Out, srv: &BenchServer, models: &std::path::Path, dur: Duration) {
    let opts = ModelOptions::default();
    for (file, label, row) in MODELS {
        let blob = std::fs::read(models.join(file)).expect("model file");
        let key = file.trim_end_matches(".onnx");
        for batch in BATCHES {
            let (shape, data) = model_input(row, batch);
            let x = Tensor::from_vec(shape.clone(), data.clone()).expect("x");
            let workload = format!("{label} batch {batch}");
            let mut session = raw_session(&blob);
            let mut clients: Vec<(&str, Client)> = [
                ("inproc", Client::inproc(srv.engine.clone())),
                ("unix", Client::connect(&srv.unix)),
                ("tcp", Client::connect(&srv.tcp)),
            ]
            .into_iter()
            .map(|(mode, c)| {
                let mut c = c.expect("connect");
                c.set_model(key, &blob, &opts).expect("set_model");
                c.put_tensor("x", &x).expect("put");
                (mode, c)
            })
            .collect();
            let mut raw = || {
                let input = TensorRef::from_array_view((shape.clone(), &*data)).expect("in");
                let o = session.run(ort::inputs!["x" => input]).expect("run");
                let (_, y) = o["y"].try_extract_tensor::<f32>().expect("y");
                std::hint::black_box(y.to_vec());
            };
            let mut names = vec!["raw ONNX Runtime (in process)".to_string()];
            let mut ops: Vec<Box<dyn FnMut() + '_>> = vec![Box::new(&mut raw)];
            for (mode, c) in clients.iter_mut() {
                // Each client serves two contenders, in turn.
                let c = std::cell::RefCell::new(c);
                let c = std::rc::Rc::new(c);
                let (c1, c2) = (c.clone(), c);
                names.push(format!("insitu {mode} run_model"));
                ops.push(Box::new(move || {
                    c1.borrow_mut()
                        .run_model(key, &["x"], &["y"])
                        .expect("run_model");
                }));
                names.push(format!("insitu {mode} infer"));
                let x = &x;
                ops.push(Box::new(move || {
                    std::hint::black_box(
                        c2.borrow_mut()
                            .infer(key, std::slice::from_ref(x))
                            .expect("infer"),
                    );
                }));
            }
            let stats = interleaved(dur, &mut ops);
            drop(ops);
            for (name, s) in names.iter().zip(&stats) {
                out.row("inference", &workload, name, 1, *s);
            }
            let raw = stats[0];
            for (call, s, goal) in [("run_model", stats[1], 1.05), ("infer", stats[2], 1.02)] {
                let r = s.p50 / raw.p50;
                out.target(
                    &format!("inproc {call} {workload} vs raw ONNX Runtime (latency)"),
                    r,
                    &format!("<= {goal}x"),
                    r <= goal,
                    format!("{:.2} vs {:.2} us", s.p50, raw.p50),
                );
            }
        }
    }
}

/// One redis-benchmark run: `args` is a command (or `-t test` options).
fn redis_benchmark(port: u16, clients: usize, n: usize, pipeline: usize, args: &[&str]) -> Stat {
    let o = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "--csv", "-r", "1"])
        .args(args)
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&o.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    // "p99_latency_ms","max_latency_ms"
    let line = text
        .lines()
        .find(|l| !l.starts_with("\"test\"") && l.contains(','))
        .unwrap_or_else(|| {
            panic!(
                "redis-benchmark printed no result: {text} {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    let f: Vec<f64> = line
        .split(',')
        .skip(1)
        .map(|v| v.trim_matches('"').parse().unwrap_or(f64::NAN))
        .collect();
    Stat {
        ops_per_s: f[0],
        p50: f[3] * 1e3,
        p99: f[5] * 1e3,
        p999: f64::NAN,
        max: f[6] * 1e3,
        ops: n,
    }
}

/// `a` and `b` run alternately `reps` times each; the run with each's median rate.
fn rb_pair(
    reps: usize,
    a: (u16, &[&str]),
    b: (u16, &[&str]),
    clients: usize,
    n: usize,
    pipeline: usize,
) -> (Stat, Stat) {
    let v = rb_group(reps, &[a, b], clients, n, pipeline);
    (v[0], v[1])
}

/// Each of `peers` in turn, `reps` rounds; for each, the run with its median rate.
fn rb_group(
    reps: usize,
    peers: &[(u16, &[&str])],
    clients: usize,
    n: usize,
    pipeline: usize,
) -> Vec<Stat> {
    let mut runs: Vec<Vec<Stat>> = vec![Vec::new(); peers.len()];
    for _ in 0..reps {
        for (i, (port, args)) in peers.iter().enumerate() {
            runs[i].push(redis_benchmark(*port, clients, n, pipeline, args));
        }
    }
    runs.into_iter()
        .map(|mut v| {
            v.sort_by(|x, y| x.ops_per_s.total_cmp(&y.ops_per_s));
            v[v.len() / 2]
        })
        .collect()
}

/// RedisAI 1.2.7 with its ONNX Runtime backend, loaded into a redis-server of its own:
/// the module built by benches/redisai/build.sh (`./dev.sh compare` passes its path in
/// INSITU_REDISAI_MODULE), linked against the same ONNX Runtime library as insitu and
/// configured as insitu runs by default (one inference thread per core, one intra-op and
/// one inter-op thread per session).
struct RedisAi {
    server: Option<RedisServer>,
    /// Why there are no RedisAI rows, when there are none.
    note: String,
}

impl RedisAi {
    fn start() -> RedisAi {
        let Some(module) = std::env::var_os("INSITU_REDISAI_MODULE").map(PathBuf::from) else {
            let why = std::env::var("INSITU_REDISAI_NOTE")
                .unwrap_or_else(|_| "RedisAI not built (./dev.sh compare builds it)".into());
            return RedisAi::none(why);
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let args = [
            "THREADS_PER_QUEUE",
            &threads.to_string(),
            "INTRA_OP_PARALLELISM",
            "1",
            "INTER_OP_PARALLELISM",
            "1",
        ];
        match RedisServer::start_module(&module, &args) {
            Some(server) => RedisAi {
                server: Some(server),
                note: format!(
                    "RedisAI 1.2.7 (ONNX backend only, built by benches/redisai/build.sh against \
                     the same ONNX Runtime library), THREADS_PER_QUEUE {threads}, \
                     INTRA_OP_PARALLELISM 1, INTER_OP_PARALLELISM 1: {}",
                    module.display()
                ),
            },
            None => RedisAi::none(format!(
                "redis-server did not start with the RedisAI module {}",
                module.display()
            )),
        }
    }

    fn none(why: String) -> RedisAi {
        println!("no RedisAI rows: {why}");
        RedisAi {
            server: None,
            note: format!("No RedisAI rows in this run: {why}."),
        }
    }

    fn port(&self) -> Option<u16> {
        self.server.as_ref().map(RedisServer::port)
    }
}

/// A `redis` connection to a server on loopback (to load models and inputs into insitu and
/// RedisAI alike, and to read their outputs back).
fn redis_conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

/// Stores `model` under `key` and the input `x` under `input`, runs it once into `output`
/// and returns the output's bytes: the same calls on insitu and on RedisAI.
fn load_and_run(
    port: u16,
    key: &str,
    model: &[u8],
    input: &str,
    output: &str,
    x: &Tensor,
) -> Vec<u8> {
    let mut con = redis_conn(port);
    let _: () = redis::cmd("AI.MODELSTORE")
        .arg(key)
        .arg("ONNX")
        .arg("CPU")
        .arg("BLOB")
        .arg(model)
        .query(&mut con)
        .expect("AI.MODELSTORE");
    let mut set = redis::cmd("AI.TENSORSET");
    set.arg(input).arg("FLOAT");
    for d in x.shape() {
        set.arg(*d);
    }
    let _: () = set
        .arg("BLOB")
        .arg(&x.data()[..])
        .query(&mut con)
        .expect("AI.TENSORSET");
    let _: () = redis::cmd("AI.MODELEXECUTE")
        .arg(key)
        .arg("INPUTS")
        .arg(1)
        .arg(input)
        .arg("OUTPUTS")
        .arg(1)
        .arg(output)
        .query(&mut con)
        .expect("AI.MODELEXECUTE");
    redis::cmd("AI.TENSORGET")
        .arg(output)
        .arg("BLOB")
        .query(&mut con)
        .expect("AI.TENSORGET")
}

/// [`load_and_run`] on insitu and, when it runs, on RedisAI; their outputs must agree.
fn load_on_both(
    insitu_port: u16,
    redisai_port: Option<u16>,
    key: &str,
    model: &[u8],
    (input, output): (&str, &str),
    x: &Tensor,
) {
    let mine = load_and_run(insitu_port, key, model, input, output, x);
    if let Some(port) = redisai_port {
        let theirs = load_and_run(port, key, model, input, output, x);
        assert!(
            same_floats(&mine, &theirs),
            "RedisAI and insitu disagree on {key} at shape {:?}",
            x.shape()
        );
    }
}

/// Whether two float32 outputs agree (the same ONNX Runtime on both sides: equal up to
/// the order of float sums).
fn same_floats(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.chunks_exact(4).zip(b.chunks_exact(4)).all(|(x, y)| {
            let x = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            let y = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
            (x - y).abs() <= 1e-4 * (1.0 + x.abs())
        })
}

/// Commands through the server measured with redis-benchmark, next to RedisAI and
/// redis-server.
fn with_redis_benchmark(
    out: &mut Out,
    insitu_port: u16,
    redis: &RedisServer,
    redisai: &RedisAi,
    models: &std::path::Path,
    quick: bool,
) {
    let blob = std::fs::read(models.join("mlp.onnx")).expect("mlp.onnx");
    let x = Tensor::from_vec(vec![1, 16], vec![0.25f32; 16]).expect("x");
    let rai = redisai.port();
    load_on_both(insitu_port, rai, "mlp", &blob, ("x", "y"), &x);
    let kib = "a".repeat(1024);
    let in16 = "a".repeat(64);
    // Quick runs stay long enough to be timed (a too-short run reports an infinite rate).
    let n = |rate: usize| if quick { (rate / 100).max(400) } else { rate };
    let rp = redis.port();
    let tset = [
        "AI.TENSORSET",
        "key:__rand_int__",
        "FLOAT",
        "256",
        "BLOB",
        &kib,
    ];
    let tget = ["AI.TENSORGET", "key:__rand_int__", "BLOB"];
    let set = ["SET", "key:__rand_int__", &kib];
    let get = ["GET", "key:__rand_int__"];
    let exec = [
        "AI.MODELEXECUTE",
        "mlp",
        "INPUTS",
        "1",
        "x",
        "OUTPUTS",
        "1",
        "y",
    ];
    let dag = [
        "AI.DAGEXECUTE",
        "ROUTING",
        "mlp",
        "|>",
        "AI.TENSORSET",
        "in",
        "FLOAT",
        "1",
        "16",
        "BLOB",
        &in16,
        "|>",
        "AI.MODELEXECUTE",
        "mlp",
        "INPUTS",
        "1",
        "in",
        "OUTPUTS",
        "1",
        "out",
        "|>",
        "AI.TENSORGET",
        "out",
        "BLOB",
    ];
    // The same command on insitu, then RedisAI when it runs, then the redis-server
    // command it is measured against; interleaved, `reps` runs each, the run with the
    // median rate counts (one redis-benchmark run on this machine moves by 10% from one
    // run to the next).
    let reps = if quick { 1 } else { 3 };
    let trio = |cmd: &[&str], peer: &[&str], clients: usize, count: usize, pipeline: usize| {
        let mut peers: Vec<(u16, &[&str])> = vec![(insitu_port, cmd)];
        peers.extend(rai.map(|p| (p, cmd)));
        peers.push((rp, peer));
        let v = rb_group(reps, &peers, clients, count, pipeline);
        let theirs = rai.map(|_| v[1]);
        (v[0], theirs, v[v.len() - 1])
    };
    let mut cells = Vec::new();
    for (clients, pipeline, count) in [
        (1usize, 1usize, 40_000usize),
        (32, 1, 200_000),
        (32, 16, 800_000),
    ] {
        let cnt = n(count);
        let (a, ra, b) = trio(&tset, &set, clients, cnt, pipeline);
        let (g1, rg, g2) = trio(&tget, &get, clients, cnt, pipeline);
        let w = format!("1 KiB, -P {pipeline}");
        out.row("redis_benchmark", &w, "insitu AI.TENSORSET", clients, a);
        if let Some(r) = ra {
            out.row("redis_benchmark", &w, "RedisAI AI.TENSORSET", clients, r);
        }
        out.row("redis_benchmark", &w, "redis-server SET", clients, b);
        out.row("redis_benchmark", &w, "insitu AI.TENSORGET", clients, g1);
        if let Some(r) = rg {
            out.row("redis_benchmark", &w, "RedisAI AI.TENSORGET", clients, r);
        }
        out.row("redis_benchmark", &w, "redis-server GET", clients, g2);
        cells.push((clients, pipeline, a, b, g1, g2));
    }
    let w = "MLP 16-32-4 batch 1";
    for (clients, count) in [(1usize, 20_000usize), (32, 100_000)] {
        let cnt = n(count);
        let (e, re, set1) = trio(&exec, &set, clients, cnt, 1);
        let (d, rd, ping) = trio(&dag, &["PING"], clients, cnt, 1);
        out.row("redis_benchmark", w, "redis-server PING", clients, ping);
        out.row(
            "redis_benchmark",
            w,
            "redis-server SET 1 KiB",
            clients,
            set1,
        );
        out.row("redis_benchmark", w, "insitu AI.MODELEXECUTE", clients, e);
        if let Some(r) = re {
            out.row("redis_benchmark", w, "RedisAI AI.MODELEXECUTE", clients, r);
        }
        out.row(
            "redis_benchmark",
            w,
            "insitu AI.DAGEXECUTE put+run+get",
            clients,
            d,
        );
        if let Some(r) = rd {
            out.row(
                "redis_benchmark",
                w,
                "RedisAI AI.DAGEXECUTE put+run+get",
                clients,
                r,
            );
        }
        if clients == 32 {
            let r = d.ops_per_s / ping.ops_per_s;
            out.target(
                "AI.DAGEXECUTE 32 clients vs redis-server PING",
                r,
                ">= 0.8x",
                r >= 0.8,
                format!("{:.0} vs {:.0} ops/s", d.ops_per_s, ping.ops_per_s),
            );
            versus_redisai(out, "AI.DAGEXECUTE 32 clients vs RedisAI", d, rd, redisai);
            versus_redisai(out, "AI.MODELEXECUTE 32 clients vs RedisAI", e, re, redisai);
        } else {
            let r = e.ops_per_s / set1.ops_per_s;
            out.target(
                "AI.MODELEXECUTE 1 client vs redis-server SET",
                r,
                ">= 0.95x",
                r >= 0.95,
                format!("{:.0} vs {:.0} ops/s", e.ops_per_s, set1.ops_per_s),
            );
        }
    }
    for (clients, pipeline, a, b, g1, g2) in cells {
        let (rs, rg) = (a.ops_per_s / b.ops_per_s, g1.ops_per_s / g2.ops_per_s);
        let name = if pipeline > 1 {
            format!("tcp 1 KiB put/get pipelined -P {pipeline}, {clients} clients vs redis-server")
        } else {
            format!("tcp 1 KiB put/get, {clients} client(s) vs redis-server")
        };
        out.target(
            &name,
            rs.min(rg),
            ">= 1.0x",
            rs.min(rg) >= 1.0,
            format!("TENSORSET/SET {rs:.2}x, TENSORGET/GET {rg:.2}x"),
        );
    }
    model_sizes(out, insitu_port, redisai, models, quick);
}

/// A ">= 1.5x RedisAI" target, or the target unmeasured (with why) when RedisAI is not here.
fn versus_redisai(out: &mut Out, name: &str, mine: Stat, theirs: Option<Stat>, redisai: &RedisAi) {
    match theirs {
        Some(t) => {
            let r = mine.ops_per_s / t.ops_per_s;
            out.target(
                name,
                r,
                ">= 1.5x",
                r >= 1.5,
                format!("{:.0} vs {:.0} ops/s", mine.ops_per_s, t.ops_per_s),
            );
        }
        None => out.target(name, f64::NAN, ">= 1.5x", false, redisai.note.clone()),
    }
}

/// AI.MODELEXECUTE of each model at batch 1 and 32 (the tiny MLP's batch 1 is the cell
/// above), 1 and 32 clients, insitu next to RedisAI; each run sized to about a second and
/// a half at insitu's rate.
fn model_sizes(
    out: &mut Out,
    insitu_port: u16,
    redisai: &RedisAi,
    models: &std::path::Path,
    quick: bool,
) {
    let reps = if quick { 1 } else { 3 };
    let rai = redisai.port();
    for (file, label, row) in MODELS {
        let blob = std::fs::read(models.join(file)).expect("model file");
        let key = file.trim_end_matches(".onnx");
        for batch in BATCHES {
            if key == "mlp" && batch == 1 {
                continue;
            }
            let (shape, data) = model_input(row, batch);
            let x = Tensor::from_vec(shape, data).expect("x");
            let (input, output) = (format!("x:{key}:{batch}"), format!("y:{key}:{batch}"));
            load_on_both(insitu_port, rai, key, &blob, (&input, &output), &x);
            let exec = [
                "AI.MODELEXECUTE",
                key,
                "INPUTS",
                "1",
                &input,
                "OUTPUTS",
                "1",
                &output,
            ];
            let w = format!("{label} batch {batch}");
            for clients in [1usize, 32] {
                let short = 200.max(clients * 4);
                let count = if quick {
                    short
                } else {
                    let probe = redis_benchmark(insitu_port, clients, short, 1, &exec);
                    ((probe.ops_per_s * 1.5) as usize).clamp(500, 100_000)
                };
                let mut peers: Vec<(u16, &[&str])> = vec![(insitu_port, &exec)];
                peers.extend(rai.map(|p| (p, &exec[..])));
                let v = rb_group(reps, &peers, clients, count, 1);
                out.row(
                    "redis_benchmark",
                    &w,
                    "insitu AI.MODELEXECUTE",
                    clients,
                    v[0],
                );
                if let Some(r) = v.get(1) {
                    out.row(
                        "redis_benchmark",
                        &w,
                        "RedisAI AI.MODELEXECUTE",
                        clients,
                        *r,
                    );
                }
            }
        }
    }
}

/// Writes with append-only persistence on both sides (`appendfsync everysec`): insitu
/// journals every change before its reply, redis-server appends to its AOF buffer and
/// writes it before replying; each fsyncs once a second.
fn persistence(out: &mut Out, quick: bool) {
    let srv = BenchServer::start_with("compare-aof", true);
    let Some(redis) = RedisServer::start_with(true) else {
        eprintln!("redis-server with appendonly did not start");
        return;
    };
    let port: u16 = srv
        .tcp
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let reps = if quick { 1 } else { 3 };
    let mut cells = Vec::new();
    for (size, kib) in [("1 KiB", 1usize), ("64 KiB", 64)] {
        let blob = "a".repeat(kib << 10);
        let floats = ((kib << 10) / 4).to_string();
        let tset = [
            "AI.TENSORSET",
            "key:__rand_int__",
            "FLOAT",
            &floats,
            "BLOB",
            &blob,
        ];
        let set = ["SET", "key:__rand_int__", &blob];
        for clients in [1usize, 32] {
            let count = if quick {
                400
            } else if kib == 1 {
                100_000
            } else {
                20_000
            };
            let (a, b) = rb_pair(reps, (port, &tset), (redis.port(), &set), clients, count, 1);
            let w = format!("{size}, appendonly everysec");
            out.row("persistence", &w, "insitu AI.TENSORSET", clients, a);
            out.row("persistence", &w, "redis-server SET", clients, b);
            cells.push((size, clients, a, b));
        }
    }
    for (size, clients, a, b) in cells {
        if clients == 1 {
            continue;
        }
        let r = a.ops_per_s / b.ops_per_s;
        out.target(
            &format!(
                "tcp {size} writes with append-only persistence, {clients} clients vs redis-server"
            ),
            r,
            ">= 1.0x",
            r >= 1.0,
            format!("{:.0} vs {:.0} ops/s", a.ops_per_s, b.ops_per_s),
        );
    }
}

/// 32 batch-1 requesters through the Unix socket, with and without dynamic batching, and
/// raw ONNX Runtime at batch 32 (rows/s).
fn batching(out: &mut Out, srv: &BenchServer, models: &std::path::Path, dur: Duration) {
    let blob = std::fs::read(models.join("mlp_wide.onnx")).expect("mlp_wide.onnx");
    let mut c = Client::connect(&srv.unix).expect("connect");
    c.set_model("wide", &blob, &ModelOptions::default())
        .expect("set_model");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let batched = ModelOptions {
        batch_size: 32,
        min_batch_size: env("INSITU_BENCH_MINBATCH", 8),
        min_batch_timeout_ms: env("INSITU_BENCH_MINBATCHTIMEOUT", 2) as u64,
        ..ModelOptions::default()
    };
    c.set_model("wide_b", &blob, &batched).expect("set_model");
    let row: Vec<f32> = (0..512).map(|i| (i % 13) as f32 * 0.01).collect();
    let x = Tensor::from_vec(vec![1, 512], row.clone()).expect("x");
    let mut stats = Vec::new();
    for (model, name) in [
        ("wide", "insitu, batching off"),
        ("wide_b", "insitu, BATCHSIZE 32 MINBATCHSIZE 8"),
    ] {
        let s = run_clients(
            32,
            dur,
            |_| Client::connect(&srv.unix).expect("connect"),
            |c| {
                std::hint::black_box(c.infer(model, std::slice::from_ref(&x)).expect("infer"));
            },
        );
        out.row("batching", "MLP 4x512, batch-1 requests", name, 32, s);
        stats.push(s);
    }
    let data32: Vec<f32> = row.iter().copied().cycle().take(32 * 512).collect();
    let raw = run_clients(
        1,
        dur,
        |_| raw_session(&blob),
        |session| {
            let input = TensorRef::from_array_view(([32usize, 512], &*data32)).expect("in");
            let o = session.run(ort::inputs!["x" => input]).expect("run");
            std::hint::black_box(o.len());
        },
    );
    let raw_rows = Stat {
        ops_per_s: raw.ops_per_s * 32.0,
        ..raw
    };
    out.row(
        "batching",
        "MLP 4x512, batch-1 requests",
        "raw ONNX Runtime batch 32 (rows/s)",
        1,
        raw_rows,
    );
    let speedup = stats[1].ops_per_s / stats[0].ops_per_s;
    out.target(
        "batching: 32 batch-1 requesters, rows/s with vs without batching",
        speedup,
        ">= 3x",
        speedup >= 3.0,
        format!(
            "{:.0} vs {:.0} rows/s",
            stats[1].ops_per_s, stats[0].ops_per_s
        ),
    );
    let vs_raw = stats[1].ops_per_s / raw_rows.ops_per_s;
    out.target(
        "batching: rows/s vs raw ONNX Runtime at batch 32",
        vs_raw,
        ">= 0.5x",
        vs_raw >= 0.5,
        format!(
            "{:.0} vs {:.0} rows/s",
            stats[1].ops_per_s, raw_rows.ops_per_s
        ),
    );
}

/// `clients` connections on one event loop (one client thread, as redis-benchmark), each
/// repeating `request` (a RESP command) and reading the replies, for `dur`.
fn tail_latency(port: u16, clients: usize, dur: Duration, requests: Vec<Vec<u8>>) -> Stat {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let requests = Arc::new(requests);
    let (us, elapsed) = rt.block_on(async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let requests = requests.clone();
            tasks.push(tokio::spawn(async move {
                use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
                let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut us = Vec::new();
                let mut line = String::new();
                let mut body = Vec::new();
                while start.elapsed() < dur {
                    let t = Instant::now();
                    for req in requests.iter() {
                        w.write_all(req).await.expect("write");
                        line.clear();
                        r.read_line(&mut line).await.expect("read");
                        if let Some(len) = line.strip_prefix('$') {
                            let len: usize = len.trim().parse().expect("bulk length");
                            body.resize(len + 2, 0);
                            r.read_exact(&mut body).await.expect("bulk");
                        } else {
                            assert!(line.starts_with('+'), "unexpected reply {line:?}");
                        }
                    }
                    us.push(t.elapsed().as_secs_f64() * 1e6);
                }
                us
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        (all, start.elapsed().as_secs_f64())
    });
    stat(us, elapsed)
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// A fixed-layout cluster of `n` `insitu serve` processes on loopback (INSITU_BIN).
struct BenchCluster {
    children: Vec<std::process::Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl BenchCluster {
    /// `n` nodes of one fixed layout; `n == 0`: one plain standalone node, started the
    /// same way (the peer the cluster is compared with).
    fn start(n: usize) -> Option<BenchCluster> {
        let bin = std::env::var_os("INSITU_BIN").filter(|b| std::path::Path::new(b).exists())?;
        let dir =
            std::env::temp_dir().join(format!("insitu-bench-cluster{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ports: Vec<u16> = (0..n.max(1))
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("free port")
                    .port()
            })
            .collect();
        let list = ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let children = ports
            .iter()
            .map(|p| {
                let d = dir.join(p.to_string());
                std::fs::create_dir_all(&d).expect("dir");
                let mut cmd = std::process::Command::new(&bin);
                cmd.args(["serve", "--port", &p.to_string(), "--unixsocket", "none"])
                    .args(["--log", "warn", "--dir"])
                    .arg(&d);
                if n > 0 {
                    cmd.args(["--cluster-nodes", &list]);
                }
                cmd.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn insitu")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &ports {
            while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
                assert!(Instant::now() < deadline, "cluster node did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(BenchCluster {
            children,
            ports,
            dir,
        })
    }

    fn address(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The same workloads against one standalone node and a 3-node cluster on this machine:
/// the client's routing cost (a put+get's latency), throughput with several clients,
/// model runs beside their inputs; the spread of SmartRedis-style keys over the shards;
/// and a projection to 16 database nodes from the measured per-node rate.
fn cluster(out: &mut Out, models: &std::path::Path, dur: Duration) -> Vec<String> {
    let mut notes = Vec::new();
    let (Some(one), Some(cl)) = (BenchCluster::start(0), BenchCluster::start(3)) else {
        notes.push(
            "No cluster rows: set INSITU_BIN to the insitu binary (./dev.sh compare does).".into(),
        );
        return notes;
    };
    let blob = std::fs::read(models.join("mlp.onnx")).expect("mlp.onnx");
    let contenders = [
        ("insitu standalone node", one.address()),
        ("insitu 3-node cluster (client routes)", cl.address()),
    ];
    let t = tensor_of(1024);
    // One client: the two contenders interleaved on one thread (latency is the target).
    let put_get = |c: &mut Client, n: &mut usize| {
        *n += 1;
        // A different key each time: the cluster's keys spread over its nodes.
        let k = format!("k0.{}", *n % 64);
        c.put_tensor(&k, &t).expect("put");
        std::hint::black_box(c.get_tensor(&k).expect("get"));
    };
    let mut states: Vec<(Client, usize)> = contenders
        .iter()
        .map(|(_, addr)| (Client::connect(addr).expect("connect"), 0))
        .collect();
    let mut ops: Vec<Box<dyn FnMut() + '_>> = states
        .iter_mut()
        .map(|(c, n)| Box::new(move || put_get(c, n)) as Box<dyn FnMut()>)
        .collect();
    let latency = interleaved(dur, &mut ops);
    drop(ops);
    drop(states);
    for ((name, _), s) in contenders.iter().zip(&latency) {
        out.row("cluster", "put+get 1 KiB float32, tcp", name, 1, *s);
    }
    let clients = 8;
    for (name, addr) in &contenders {
        let s = run_clients(
            clients,
            dur,
            |i| {
                (
                    Client::connect(addr).expect("connect"),
                    format!("k{i}"),
                    0usize,
                )
            },
            |(c, key, n)| {
                *n += 1;
                // A different key each time: the cluster's keys spread over its nodes.
                let k = format!("{key}.{}", *n % 64);
                c.put_tensor(&k, &t).expect("put");
                std::hint::black_box(c.get_tensor(&k).expect("get"));
            },
        );
        out.row("cluster", "put+get 1 KiB float32, tcp", name, clients, s);
    }
    if let [one, three] = latency[..] {
        let r = three.p50 / one.p50;
        out.target(
            "cluster put+get 1 KiB, 1 client: latency vs one standalone node",
            r,
            "<= 1.05x",
            r <= 1.05,
            format!(
                "p50 {:.1} vs {:.1} us, p99 {:.1} vs {:.1} us",
                three.p50, one.p50, three.p99, one.p99
            ),
        );
    }
    let x = Tensor::from_vec(vec![1, 16], vec![0.25f32; 16]).expect("x");
    let mut rates = Vec::new();
    for (name, addr) in &contenders {
        let mut setup = Client::connect(addr).expect("connect");
        setup
            .set_model("mlp", &blob, &ModelOptions::default())
            .expect("set_model");
        let s = run_clients(
            8,
            dur,
            |i| {
                let mut c = Client::connect(addr).expect("connect");
                let (xi, yi) = (format!("{{m{i}}}.x"), format!("{{m{i}}}.y"));
                c.put_tensor(&xi, &x).expect("put");
                (c, xi, yi)
            },
            |(c, xi, yi)| {
                c.run_model("mlp", &[xi.as_str()], &[yi.as_str()])
                    .expect("run")
            },
        );
        out.row(
            "cluster",
            "AI.MODELEXECUTE MLP batch 1, inputs beside the model",
            name,
            8,
            s,
        );
        rates.push(s.ops_per_s);
    }
    // SmartRedis-style keys (ensemble prefixes, datasets by hash tag) over the 3 shards.
    let mut counts = [0usize; 3];
    let ranges: Vec<(u16, u16)> = (0..3)
        .map(|i| ((i * 16384 / 3) as u16, ((i + 1) * 16384 / 3 - 1) as u16))
        .collect();
    let mut place = |key: &str| {
        let s = insitu::engine::cluster::key_slot(key.as_bytes());
        if let Some(i) = ranges.iter().position(|(lo, hi)| (*lo..=*hi).contains(&s)) {
            counts[i] += 1;
        }
    };
    for member in 0..16 {
        for step in 0..250 {
            place(&format!("sim_{member}.u_step_{step}"));
            place(&format!("sim_{member}.{{ds_{step}}}.meta"));
        }
    }
    let total: usize = counts.iter().sum();
    let max = *counts.iter().max().unwrap_or(&0) as f64;
    let mean = total as f64 / 3.0;
    notes.push(format!(
        "Key balance: {total} SmartRedis-style keys (16 ensemble members x 250 steps: `sim_<m>.u_step_<s>` tensors and `sim_<m>.{{ds_<s>}}.meta` datasets) land {} / {} / {} on the three shards (busiest shard {:.3}x the mean).",
        counts[0], counts[1], counts[2], max / mean
    ));
    if let [one, three] = rates[..] {
        notes.push(format!(
            "Projection: one node ran {one:.0} MLP inferences/s (AI.MODELEXECUTE, batch 1, 8 clients) on this 2-core machine; the 3-node cluster on the same 2 cores ran {three:.0}/s, so its nodes share the cores rather than add them. With each node on its own host and clients routing to the shard that holds their inputs (no cross-shard traffic for hash-tagged runs), 16 database nodes would serve about {:.0} inferences/s (16 x the single-node rate; an estimate, not a measurement). Published SmartSim runs used 4-16 database nodes for up to about 6,000 client processes: shared by 6,000 clients that is about {:.0} batch-1 inferences/s each.",
            16.0 * one,
            16.0 * one / 6000.0
        ));
    }
    notes
}

/// KServe v2 rows: benches/python/bench_kserve.py (tritonclient as the load generator
/// for gRPC and HTTP, the insitu Python client for RESP and in process, onnxruntime in
/// Python as the floor), run with INSITU_PYTHON; its rows join this run's. Returns notes
/// for the report (why there are no rows, when there are none).
fn kserve(out: &mut Out, models: &std::path::Path, quick: bool) -> Vec<String> {
    let (Ok(python), Ok(_)) = (std::env::var("INSITU_PYTHON"), std::env::var("INSITU_BIN")) else {
        return vec![
            "No KServe rows: set INSITU_PYTHON (the virtualenv's python, with tritonclient) and INSITU_BIN (./dev.sh compare does).".into(),
        ];
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/bench_kserve.py");
    let json_out =
        std::env::temp_dir().join(format!("insitu-bench-kserve-{}.json", std::process::id()));
    let rows = python_rows(&python, &script, &[models.as_os_str()], &json_out, quick);
    let _ = std::fs::remove_file(&json_out);
    match rows {
        Ok(rows) => {
            out.rows.extend(rows);
            Vec::new()
        }
        Err(e) => vec![format!("No KServe rows: {e}")],
    }
}

/// Run a Python benchmark script with `args`, `--json json_out` (and `--quick`); the
/// rows it wrote, in the harness' format, or why there are none.
fn python_rows(
    python: &str,
    script: &std::path::Path,
    args: &[&std::ffi::OsStr],
    json_out: &std::path::Path,
    quick: bool,
) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(python);
    cmd.arg(script).args(args).arg("--json").arg(json_out);
    if quick {
        cmd.arg("--quick");
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(std::fs::read_to_string(json_out)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()),
        other => Err(format!("{} failed ({other:?})", script.display())),
    }
}

/// Node-local transfer rows: benches/python/bench_shm.py (the Python package over the
/// Unix socket next to numpy copies; C and Fortran put + unpack next to two memcpys,
/// built by benches/fortran/build_shm.sh when cmake and gfortran are there), run with
/// INSITU_PYTHON; its rows join this run's. Returns notes for the report.
fn node_local(out: &mut Out, quick: bool) -> Vec<String> {
    let (Ok(python), Ok(bin)) = (std::env::var("INSITU_PYTHON"), std::env::var("INSITU_BIN"))
    else {
        return vec![
            "No node-local transfer rows: set INSITU_PYTHON and INSITU_BIN (./dev.sh compare does).".into(),
        ];
    };
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut notes = Vec::new();
    // The C library sits next to the insitu binary (one target directory).
    let lib = std::path::Path::new(&bin)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let native = std::env::temp_dir().join(format!("insitu-bench-shm-{}", std::process::id()));
    let built = Command::new("bash")
        .arg(here.join("fortran/build_shm.sh"))
        .arg(&lib)
        .arg(&native)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        notes.push(format!(
            "No C and Fortran transfer rows: benches/fortran/build_shm.sh failed ({built:?}); it needs cmake, gfortran and libinsitu in {}.",
            lib.display()
        ));
    }
    let script = here.join("python/bench_shm.py");
    let json_out = native.join("shm.json");
    let native_arg = [std::ffi::OsStr::new("--native"), native.as_os_str()];
    let rows = python_rows(&python, &script, &native_arg, &json_out, quick);
    let _ = std::fs::remove_dir_all(&native);
    match rows {
        Ok(rows) => out.rows.extend(rows),
        Err(e) => notes.push(format!("No node-local transfer rows: {e}")),
    }
    for (workload, peer, goal) in [
        (
            "put+get() 16 MiB float32 (Python)",
            "memory copy x2 (numpy)",
            0.8,
        ),
        (
            "first use: put+get() 16 MiB float32 on a new connection (Python)",
            "memory copy x2 (numpy)",
            0.8,
        ),
        (
            "put+get() 1 MiB float32 (Python)",
            "memory copy x2 (numpy)",
            0.5,
        ),
        (
            "first use: put+get() 1 MiB float32 on a new connection (Python)",
            "memory copy x2 (numpy)",
            0.5,
        ),
        (
            "put+unpack 16 MiB float64 (C)",
            "memory copy x2 (memcpy)",
            0.8,
        ),
        (
            "put+unpack 1 MiB float64 (C)",
            "memory copy x2 (memcpy)",
            0.5,
        ),
        (
            "put+get 16 MiB float64 (Fortran)",
            "memory copy x2 (array assignment)",
            0.8,
        ),
        (
            "put+get 1 MiB float64 (Fortran)",
            "memory copy x2 (array assignment)",
            0.5,
        ),
    ] {
        let p50 = |c: &str| {
            out.rows
                .iter()
                .find(|r| r["section"] == "shm" && r["workload"] == workload && r["contender"] == c)
                .and_then(|r| r["p50_us"].as_f64())
        };
        if let (Some(a), Some(b)) = (p50("insitu unix+shm"), p50(peer)) {
            let r = b / a;
            out.target(
                &format!("node-local {workload} vs two memory copies"),
                r,
                &format!(">= {goal}x"),
                r >= goal,
                format!("{a:.0} us vs {b:.0} us ({peer})"),
            );
        }
    }
    notes
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("compare.json"));
    let models = std::env::var("INSITU_TEST_MODELS").ok().map(PathBuf::from);
    let Some(models) = models else {
        eprintln!("set INSITU_TEST_MODELS to the generated models (./dev.sh compare does)");
        std::process::exit(2);
    };
    let dur = Duration::from_millis(if quick { 40 } else { 1500 });
    let srv = BenchServer::start("compare");
    let redis = RedisServer::start();
    let Some(redis) = redis else {
        eprintln!("redis-server not found on PATH (apt-get install redis-server)");
        std::process::exit(2);
    };
    let insitu_port: u16 = srv
        .tcp
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut out = Out {
        rows: Vec::new(),
        targets: Vec::new(),
    };
    let started = Instant::now();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    match only.as_deref() {
        Some("batching") => return batching(&mut out, &srv, &models, dur),
        Some("inference") => return inference(&mut out, &srv, &models, dur),
        Some("persistence") => return persistence(&mut out, quick),
        Some("redisai") => {
            let redisai = RedisAi::start();
            with_redis_benchmark(&mut out, insitu_port, &redis, &redisai, &models, quick);
            return;
        }
        Some("kserve") => {
            for note in kserve(&mut out, &models, quick) {
                println!("{note}");
            }
            return;
        }
        Some("shm") => {
            for note in node_local(&mut out, quick) {
                println!("{note}");
            }
            let doc = json!({ "quick": quick, "rows": out.rows, "targets": out.targets });
            let _ = std::fs::write(
                &out_path,
                serde_json::to_string_pretty(&doc).unwrap_or_default(),
            );
            return;
        }
        Some("cluster") => {
            for note in cluster(&mut out, &models, dur) {
                println!("{note}");
            }
            return;
        }
        _ => {}
    }

    put_get(&mut out, &srv, Some(&redis), dur);
    let row = |o: &Out, w: &str, c: &str, n: usize| -> Stat {
        o.rows
            .iter()
            .find(|r| r["workload"] == w && r["contender"] == c && r["clients"] == n)
            .map(|r| Stat {
                p50: r["p50_us"].as_f64().unwrap_or(f64::NAN),
                p99: r["p99_us"].as_f64().unwrap_or(f64::NAN),
                ops_per_s: r["ops_per_s"].as_f64().unwrap_or(f64::NAN),
                ..Stat::default()
            })
            .unwrap_or_default()
    };
    for size in ["1 MiB", "16 MiB"] {
        for clients in [1usize, 32] {
            let w = format!("put+get {size} float32");
            let a = row(&out, &w, "insitu tcp", clients);
            let b = row(&out, &w, "redis-server tcp SET+GET", clients);
            let r = a.ops_per_s / b.ops_per_s;
            out.target(
                &format!("tcp {size} put+get, {clients} client(s) vs redis-server"),
                r,
                ">= 1.0x",
                r >= 1.0,
                format!("{:.0} vs {:.0} ops/s", a.ops_per_s, b.ops_per_s),
            );
        }
    }
    let w = "put+get 16 MiB float32";
    let shm = row(&out, w, "insitu unix+shm", 1);
    let copy = row(&out, w, "memory copy (1x size)", 1);
    let bw = 2.0 * copy.p50 / shm.p50;
    out.target(
        "unix + shared memory 16 MiB put+get vs memory-copy bandwidth",
        bw,
        ">= 0.5x",
        bw >= 0.5,
        format!(
            "round trip {:.0} us moves 32 MiB; one 16 MiB copy {:.0} us",
            shm.p50, copy.p50
        ),
    );

    inference(&mut out, &srv, &models, dur);

    let redisai = RedisAi::start();
    with_redis_benchmark(&mut out, insitu_port, &redis, &redisai, &models, quick);
    persistence(&mut out, quick);
    batching(&mut out, &srv, &models, dur);

    let tail_dur = Duration::from_millis(if quick { 300 } else { 30_000 });
    let kib = vec![b'a'; 1024];
    let ins = tail_latency(
        insitu_port,
        256,
        tail_dur,
        vec![
            resp(&[b"AI.TENSORSET", b"tail", b"FLOAT", b"256", b"BLOB", &kib]),
            resp(&[b"AI.TENSORGET", b"tail", b"BLOB"]),
        ],
    );
    let red = tail_latency(
        redis.port(),
        256,
        tail_dur,
        vec![resp(&[b"SET", b"tail", &kib]), resp(&[b"GET", b"tail"])],
    );
    for (name, s) in [
        ("insitu AI.TENSORSET+GET", ins),
        ("redis-server SET+GET", red),
    ] {
        out.row("tail", "256 clients, put+get 1 KiB, tcp", name, 256, s);
        println!("  p99.9 {:.0} us, max {:.0} us", s.p999, s.max);
    }
    let r = ins.p99 / ins.p50;
    out.target(
        "tail latency at 256 clients: p99 / p50",
        r,
        "<= 2x",
        r <= 2.0,
        format!(
            "p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us (redis-server p99/p50 {:.2})",
            ins.p50,
            ins.p99,
            ins.p999,
            ins.max,
            red.p99 / red.p50
        ),
    );

    let cluster_notes = cluster(&mut out, &models, dur);
    let kserve_notes = kserve(&mut out, &models, quick);
    let shm_notes = node_local(&mut out, quick);
    let machine = machine();
    let doc = json!({
        "quick": quick,
        "seconds": started.elapsed().as_secs_f64(),
        "cell_seconds": dur.as_secs_f64(),
        "tail_seconds": tail_dur.as_secs_f64(),
        "machine": machine,
        "rows": out.rows,
        "targets": out.targets,
        "cluster_notes": cluster_notes,
        "kserve_notes": kserve_notes,
        "shm_notes": shm_notes,
        "redisai_note": redisai.note,
    });
    let mut f = std::fs::File::create(&out_path).expect("create output");
    f.write_all(serde_json::to_string_pretty(&doc).expect("json").as_bytes())
        .expect("write output");
    println!("wrote {}", out_path.display());
}

fn machine() -> Value {
    let mut cpu = String::new();
    if let Ok(mut f) = std::fs::File::open("/proc/cpuinfo") {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        cpu = s
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string();
    }
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("MemTotal")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_kib as f64 / 1048576.0,
        "kernel": kernel.trim(),
        "redis_server": redis,
        "onnxruntime": insitu::model::runtime::runtime().map(|r| r.version.clone()).unwrap_or_default(),
    })
}
