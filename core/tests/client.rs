//! The native client against a real server, over TCP and the Unix socket.

mod common;

use std::time::{Duration, Instant};

use common::{connect_mode, TestServer, MODES};
use insitu::client::KeyPrefixes;
use insitu::data::dataset::MetaValue;
use insitu::{Client, DType, Dataset, ErrorCode, Tensor};

const SHAPES: [&[usize]; 4] = [&[5], &[3, 4], &[2, 3, 4], &[2, 1, 3, 2]];

/// A tensor of `dtype` and `shape` whose every element differs and which spans the
/// type's range (negatives, extremes).
fn sample(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let s = shape.to_vec();
    let k = |i: usize| (i as u64).wrapping_mul(2654435761).wrapping_add(seed * 97);
    match dtype {
        DType::Float32 => Tensor::from_vec(
            s,
            (0..n)
                .map(|i| (k(i) % 1000) as f32 * -0.37 + 1e-3)
                .collect(),
        ),
        DType::Float64 => Tensor::from_vec(
            s,
            (0..n)
                .map(|i| (k(i) % 1000) as f64 * 1.1e-7 - 5e300 * (i % 2) as f64)
                .collect(),
        ),
        DType::Int8 => Tensor::from_vec(s, (0..n).map(|i| k(i) as i8).collect()),
        DType::Int16 => Tensor::from_vec(s, (0..n).map(|i| k(i) as i16).collect()),
        DType::Int32 => Tensor::from_vec(s, (0..n).map(|i| k(i) as i32).collect()),
        DType::Int64 => Tensor::from_vec(
            s,
            (0..n)
                .map(|i| (k(i) as i64).wrapping_mul(-7_000_000_007))
                .collect(),
        ),
        DType::UInt8 => Tensor::from_vec(s, (0..n).map(|i| k(i) as u8).collect()),
        DType::UInt16 => Tensor::from_vec(s, (0..n).map(|i| k(i) as u16).collect()),
        DType::UInt32 => Tensor::from_vec(s, (0..n).map(|i| k(i) as u32).collect()),
        DType::UInt64 => {
            Tensor::from_vec(s, (0..n).map(|i| k(i).wrapping_mul(u64::MAX / 3)).collect())
        }
        DType::Float16 => Tensor::from_vec(
            s,
            (0..n)
                .map(|i| half::f16::from_f32((k(i) % 100) as f32 - 50.5))
                .collect(),
        ),
        DType::BFloat16 => Tensor::from_vec(
            s,
            (0..n)
                .map(|i| half::bf16::from_f32((k(i) % 100) as f32 * 3.0))
                .collect(),
        ),
        DType::Bool => Tensor::from_vec(s, (0..n).map(|i| k(i) % 3 == 0).collect()),
        DType::String => {
            Tensor::from_strings(s, &(0..n).map(|i| format!("s{}", k(i))).collect::<Vec<_>>())
        }
    }
    .expect("sample tensor")
}

fn unpack_check<T: insitu::Element + PartialEq + std::fmt::Debug + Default>(
    c: &mut Client,
    name: &str,
    t: &Tensor,
) {
    let mut buf = vec![T::default(); t.len()];
    let shape = c.unpack_tensor(name, &mut buf).expect("unpack");
    assert_eq!(shape, t.shape());
    assert_eq!(buf, t.to_vec::<T>().expect("to_vec"));
}

