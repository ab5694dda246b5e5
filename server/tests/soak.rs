//! Soak: many concurrent clients (256 by default, half over TCP, half over the Unix socket)
//! mix every kind of command against one `insitu serve` for a bounded time. Every tensor,
//! dataset and list read back is compared byte for byte; the run must end with zero
//! errors (clients do not retry: a dropped connection is an error), the server must still
//! answer, and after a FLUSHALL the store's accounted memory must be back at its empty
//! size and the server's resident memory within 16 MiB of where it was after a warm-up
//! load. Append-only persistence is on, so the journal and its rewrites (which the load
//! triggers) run under the same load. It reports operations, errors and the server's peak
//! resident memory.
//!
//! Short form (the test suite): 5 s. Long form:
//! `INSITU_SOAK_SECONDS=3600 INSITU_SOAK_CLIENTS=256 cargo test --release -p insitu-server
//! --test soak -- --nocapture`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{serve, temp_dir};
use insitu::client::{Address, KeyPrefixes, RetryPolicy};
use insitu::{Client, Dataset, ModelOptions, Tensor};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of the server's `/proc` status, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn used_memory(c: &mut Client) -> u64 {
    c.info("memory")
        .expect("info")
        .into_iter()
        .find(|(_, k, _)| k == "used_memory")
        .and_then(|(_, _, v)| v.parse().ok())
        .expect("used_memory")
}

/// Deterministic float data for client `i`, iteration `n`.
fn data(i: usize, n: u64, len: usize) -> Vec<f32> {
    (0..len)
        .map(|j| (i * 31 + j) as f32 * 0.5 + n as f32)
        .collect()
}

/// One round of the mix for client `i`: returns the number of operations done, or what
/// went wrong.
fn round(c: &mut Client, i: usize, n: u64, model: bool) -> Result<u64, String> {
    let e = |what: &str, err: insitu::Error| format!("client {i} round {n} {what}: {err}");
    let k = format!("c{i}");
    let len = 16 + ((i as u64 * 7919 + n * 104_729) % 4096) as usize;
    let t = Tensor::from_vec(vec![len], data(i, n, len)).map_err(|x| e("tensor", x))?;
    match n % 6 {
        0 => {
            c.put_tensor(&k, &t).map_err(|x| e("put", x))?;
            let got = c.get_tensor(&k).map_err(|x| e("get", x))?;
            if got != t {
                return Err(format!("client {i} round {n}: tensor read back differs"));
            }
            c.copy_tensor(&k, &format!("{k}.copy"))
                .map_err(|x| e("copy", x))?;
            c.rename_tensor(&format!("{k}.copy"), &format!("{k}.moved"))
                .map_err(|x| e("rename", x))?;
            if c.get_tensor(&format!("{k}.moved"))
                .map_err(|x| e("get", x))?
                != t
            {
                return Err(format!("client {i} round {n}: renamed tensor differs"));
            }
            c.delete_tensor(&format!("{k}.moved"))
                .map_err(|x| e("delete", x))?;
            Ok(6)
        }
        1 => {
            let mut ds = Dataset::new(format!("{k}.ds"));
            ds.add_tensor("field", t.clone());
            ds.add_meta_scalar("step", n as i64)
                .map_err(|x| e("meta", x))?;
            ds.add_meta_string("who", k.as_bytes())
                .map_err(|x| e("meta", x))?;
            c.put_dataset(&ds).map_err(|x| e("put_dataset", x))?;
            let got = c
                .get_dataset(&format!("{k}.ds"))
                .map_err(|x| e("get_dataset", x))?;
            if got.get_tensor("field").map_err(|x| e("field", x))? != &t
                || got
                    .get_meta_scalars::<i64>("step")
                    .map_err(|x| e("step", x))?
                    != [n as i64]
            {
                return Err(format!("client {i} round {n}: dataset read back differs"));
            }
            c.append_to_list(&format!("{k}.list"), &ds)
                .map_err(|x| e("append", x))?;
            let len = c
                .get_list_length(&format!("{k}.list"))
                .map_err(|x| e("list length", x))?;
            if len != (n / 6 + 1) as usize {
                return Err(format!(
                    "client {i} round {n}: list length {len}, expected {}",
                    n / 6 + 1
                ));
            }
            Ok(4)
        }
        2 => {
            let v = format!("{n}");
            c.command(&["SET", &format!("{k}.s"), &v])
                .map_err(|x| e("SET", x))?;
            let got = c
                .command(&["GET", &format!("{k}.s")])
                .map_err(|x| e("GET", x))?;
            if got != insitu::protocol::resp::Frame::Bulk(v.clone().into()) {
                return Err(format!("client {i} round {n}: GET returned {got:?}"));
            }
            c.command(&["HSET", &format!("{k}.h"), "f", &v])
                .map_err(|x| e("HSET", x))?;
            c.command(&["HGETALL", &format!("{k}.h")])
                .map_err(|x| e("HGETALL", x))?;
            c.command(&["EXISTS", &k]).map_err(|x| e("EXISTS", x))?;
            Ok(5)
        }
        3 if model => {
            let x = Tensor::from_vec(vec![1, 16], data(i, n, 16)).map_err(|x| e("x", x))?;
            let a = c
                .infer("mlp", std::slice::from_ref(&x))
                .map_err(|x| e("infer", x))?;
            c.put_tensor(&format!("{k}.x"), &x)
                .map_err(|x| e("put x", x))?;
            c.run_model("mlp", &[&format!("{k}.x")], &[&format!("{k}.y")])
                .map_err(|x| e("run_model", x))?;
            let b = c.get_tensor(&format!("{k}.y")).map_err(|x| e("get y", x))?;
            if a[0] != b {
                return Err(format!("client {i} round {n}: infer and run_model differ"));
            }
            Ok(4)
        }
        4 => {
            // A wait that is satisfied at once, and one that times out.
            c.put_tensor(&k, &t).map_err(|x| e("put", x))?;
            if !c.poll_tensor(&k, 5, 2).map_err(|x| e("poll", x))? {
                return Err(format!("client {i} round {n}: poll missed a stored tensor"));
            }
            if c.poll_tensor(&format!("{k}.never"), 1, 2)
                .map_err(|x| e("poll", x))?
            {
                return Err(format!("client {i} round {n}: poll found a missing tensor"));
            }
            Ok(3)
        }
        _ => {
            c.command(&["DEL", &format!("{k}.s"), &format!("{k}.h")])
                .map_err(|x| e("DEL", x))?;
            c.command(&["PING"]).map_err(|x| e("PING", x))?;
            Ok(2)
        }
    }
}

