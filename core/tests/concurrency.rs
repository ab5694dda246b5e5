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