#[test]
fn tensors_of_every_dtype_and_rank_round_trip() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut c = connect_mode(mode, &srv, &mut host, "embedded_host");
        for dtype in DType::ALL {
            for (r, shape) in SHAPES.iter().enumerate() {
                let name = format!("t.{dtype}.{r}");
                let t = sample(dtype, shape, r as u64);
                c.put_tensor(&name, &t).expect("put");
                let back = c.get_tensor(&name).expect("get");
                assert_eq!(back.dtype(), dtype);
                assert_eq!(back.shape(), *shape);
                assert_eq!(back.data(), t.data(), "{name} bytes");
                match dtype {
                    DType::Float32 => unpack_check::<f32>(&mut c, &name, &t),
                    DType::Float64 => unpack_check::<f64>(&mut c, &name, &t),
                    DType::Int8 => unpack_check::<i8>(&mut c, &name, &t),
                    DType::Int16 => unpack_check::<i16>(&mut c, &name, &t),
                    DType::Int32 => unpack_check::<i32>(&mut c, &name, &t),
                    DType::Int64 => unpack_check::<i64>(&mut c, &name, &t),
                    DType::UInt8 => unpack_check::<u8>(&mut c, &name, &t),
                    DType::UInt16 => unpack_check::<u16>(&mut c, &name, &t),
                    DType::UInt32 => unpack_check::<u32>(&mut c, &name, &t),
                    DType::UInt64 => unpack_check::<u64>(&mut c, &name, &t),
                    DType::Bool => unpack_check::<bool>(&mut c, &name, &t),
                    _ => {}
                }
                assert!(c.tensor_exists(&name).expect("exists"));
                c.copy_tensor(&name, &format!("{name}.copy")).expect("copy");
                assert_eq!(c.get_tensor(&format!("{name}.copy")).expect("get copy"), t);
                c.rename_tensor(&format!("{name}.copy"), &format!("{name}.moved"))
                    .expect("rename");
                assert!(!c.tensor_exists(&format!("{name}.copy")).expect("exists"));
                assert_eq!(
                    c.get_tensor(&format!("{name}.moved")).expect("get moved"),
                    t
                );
                c.delete_tensor(&format!("{name}.moved")).expect("delete");
                let e = c.delete_tensor(&format!("{name}.moved")).unwrap_err();
                assert_eq!(e.code(), ErrorCode::NotFound);
            }
        }
        c.flush_db().expect("flush");
    }
}

#[test]
fn tensor_errors_carry_codes_and_exact_text() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut c = connect_mode(mode, &srv, &mut host, "embedded_host");
        let e = c.get_tensor("missing").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.text(), "ERR tensor key is empty or in a different shard");
        c.command(&["HSET", "h", "f", "v"]).expect("hset");
        let e = c.get_tensor("h").unwrap_err();
        assert_eq!(e.code(), ErrorCode::WrongType);
        assert_eq!(
            e.text(),
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        let e = c
            .put_tensor("h", &sample(DType::Int8, &[2], 0))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::WrongType);
        let e = c.rename_tensor("missing", "x").unwrap_err();
        assert_eq!(e.text(), "ERR no such key");
        assert_eq!(e.code(), ErrorCode::NotFound);
        c.put_tensor("f", &sample(DType::Float32, &[2, 2], 0))
            .expect("put");
        let mut wrong_type = vec![0f64; 4];
        let e = c.unpack_tensor("f", &mut wrong_type).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR tensor 'f' has dtype FLOAT but the buffer holds DOUBLE"
        );
        let mut wrong_len = vec![0f32; 3];
        let e = c.unpack_tensor("f", &mut wrong_len).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR tensor 'f' has 4 elements but the buffer holds 3"
        );
        let e = c.command(&["AI.TENSORSET", "x", "FLOAT", "0"]).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR invalid or negative value found in tensor shape"
        );
        assert_eq!(e.code(), ErrorCode::BadInput);
        c.flush_db().expect("flush");
    }
}

fn sample_dataset(name: &str, seed: u64) -> Dataset {
    let mut d = Dataset::new(name);
    d.add_tensor("u", sample(DType::Float64, &[4, 3], seed));
    d.add_tensor("ids", sample(DType::Int32, &[7], seed));
    d.add_meta_scalar("step", seed as i64).expect("meta");
    d.add_meta_scalar("step", seed as i64 + 1).expect("meta");
    d.add_meta_scalar("dt", 0.25f64).expect("meta");
    d.add_meta_scalar("cfl", 0.5f32).expect("meta");
    d.add_meta_scalar("rank", -3i32).expect("meta");
    d.add_meta_scalar("n32", u32::MAX).expect("meta");
    d.add_meta_scalar("n64", u64::MAX).expect("meta");
    d.add_meta_string("who", "simulation-0").expect("meta");
    d.add_meta_string("who", "").expect("meta");
    d
}

fn assert_same_dataset(a: &Dataset, b: &Dataset) {
    assert_eq!(a.name(), b.name());
    assert_eq!(a.tensor_names(), b.tensor_names());
    for n in a.tensor_names() {
        assert_eq!(
            a.get_tensor(n).expect("a"),
            b.get_tensor(n).expect("b"),
            "tensor {n}"
        );
    }
    let mut fa = a.meta_field_names();
    let mut fb = b.meta_field_names();
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb);
    for f in fa {
        assert_eq!(a.meta(f).expect("a"), b.meta(f).expect("b"), "field {f}");
    }
}

