//! Shared-memory transfers on a Unix socket: large tensors bypass the socket, and a
//! client killed mid-transfer leaves nothing behind.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use insitu::{Client, Tensor};

fn net_bytes(srv: &TestServer) -> (u64, u64) {
    let s = &srv.engine.stats;
    (
        s.net_input_bytes.load(std::sync::atomic::Ordering::Relaxed),
        s.net_output_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
    )
}

fn big(n: usize, seed: f32) -> Tensor {
    Tensor::from_vec(
        vec![n / 4, 4],
        (0..n).map(|i| i as f32 * 0.25 + seed).collect(),
    )
    .expect("t")
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What this process's descriptors point at (for failure messages).
fn fd_targets() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn shm_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Run as a separate process (see below): put large tensors over shared memory forever.
#[test]
fn shm_writer() {
    let Ok(addr) = std::env::var("INSITU_SHM_WRITER") else {
        return;
    };
    let mut c = Client::connect(&addr).expect("connect");
    assert!(c.shared_memory());
    std::fs::write(
        std::env::var("INSITU_SHM_WRITER_READY").expect("ready path"),
        b"1",
    )
    .expect("ready");
    for i in 0.. {
        c.put_tensor(&format!("w{}", i % 4), &big(8 << 20, i as f32))
            .expect("put");
    }
}

/// The tests of this file that count this process's descriptors run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn large_tensors_bypass_the_socket_and_killed_clients_leave_nothing() {
    let _one = one_at_a_time();
    let srv = TestServer::start();
    let t = big(4 << 20, 1.0); // 16 MiB
    let mut u = Client::connect(&srv.unix()).expect("unix");
    assert!(
        u.shared_memory(),
        "unix connections use shared memory by default"
    );

    let (in0, out0) = net_bytes(&srv);
    u.put_tensor("t", &t).expect("put");
    let back = u.get_tensor("t").expect("get");
    let (in1, out1) = net_bytes(&srv);
    assert_eq!(back, t);
    assert!(
        in1 - in0 < 1024,
        "the socket carried {} bytes in for a 16 MiB put",
        in1 - in0
    );
    assert!(
        out1 - out0 < 1024,
        "the socket carried {} bytes out for a 16 MiB get",
        out1 - out0
    );

    // The same transfer through the socket itself, for contrast: TCP, and unix with
    // shared memory turned off.
    let mut tcp = Client::connect(&srv.tcp()).expect("tcp");
    assert!(!tcp.shared_memory());
    assert_eq!(
        tcp.get_tensor("t").expect("tcp get"),
        t,
        "a tensor put through shm reads back over tcp"
    );
    let (in2, out2) = net_bytes(&srv);
    assert!(out2 - out1 > 16 << 20);
    assert!(!u.set_shared_memory(false).expect("off"));
    u.put_tensor("t2", &t).expect("put inline");
    assert!(net_bytes(&srv).0 - in2 > 16 << 20);
    assert!(u.set_shared_memory(true).expect("on"));
    // Small tensors stay inline even with shared memory on.
    let small = big(1024, 2.0);
    u.put_tensor("small", &small).expect("put small");
    assert_eq!(u.get_tensor("small").expect("get small"), small);
    // Blocks not lent to this connection, or sizes beyond them, are errors, and the
    // connection goes on.
    let e = u
        .command(&["AI.TENSORSET", "x", "FLOAT", "1", "SHM", "99999", "4"])
        .unwrap_err();
    assert_eq!(
        e.text(),
        "ERR shared memory block 99999 is not lent to this connection"
    );
    let e = u.command(&["INSITU.SHM", "ALLOC", "0"]).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR a shared memory block of 0 bytes is outside 1..536870912 (max-tensor-bytes)"
    );
    let e = u.command(&["INSITU.SHM", "ATTACH", "4096"]).unwrap_err();
    assert_eq!(e.text(), "ERR syntax error");
    let e = tcp
        .command(&["AI.TENSORSET", "x", "FLOAT", "1", "SHM", "1", "4"])
        .unwrap_err();
    assert_eq!(
        e.text(),
        "ERR shared memory transfers need a Unix socket connection"
    );
    assert_eq!(u.get_tensor("t2").expect("still serving"), t);

    // A writer process killed while it streams 32 MiB tensors through shared memory.
    drop(u);
    drop(tcp);
    std::thread::sleep(Duration::from_millis(100));
    let fds_before = fd_count();
    let targets_before = fd_targets();
    let shm_before = shm_names();
    let ready = common::temp_dir("shmw").join("ready");
    for _ in 0..3 {
        let _ = std::fs::remove_file(&ready);
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "shm_writer",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("INSITU_SHM_WRITER", srv.unix())
            .env("INSITU_SHM_WRITER_READY", &ready)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn writer");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "writer did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(150));
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }
    // The server drops the dead connections and every descriptor they brought: what stays
    // open is the blocks the heap accounts for (values the writers committed, warm blocks
    // made ready for the next process), and of those no free or lent block of the dead
    // processes. (The count is of this process, which the other tests of this file share:
    // descriptors that are not blocks must come back to where they were, blocks must be
    // the heap's own.)
    let memfds = |t: &[String]| t.iter().filter(|p| p.starts_with("/memfd:")).count();
    let others_before = fds_before - memfds(&targets_before);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let targets = fd_targets();
        let heap = srv.engine.heap().stats();
        let others = targets.len() - memfds(&targets);
        if others <= others_before
            && memfds(&targets) <= heap.blocks
            && heap.idle_bytes == heap.warm_bytes
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors leaked: {others} > {others_before} besides blocks, or {} block \
             descriptors for {} blocks, or {} idle bytes beside {} warm: {targets_before:?} \
             before, {targets:?} now",
            memfds(&targets),
            heap.blocks,
            heap.idle_bytes,
            heap.warm_bytes
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        shm_names(),
        shm_before,
        "no named segment appears in /dev/shm"
    );
    // Whatever the writers completed is stored whole.
    let mut c = Client::connect(&srv.unix()).expect("connect");
    for i in 0..4 {
        if let Ok(w) = c.get_tensor(&format!("w{i}")) {
            let v = w.to_vec::<f32>().expect("f32");
            let seed = v[0];
            assert!(
                v.iter()
                    .enumerate()
                    .all(|(j, &x)| x == j as f32 * 0.25 + seed),
                "w{i} is whole"
            );
        }
    }
}

