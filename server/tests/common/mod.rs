//! Helpers for the tests that run the `insitu` binary as its own process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use insitu::protocol::resp::{parse_reply, Frame};

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("insitu-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

pub struct Proc {
    pub child: Child,
    pub port: u16,
}

/// Start `insitu serve` on port 0 in `dir` and read the bound port from its log.
pub fn serve(dir: &Path, extra: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(["serve", "--port", "0", "--unixsocket"])
        .arg(dir.join("s.sock"))
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn insitu");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("read log");
        if let Some(rest) = line.split("listening on tcp://").nth(1) {
            let rest: String = rest.chars().filter(|c| !c.is_control()).collect();
            let port = rest.rsplit(':').next().and_then(|p| {
                p.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            });
            break port.expect("port in log");
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    wait_unix(&dir.join("s.sock"));
    Proc { child, port }
}

pub fn wait_unix(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "unix socket never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn cmd(port: u16, args: &[&[u8]]) -> Frame {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let f = Frame::command(args.iter().map(|a| bytes::Bytes::copy_from_slice(a)));
    s.write_all(&f.to_bytes()).expect("write");
    let mut buf = Vec::new();
    loop {
        if let Some((f, _)) = parse_reply(&buf).expect("parse") {
            return f;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}