#[test]
fn datasets_round_trip_with_every_metadata_type() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut c = connect_mode(mode, &srv, &mut host, "embedded_host");
        let d = sample_dataset("ds", 3);
        assert!(!c.dataset_exists("ds").expect("exists"));
        c.put_dataset(&d).expect("put");
        assert!(c.dataset_exists("ds").expect("exists"));
        assert!(c.poll_dataset("ds", 1, 1).expect("poll"));
        let back = c.get_dataset("ds").expect("get");
        assert_same_dataset(&d, &back);
        assert_eq!(back.get_meta_scalars::<i64>("step").expect("step"), &[3, 4]);
        assert_eq!(
            back.meta("who").expect("who"),
            &MetaValue::Strings(vec!["simulation-0".into(), "".into()])
        );
        // Layout on the server: SmartRedis' keys.
        assert!(c.key_exists("{ds}.meta").expect("meta key"));
        assert!(c.key_exists("{ds}.u").expect("tensor key"));
        c.copy_dataset("ds", "ds2").expect("copy");
        let mut copy = c.get_dataset("ds2").expect("get copy");
        copy.set_name("ds");
        assert_same_dataset(&d, &copy);
        c.rename_dataset("ds2", "ds3").expect("rename");
        assert!(!c.dataset_exists("ds2").expect("exists"));
        assert!(c.dataset_exists("ds3").expect("exists"));
        c.delete_dataset("ds3").expect("delete");
        assert!(!c.key_exists("{ds3}.u").expect("gone"));
        let e = c.get_dataset("ds3").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(
            e.text(),
            "ERR The requested DataSet, \"ds3\", does not exist."
        );
        let e = c.put_dataset(&Dataset::new("empty")).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR dataset 'empty' has no tensors and no metadata: nothing to store"
        );
        c.flush_db().expect("flush");
    }
}

#[test]
fn aggregation_lists_of_datasets() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut c = connect_mode(mode, &srv, &mut host, "embedded_host");
        let sets: Vec<Dataset> = (0..5)
            .map(|i| sample_dataset(&format!("d{i}"), i))
            .collect();
        for d in &sets {
            c.put_dataset(d).expect("put");
            c.append_to_list("samples", d).expect("append");
        }
        assert_eq!(c.get_list_length("samples").expect("len"), 5);
        assert!(c.poll_list_length("samples", 5, 1, 1).expect("poll"));
        assert!(!c.poll_list_length("samples", 4, 1, 1).expect("poll"));
        assert!(c.poll_list_length_gte("samples", 4, 1, 1).expect("poll"));
        assert!(c.poll_list_length_lte("samples", 5, 1, 1).expect("poll"));
        let all = c.get_datasets_from_list("samples").expect("all");
        assert_eq!(all.len(), 5);
        for (a, b) in sets.iter().zip(&all) {
            assert_same_dataset(a, b);
        }
        let mid = c.get_dataset_list_range("samples", 1, 2).expect("range");
        assert_eq!(
            mid.iter().map(|d| d.name()).collect::<Vec<_>>(),
            ["d1", "d2"]
        );
        let tail = c.get_dataset_list_range("samples", -2, -1).expect("range");
        assert_eq!(
            tail.iter().map(|d| d.name()).collect::<Vec<_>>(),
            ["d3", "d4"]
        );
        c.copy_list("samples", "copy").expect("copy");
        assert_eq!(c.get_list_length("copy").expect("len"), 5);
        c.rename_list("copy", "moved").expect("rename");
        assert_eq!(c.get_list_length("copy").expect("len"), 0);
        assert_eq!(c.get_list_length("moved").expect("len"), 5);
        c.delete_list("moved").expect("delete");
        assert_eq!(c.get_list_length("moved").expect("len"), 0);
        let e = c.copy_list("moved", "x").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
        c.flush_db().expect("flush");
    }
}