struct Load {
    ops: u64,
    errors: u64,
    first_errors: Vec<String>,
    peak_kib: u64,
}

/// The server's resident size once it settles: sampled for up to 5 s, until it is at
/// most `target` KiB (0: take the lowest of 1 s of samples).
fn settled_rss(pid: u32, target: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(if target == 0 { 1 } else { 5 });
    let mut low = proc_kib(pid, "VmRSS:");
    while (target == 0 || low > target) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        low = low.min(proc_kib(pid, "VmRSS:"));
    }
    low
}

/// `clients` clients (half TCP, half Unix) running rounds for `duration`.
fn run_load(
    tcp: &str,
    unix: &str,
    clients: usize,
    duration: Duration,
    model: bool,
    pid: u32,
) -> Load {
    let ops = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_errors = Mutex::new(Vec::new());
    let peak_kib = AtomicU64::new(0);
    let deadline = Instant::now() + duration;
    std::thread::scope(|s| {
        for i in 0..clients {
            let addr = if i % 2 == 0 {
                tcp.to_string()
            } else {
                unix.to_string()
            };
            let (ops, errors, first_errors) = (&ops, &errors, &first_errors);
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(s, move || {
                    let c = Client::connect_with(
                        Address::parse(&addr).expect("address"),
                        KeyPrefixes::default(),
                        RetryPolicy::none(),
                    );
                    let mut c = match c {
                        Ok(c) => c,
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_errors
                                .lock()
                                .expect("lock")
                                .push(format!("connect: {e}"));
                            return;
                        }
                    };
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        match round(&mut c, i, n, model) {
                            Ok(k) => {
                                ops.fetch_add(k, Ordering::Relaxed);
                            }
                            Err(msg) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                let mut f = first_errors.lock().expect("lock");
                                if f.len() < 10 {
                                    f.push(msg);
                                }
                            }
                        }
                        n += 1;
                    }
                })
                .expect("spawn client");
        }
        // Sample the server's resident memory while the clients run.
        while Instant::now() < deadline {
            peak_kib.fetch_max(proc_kib(pid, "VmRSS:"), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Load {
        ops: ops.into_inner(),
        errors: errors.into_inner(),
        first_errors: first_errors.into_inner().expect("lock"),
        peak_kib: peak_kib.into_inner(),
    }
}

/// What the server may keep after a load beyond its resident memory before it: tokio's
/// and the allocator's own structures for the threads the load woke.
const RSS_SLACK_KIB: u64 = 16 << 10;

#[test]
fn soak_many_clients_mixing_every_command() {
    let secs = env_or("INSITU_SOAK_SECONDS", 5);
    let clients = env_or("INSITU_SOAK_CLIENTS", 256) as usize;
    let dir = temp_dir("soak");
    let p = serve(&dir, &["--maxclients", "2000", "--appendonly", "yes"]);
    let pid = p.child.id();
    let tcp = format!("127.0.0.1:{}", p.port);
    let unix = format!("unix://{}", dir.join("s.sock").display());
    let mut admin = Client::connect(&tcp).expect("connect");
    let empty = used_memory(&mut admin);
    let model = match std::env::var("INSITU_TEST_MODELS") {
        Ok(d) if std::path::Path::new(&d).join("mlp.onnx").exists() => {
            admin
                .set_model_from_file(
                    "mlp",
                    std::path::Path::new(&d).join("mlp.onnx"),
                    &ModelOptions::default(),
                )
                .expect("mlp");
            true
        }
        _ => false,
    };
    // A first, short load: the allocator and the runtime grow to their working size
    // (freed memory is kept for reuse, not returned). Its resident size after FLUSHALL is
    // the baseline the real load must come back to: memory that does not come back is
    // memory that grows with load.
    let warm = run_load(&tcp, &unix, clients, Duration::from_secs(1), model, pid);
    assert_eq!(
        warm.errors, 0,
        "errors in the warm-up: {:?}",
        warm.first_errors
    );
    admin.command(&["FLUSHALL"]).expect("flushall");
    if model {
        admin
            .set_model_from_file(
                "mlp",
                std::path::Path::new(&std::env::var("INSITU_TEST_MODELS").expect("models"))
                    .join("mlp.onnx"),
                &ModelOptions::default(),
            )
            .expect("mlp");
    }
    let baseline_kib = settled_rss(pid, 0);
    let Load {
        ops,
        errors,
        first_errors,
        peak_kib,
    } = run_load(&tcp, &unix, clients, Duration::from_secs(secs), model, pid);
    let hwm = proc_kib(pid, "VmHWM:");
    let during = used_memory(&mut admin);
    admin.command(&["FLUSHALL"]).expect("flushall");
    let after = used_memory(&mut admin);
    let rss_after = settled_rss(pid, baseline_kib + RSS_SLACK_KIB);
    println!(
        "soak: {clients} clients x {secs} s: {ops} operations ({:.0}/s), {errors} errors; \
         server peak RSS {:.1} MiB (sampled {:.1} MiB); store {during} bytes before FLUSHALL, \
         {after} after (empty: {empty}); server RSS {:.1} MiB after the warm-up, {:.1} MiB \
         after the load and FLUSHALL",
        ops as f64 / secs as f64,
        hwm as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );
    assert_eq!(errors, 0, "errors: {first_errors:?}");
    assert!(
        ops >= clients as u64,
        "every client got work done: {ops} ops"
    );
    assert_eq!(after, empty, "FLUSHALL returns the store to its empty size");
    assert!(
        rss_after <= baseline_kib + RSS_SLACK_KIB,
        "server RSS {rss_after} KiB after the load and FLUSHALL, {baseline_kib} KiB after the warm-up"
    );
    assert_eq!(
        admin.command(&["PING"]).expect("ping"),
        insitu::protocol::resp::Frame::simple("PONG")
    );
    drop(admin);
    let mut child = p.child;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "clean shutdown after the soak");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
