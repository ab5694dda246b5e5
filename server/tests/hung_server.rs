//! A server that hangs without closing (SIGSTOP): with a reply timeout the client gives
//! up on the attempt, retries within its budget and then says why, instead of hanging;
//! waits longer than the timeout still work; once the server runs again the client works
//! on a new connection (a late reply on the old one is never taken for a new command's).

mod common;

use std::time::{Duration, Instant};

use common::{serve, temp_dir};
use insitu::client::{Address, KeyPrefixes, RetryPolicy};
use insitu::protocol::resp::Frame;
use insitu::{Client, ErrorCode, Tensor};

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_hung_server_costs_a_timeout_not_a_hung_client() {
    let dir = temp_dir("hung");
    let mut p = serve(&dir, &[]);
    let pid = p.child.id();
    let addr = Address::Tcp("127.0.0.1".into(), p.port);
    let policy = RetryPolicy {
        conn_timeout: Duration::from_secs(1),
        conn_interval: Duration::from_millis(50),
        cmd_timeout: Duration::from_secs(2),
        cmd_interval: Duration::from_millis(50),
        socket_timeout: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let mut c =
        Client::connect_with(addr.clone(), KeyPrefixes::default(), policy).expect("connect");
    let t = Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0]).expect("t");
    c.put_tensor("t", &t).expect("put");
    // A wait longer than the reply timeout is not a hang.
    assert_eq!(
        c.command(&["INSITU.WAIT", "1500", "EXISTS", "nothing"])
            .expect("wait"),
        Frame::Integer(0)
    );
    signal(pid, "-STOP");
    let start = Instant::now();
    let e = c.get_tensor("t").unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.code(), ErrorCode::Io);
    assert!(
        e.text().starts_with(&format!(
            "ERR AI.TENSORGET failed: the server at tcp://127.0.0.1:{} did not answer again within 2 s (INSITU_CMD_TIMEOUT); last error: ",
            p.port
        )),
        "{e}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "the whole budget was used: {took:?}"
    );
    assert!(
        took < Duration::from_secs(30),
        "and not much more: {took:?}"
    );
    // Without retries: the attempt's own timeout, named.
    let mut once = Client::connect_with(
        addr.clone(),
        KeyPrefixes::default(),
        RetryPolicy {
            socket_timeout: Duration::from_secs(1),
            ..RetryPolicy::none()
        },
    );
    // (Connecting to a stopped server succeeds: the kernel accepts; PING gets no reply.)
    let e = once
        .as_mut()
        .err()
        .map(|e| e.text().to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        format!(
            "ERR cannot connect to tcp://127.0.0.1:{}: no reply from tcp://127.0.0.1:{} within 1 s (INSITU_SOCKET_TIMEOUT)",
            p.port, p.port
        )
    );
    signal(pid, "-CONT");
    // The old connection may still deliver the late reply: it is replaced, not read.
    assert_eq!(c.get_tensor("t").expect("get after the server resumed"), t);
    assert_eq!(
        c.command(&["PING"]).expect("ping"),
        Frame::Simple("PONG".into())
    );
    p.child.kill().expect("kill");
    let _ = p.child.wait();
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
