//! Many clients at once: every byte written comes back, nothing is lost.

mod common;

use common::TestServer;
use insitu::{Client, Tensor};

const CLIENTS: usize = 64;
const PER_CLIENT: usize = 1000;

fn payload(client: usize, i: usize) -> Vec<f32> {
    // 64 distinct values per tensor, unique per (client, i).
    (0..64)
        .map(|j| (client * 1_000_000 + i * 100 + j) as f32 * 0.5)
        .collect()
}

#[test]
fn sixty_four_clients_write_and_read_back_a_thousand_tensors_each() {
    let srv = TestServer::start();
    let addrs = srv.addresses();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            // Half the clients over TCP, half over the Unix socket.
            let addr = addrs[c % 2].clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr).expect("connect");
                for i in 0..PER_CLIENT {
                    let t = Tensor::from_vec(vec![8, 8], payload(c, i)).expect("tensor");
                    client.put_tensor(&format!("c{c}.t{i}"), &t).expect("put");
                }
                for i in 0..PER_CLIENT {
                    let t = client.get_tensor(&format!("c{c}.t{i}")).expect("get");
                    assert_eq!(t.shape(), &[8, 8]);
                    assert_eq!(
                        t.to_vec::<f32>().expect("f32"),
                        payload(c, i),
                        "client {c} tensor {i}"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    // Nothing lost, nothing extra; check every byte once more from one fresh client.
    let mut check = Client::connect(&srv.tcp()).expect("connect");
    assert_eq!(srv.engine.store().len(), CLIENTS * PER_CLIENT);
    for c in (0..CLIENTS).step_by(7) {
        for i in (0..PER_CLIENT).step_by(97) {
            let t = check.get_tensor(&format!("c{c}.t{i}")).expect("get");
            assert_eq!(t.to_vec::<f32>().expect("f32"), payload(c, i));
        }
    }
}

/// A tensor writer and a hash writer race for one empty key, round after round, in
/// process (where the commands are short enough for their steps to interleave): exactly
/// one of them wins each round, the other gets WRONGTYPE, and the key holds the winner's
/// kind. (AI.TENSORSET checked the type and then wrote under a second lock: a HSET landing
/// in between was overwritten.)
#[test]
fn wrongtype_holds_under_concurrent_writers_of_two_types() {
    use std::sync::{Arc, Barrier};
    const ROUNDS: usize = 20_000;
    let srv = TestServer::start();
    // Each round: the control thread empties the key, both writers go, the control thread
    // reads the key's type.
    let barrier = Arc::new(Barrier::new(3));
    let writer = |args: &'static [&'static str]| {
        let (barrier, engine) = (barrier.clone(), srv.engine.clone());
        std::thread::spawn(move || {
            let mut c = Client::inproc(engine).expect("in-process client");
            (0..ROUNDS)
                .map(|_| {
                    barrier.wait();
                    let r = c.command(args).map(|_| ());
                    barrier.wait();
                    r.map_err(|e| e.to_string())
                })
                .collect::<Vec<_>>()
        })
    };
    let tensor_writer = writer(&["AI.TENSORSET", "k", "FLOAT", "2", "VALUES", "1", "2"]);
    let hash_writer = writer(&["HSET", "k", "f", "v"]);
    let mut control = Client::inproc(srv.engine.clone()).expect("in-process client");
    let mut kinds = Vec::new();
    for _ in 0..ROUNDS {
        control.command(&["DEL", "k"]).expect("DEL");
        barrier.wait();
        barrier.wait();
        match control.command(&["TYPE", "k"]).expect("TYPE") {
            insitu::protocol::resp::Frame::Simple(t) => {
                kinds.push(String::from_utf8_lossy(&t).into_owned())
            }
            other => panic!("TYPE answered {other:?}"),
        }
    }
    let tensor = tensor_writer.join().expect("tensor writer");
    let hash = hash_writer.join().expect("hash writer");
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    let mut wins = [0, 0];
    for r in 0..ROUNDS {
        match (&tensor[r], &hash[r], kinds[r].as_str()) {
            (Ok(()), Err(e), "AI_TENSOR") if e == wrongtype => wins[0] += 1,
            (Err(e), Ok(()), "hash") if e == wrongtype => wins[1] += 1,
            other => panic!("round {r}: {other:?}"),
        }
    }
    // Both orders happened, so the writers really raced.
    assert!(wins[0] > 0 && wins[1] > 0, "wins {wins:?}");
}