#[test]
fn ensemble_prefixes_route_reads_and_writes() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut with = |out: Option<&str>, inp: Option<&str>| {
            let mut c = connect_mode(mode, &srv, &mut host, "embedded_host");
            *c.prefixes() = KeyPrefixes::new(out, inp).expect("prefixes");
            c
        };
        let mut sim0 = with(Some("sim0"), None);
        let mut sim1 = with(Some("sim1"), None);
        let mut reader = with(None, Some("sim0,sim1"));
        let t0 = sample(DType::Float32, &[3], 0);
        let t1 = sample(DType::Float32, &[3], 1);
        sim0.put_tensor("field", &t0).expect("put");
        sim1.put_tensor("field", &t1).expect("put");
        assert!(reader.key_exists("sim0.field").expect("exists"));
        assert!(!reader.key_exists("field").expect("exists"));
        assert_eq!(reader.get_tensor("field").expect("get"), t0);
        reader.set_data_source("sim1").expect("source");
        assert_eq!(reader.get_tensor("field").expect("get"), t1);
        let e = reader.set_data_source("sim7").unwrap_err();
        assert_eq!(
            e.text(),
            "ERR Client error: data source sim7 could not be found during client initialization"
        );
        let d = sample_dataset("ds", 9);
        sim1.put_dataset(&d).expect("put ds");
        sim1.append_to_list("all", &d).expect("append");
        assert!(reader.key_exists("sim1.{ds}.meta").expect("exists"));
        assert_same_dataset(&reader.get_dataset("ds").expect("get ds"), &d);
        assert_eq!(reader.get_list_length("all").expect("len"), 1);
        reader.prefixes().tensors = false;
        assert!(reader.get_tensor("field").is_err());
        reader.flush_db().expect("flush");
    }
}

#[test]
fn address_comes_from_ssdb() {
    let srv = TestServer::start();
    // Only this test touches these variables in this process.
    std::env::set_var("SSDB", format!("{},{}", srv.tcp(), srv.unix()));
    let mut c = Client::from_env().expect("from env");
    c.put_tensor("x", &sample(DType::UInt8, &[2], 0))
        .expect("put");
    std::env::remove_var("SSDB");
    // One attempt (the default policy would keep trying for 100 s).
    let e = Client::connect_with(
        insitu::client::Address::parse("127.0.0.1:1").expect("addr"),
        insitu::client::KeyPrefixes::default(),
        insitu::client::RetryPolicy::none(),
    )
    .err()
    .expect("refused");
    assert_eq!(e.code(), ErrorCode::Io);
    assert!(
        e.text()
            .starts_with("ERR cannot connect to tcp://127.0.0.1:1"),
        "{e}"
    );
}

/// The host process of the "embedded" mode (does nothing in a normal test run).
#[test]
fn embedded_host() {
    common::embedded_host();
}

#[test]
fn data_crosses_between_an_embedding_process_and_its_remote_clients() {
    let host = common::HostProcess::start("embedded_host");
    let mut c = Client::connect(&host.address()).expect("connect");
    // Put in process by the host, read remotely.
    let t = c.get_tensor("from_host").expect("from_host");
    assert_eq!(t.to_vec::<i32>().expect("i32"), vec![7, 8, 9]);
    // Put remotely, seen (and copied) by the host's in-process client.
    let mine = sample(DType::Float64, &[2, 2], 5);
    c.put_tensor("to_host", &mine).expect("put");
    assert!(
        c.poll_tensor("host_saw", 100, 100).expect("poll"),
        "host never saw the tensor"
    );
    assert_eq!(c.get_tensor("host_saw").expect("get"), mine);
}

#[test]
fn a_poll_wakes_within_milliseconds_of_the_put_in_every_mode() {
    let srv = TestServer::start();
    let mut host = None;
    for mode in MODES {
        let mut waiter = connect_mode(mode, &srv, &mut host, "embedded_host");
        let mut putter = connect_mode(mode, &srv, &mut host, "embedded_host");
        let key = format!("late.{mode}");
        let k2 = key.clone();
        let t = std::thread::spawn(move || {
            // A client-side sleep loop at this interval would wake 1 s after the start.
            let ok = waiter.poll_tensor(&k2, 1000, 10).expect("poll");
            (ok, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(150));
        let put_at = Instant::now();
        putter
            .put_tensor(&key, &sample(DType::Int8, &[4], 3))
            .expect("put");
        let (ok, woke) = t.join().expect("waiter");
        assert!(ok, "{mode}: waiter saw the tensor");
        let lag = woke.saturating_duration_since(put_at);
        assert!(
            lag < Duration::from_millis(100),
            "{mode}: waiter woke {lag:?} after the put"
        );
        // Timing out also works, and returns false.
        let t0 = Instant::now();
        assert!(!putter.poll_tensor("never", 20, 5).expect("poll"));
        assert!(
            t0.elapsed() >= Duration::from_millis(95),
            "{mode}: waited the whole budget"
        );
        let _ = srv.engine.store().delete(key.as_bytes());
    }
}
