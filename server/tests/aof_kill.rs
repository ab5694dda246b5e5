//! kill -9 of `insitu serve` in the middle of a write load with append-only persistence
//! on, then a restart on the same directory: every write the server acknowledged is
//! there, for each fsync policy.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{serve, temp_dir};
use insitu::client::{Address, KeyPrefixes, RetryPolicy};
use insitu::protocol::resp::Frame;
use insitu::{Client, Tensor};

const WRITERS: usize = 4;

/// What one writer had acknowledged when the server died.
#[derive(Default)]
struct Acked {
    /// SET k{w}.{i} and AI.TENSORSET t{w}.{i}, for i below this.
    sets: usize,
    /// RPUSH list{w} of 0.. below this; HSET h{w} f{i} likewise.
    pushes: usize,
    /// Keys whose DEL was acknowledged.
    deleted: Vec<String>,
    /// A DEL sent but not acknowledged when the server died: applied or not.
    maybe_deleted: Option<String>,
}

fn tensor(w: usize, i: usize) -> Tensor {
    // Sizes from 4 bytes to 256 KiB: small records gathered, large ones written in place.
    let n = 1usize << (i % 17);
    let vals: Vec<u32> = (0..n)
        .map(|j| (w * 1_000_003 + i * 31 + j) as u32)
        .collect();
    Tensor::from_vec(vec![n], vals).expect("tensor")
}

fn writer(addr: String, w: usize, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    // No retry: the first error after the kill ends this writer.
    let Ok(mut c) = Client::connect_with(
        Address::parse(&addr).expect("address"),
        KeyPrefixes::default(),
        RetryPolicy::none(),
    ) else {
        return acked;
    };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let k = format!("k{w}.{i}");
        if c.command(&["SET", &k, &format!("value {w} {i}")]).is_err() {
            break;
        }
        if c.put_tensor(&format!("t{w}.{i}"), &tensor(w, i)).is_err() {
            break;
        }
        acked.sets = i + 1;
        if c.command(&["RPUSH", &format!("list{w}"), &i.to_string()])
            .is_err()
        {
            break;
        }
        if c.command(&["HSET", &format!("h{w}"), &format!("f{i}"), &i.to_string()])
            .is_err()
        {
            break;
        }
        acked.pushes = i + 1;
        if i % 10 == 9 {
            let gone = format!("k{w}.{}", i - 5);
            if c.command(&["DEL", &gone]).is_err() {
                acked.maybe_deleted = Some(gone);
                break;
            }
            acked.deleted.push(gone);
        }
        i += 1;
    }
    acked
}

fn check(addr: &str, w: usize, acked: &Acked) {
    let mut c = Client::connect(addr).expect("connect after restart");
    for i in 0..acked.sets {
        let k = format!("k{w}.{i}");
        let got = c.command(&["GET", &k]).expect("GET");
        if acked.deleted.contains(&k) {
            assert_eq!(got, Frame::Null, "{k} was deleted");
        } else if acked.maybe_deleted.as_ref() == Some(&k) && got == Frame::Null {
            // Its DEL was in flight when the server died, and had been applied.
        } else {
            assert_eq!(
                got,
                Frame::Bulk(Bytes::from(format!("value {w} {i}"))),
                "{k}"
            );
        }
        let t = c.get_tensor(&format!("t{w}.{i}")).expect("tensor");
        assert_eq!(t, tensor(w, i), "t{w}.{i} byte for byte");
    }
    let Frame::Array(items) = c
        .command(&["LRANGE", &format!("list{w}"), "0", "-1"])
        .expect("LRANGE")
    else {
        panic!("list")
    };
    assert!(
        items.len() >= acked.pushes,
        "list{w}: {} < {}",
        items.len(),
        acked.pushes
    );
    assert!(
        items.len() <= acked.pushes + 1,
        "at most the one in flight more"
    );
    for (i, it) in items.iter().enumerate() {
        assert_eq!(*it, Frame::Bulk(Bytes::from(i.to_string())), "list{w}[{i}]");
    }
    for i in 0..acked.pushes {
        assert_eq!(
            c.command(&["HGET", &format!("h{w}"), &format!("f{i}")])
                .expect("HGET"),
            Frame::Bulk(Bytes::from(i.to_string()))
        );
    }
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    for policy in ["everysec", "always", "no"] {
        let dir = temp_dir(&format!("aofkill-{policy}"));
        let flags = ["--appendonly", "yes", "--appendfsync", policy];
        let mut p = serve(&dir, &flags);
        let addr = format!("127.0.0.1:{}", p.port);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, stop) = (addr.clone(), stop.clone());
                std::thread::spawn(move || writer(addr, w, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        // SIGKILL: no shutdown, no final flush.
        p.child.kill().expect("kill -9");
        p.child.wait().expect("reaped");
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<Acked> = writers
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect();
        let total: usize = acked.iter().map(|a| a.sets).sum();
        assert!(total > 20, "{policy}: the load ran ({total} acknowledged)");
        let _ = std::fs::remove_file(dir.join("s.sock"));
        let mut p = serve(&dir, &flags);
        let addr = format!("127.0.0.1:{}", p.port);
        for (w, a) in acked.iter().enumerate() {
            check(&addr, w, a);
        }
        eprintln!("{policy}: {total} acknowledged SET+TENSORSET pairs, all present after kill -9");
        p.child.kill().expect("kill");
        let _ = p.child.wait();
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
