//! The `insitu` binary as an operator runs it: flags, signals, snapshots, sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use insitu::protocol::resp::{parse_reply, Frame};

mod common;
use common::{cmd, serve, temp_dir, wait_unix, Proc};

fn terminate(mut p: Proc) -> i32 {
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(p.child.id().to_string())
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = p.child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_is_graceful_and_snapshot_survives_a_restart() {
    let dir = temp_dir("restart");
    let p = serve(&dir, &[]);
    let blob: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert_eq!(
        cmd(
            p.port,
            &[
                b"AI.TENSORSET",
                b"t",
                b"UINT8",
                b"64",
                b"64",
                b"BLOB",
                &blob
            ]
        ),
        Frame::ok()
    );
    assert_eq!(cmd(p.port, &[b"SAVE"]), Frame::ok());
    let mode = std::fs::metadata(dir.join("s.sock"))
        .expect("sock")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "unix socket is owner-only by default");
    assert_eq!(terminate(p), 0);
    assert!(
        !dir.join("s.sock").exists(),
        "socket file removed on shutdown"
    );

    let p = serve(&dir, &[]);
    assert_eq!(
        cmd(p.port, &[b"AI.TENSORGET", b"t", b"BLOB"]),
        Frame::Bulk(blob.into())
    );
    assert_eq!(terminate(p), 0);
}

#[test]
fn corrupt_snapshot_and_busy_socket_refuse_to_start() {
    let dir = temp_dir("refuse");
    std::fs::write(dir.join("insitu.snapshot"), b"not a snapshot").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(["serve", "--port", "0", "--unixsocket", "none", "--dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "is corrupt: not an insitu snapshot (bad magic) (move the file away to start empty)"
        ),
        "{err}"
    );
    std::fs::remove_file(dir.join("insitu.snapshot")).expect("rm");

    let p = serve(&dir, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(["serve", "--port", "0", "--unixsocket"])
        .arg(dir.join("s.sock"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a server is already listening on"));
    assert_eq!(terminate(p), 0);
}

#[test]
fn requirepass_and_limits_from_flags() {
    let dir = temp_dir("flags");
    let p = serve(
        &dir,
        &[
            "--requirepass",
            "pw",
            "--max-tensor-dims",
            "2",
            "--maxmemory",
            "1mb",
        ],
    );
    assert_eq!(
        cmd(p.port, &[b"PING"]),
        Frame::Error(insitu::Error::from_server_text(
            "NOAUTH Authentication required."
        ))
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    s.write_all(b"AUTH pw\r\nAI.TENSORSET t FLOAT 1 1 1\r\nCONFIG GET maxmemory\r\n")
        .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    while replies.len() < 3 {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read");
        buf.extend_from_slice(&chunk[..n]);
        while let Some((f, used)) = parse_reply(&buf).expect("parse") {
            buf.drain(..used);
            replies.push(f);
        }
    }
    assert_eq!(replies[0], Frame::ok());
    assert_eq!(
        replies[1],
        Frame::Error(insitu::Error::from_server_text(
            "ERR tensor has more than 2 dims, which exceeds the limit of 2"
        ))
    );
    assert_eq!(
        replies[2],
        Frame::Array(vec![
            Frame::bulk_static("maxmemory"),
            Frame::bulk_static("1048576")
        ])
    );
    assert_eq!(terminate(p), 0);
}

#[test]
fn without_onnx_runtime_data_commands_work_and_model_commands_say_why() {
    let dir = temp_dir("noort");
    let mut child = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(["serve", "--port", "0", "--unixsocket"])
        .arg(dir.join("s.sock"))
        .arg("--dir")
        .arg(&dir)
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port: u16 = loop {
        let line = lines.next().expect("log").expect("line");
        if let Some(rest) = line.split("listening on tcp://").nth(1) {
            break rest
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .expect("port");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    wait_unix(&dir.join("s.sock"));
    assert_eq!(cmd(port, &[b"SET", b"k", b"v"]), Frame::ok());
    let Frame::Error(e) = cmd(
        port,
        &[
            b"AI.MODELSTORE",
            b"m",
            b"ONNX",
            b"CPU",
            b"BLOB",
            b"\x08\x07",
        ],
    ) else {
        panic!("model store must fail")
    };
    assert!(
        e.text().starts_with("ERR ONNX Runtime (>= 1.31) not found; set ORT_DYLIB_PATH to libonnxruntime.so.1.31.x, run ./dev.sh setup, or pip install onnxruntime==1.31.1. Looked at: ORT_DYLIB_PATH: cannot load ONNX Runtime from /nonexistent/libonnxruntime.so.1.31.1: failed to load from"),
        "{e}"
    );
    assert_eq!(
        cmd(port, &[b"GET", b"k"]),
        Frame::Bulk(bytes::Bytes::from_static(b"v"))
    );
    assert_eq!(terminate(Proc { child, port }), 0);
}

#[test]
fn persistence_flags_are_checked_before_anything_starts() {
    let dir = temp_dir("aofflags");
    for (flags, want) in [
        (
            &["--appendonly", "maybe"][..],
            "insitu: --appendonly: argument must be 'yes' or 'no'",
        ),
        (
            &["--appendonly", "yes", "--appendfsync", "sometimes"][..],
            "insitu: --appendfsync: argument(s) must be one of the following: always, everysec, no",
        ),
        (
            &["--appendonly", "yes", "--appenddirname", "../elsewhere"][..],
            "insitu: --appenddirname: it must be a plain file name, not '../elsewhere'",
        ),
        (
            &["--appendonly", "yes", "--appendfilename", "/etc/x"][..],
            "insitu: --appendfilename: it must be a plain file name, not '/etc/x'",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_insitu"))
            .args(["serve", "--port", "0", "--unixsocket", "none", "--dir"])
            .arg(&dir)
            .args(flags)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().last(), Some(want), "{err}");
    }
    assert!(
        !dir.join("elsewhere").exists()
            && !dir.parent().expect("parent").join("elsewhere").exists()
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