#[test]
fn tensors_read_through_shared_memory_stay_intact_while_held() {
    let _one = one_at_a_time();
    let srv = TestServer::start();
    let mut u = Client::connect(&srv.unix()).expect("unix");
    assert!(u.shared_memory());
    let a = big(1 << 20, 1.0);
    let b = big(1 << 20, 2.0);
    u.put_tensor("a", &a).expect("put a");
    u.put_tensor("b", &b).expect("put b");
    // Hold the first result while more transfers go through the connection.
    let got_a = u.get_tensor("a").expect("get a");
    let got_b = u.get_tensor("b").expect("get b");
    u.put_tensor("c", &big(1 << 20, 3.0)).expect("put c");
    let got_c = u.get_tensor("c").expect("get c");
    assert_eq!(
        got_a, a,
        "an earlier result is not overwritten by later transfers"
    );
    assert_eq!(got_b, b);
    assert_eq!(got_c, big(1 << 20, 3.0));
    // Dropped results let their blocks be reused.
    drop((got_a, got_b, got_c));
    for i in 0..5 {
        let t = big(1 << 20, i as f32);
        u.put_tensor("r", &t).expect("put");
        assert_eq!(u.get_tensor("r").expect("get"), t);
    }
}

#[test]
fn a_process_that_connects_again_puts_into_its_own_blocks_at_once() {
    let _one = one_at_a_time();
    let srv = TestServer::start();
    let t = big(1 << 18, 1.0); // 1 MiB
    {
        let mut a = Client::connect(&srv.unix()).expect("unix");
        a.put_tensor("a", &t).expect("put");
        // The overwrite frees the first block: the process's, for its later connections.
        a.put_tensor("a", &t).expect("put again");
    }
    let mut b = Client::connect(&srv.unix()).expect("unix again");
    assert!(b.shared_memory());
    let (in0, _) = net_bytes(&srv);
    let u = big(1 << 18, 2.0);
    b.put_tensor("b", &u).expect("first put");
    let sent = net_bytes(&srv).0 - in0;
    // Only the commit went out, into a block lent with the handshake (no INSITU.SHM
    // ALLOC first): AI.TENSORSET b FLOAT 65536 4 SHM <block> 1048576.
    let commit = |block: &str| {
        let args = [
            "AI.TENSORSET",
            "b",
            "FLOAT",
            "65536",
            "4",
            "SHM",
            block,
            "1048576",
        ];
        let mut s = format!("*{}\r\n", args.len());
        for a in args {
            s += &format!("${}\r\n{a}\r\n", a.len());
        }
        s.len() as u64
    };
    assert!(
        (commit("1")..=commit("999")).contains(&sent),
        "the first put of a new connection sent {sent} bytes, not its commit alone ({}..={})",
        commit("1"),
        commit("999")
    );
    let mut tcp = Client::connect(&srv.tcp()).expect("tcp");
    assert_eq!(tcp.get_tensor("b").expect("get b"), u);
    assert_eq!(tcp.get_tensor("a").expect("get a"), t);
    assert_eq!(b.get_tensor("b").expect("get b over shm"), u);
}
