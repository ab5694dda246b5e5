//! A cluster node's gossip: every [`ROUND`] it sends its view to every node it knows (and
//! to those it was told to `CLUSTER MEET`), as `INSITU.GOSSIP <view>` over their RESP
//! ports, and merges the view each answers with. Views converge in a few rounds, so
//! `redis-cli --cluster create` sees every node agree within about a second. A node that
//! does not answer within [`EXCHANGE_TIMEOUT`] is retried next round; after
//! `cluster-node-timeout` without an answer it is flagged failing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use crate::engine::Engine;
use crate::protocol::resp::{decode_reply, Frame};

/// How often a node exchanges views with each other node.
pub const ROUND: Duration = Duration::from_millis(100);
/// How long one exchange (connect, send, answer) may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_millis(1000);
/// The largest view answer read (a view is about 100 bytes per node).
const MAX_ANSWER: usize = 16 << 20;

/// One exchange with the node at `addr` over `link` (opened when absent): send this
/// node's view, merge the answer. Errors drop the link.
async fn exchange(
    engine: &Engine,
    link: &mut Option<TcpStream>,
    addr: &(String, u16),
    view: &Bytes,
    password: Option<&str>,
) -> Option<()> {
    if link.is_none() {
        let s = TcpStream::connect((addr.0.as_str(), addr.1)).await.ok()?;
        let _ = s.set_nodelay(true);
        *link = Some(s);
        if let Some(pass) = password {
            let auth = Frame::command([Bytes::from_static(b"AUTH"), Bytes::from(pass.to_string())]);
            let r = roundtrip(link.as_mut()?, &auth).await;
            if !matches!(r, Some(Frame::Simple(_))) {
                *link = None;
                return None;
            }
        }
    }
    let cmd = Frame::command([Bytes::from_static(b"INSITU.GOSSIP"), view.clone()]);
    let answer = roundtrip(link.as_mut()?, &cmd).await;
    let Some(Frame::Bulk(text)) = answer else {
        *link = None;
        return None;
    };
    let c = engine.cluster()?;
    let text = std::str::from_utf8(&text).ok()?;
    match c.merge(text) {
        Ok(from) => {
            c.seen(&from);
            Some(())
        }
        Err(e) => {
            tracing::warn!(
                "cluster node {}:{} sent a view that was refused: {e}",
                addr.0,
                addr.1
            );
            None
        }
    }
}

async fn roundtrip(s: &mut TcpStream, cmd: &Frame) -> Option<Frame> {
    s.write_all(&cmd.to_bytes()).await.ok()?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some(f) = decode_reply(&mut buf).ok()? {
            return Some(f);
        }
        if buf.len() > MAX_ANSWER || s.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// Exchange views with every known node each round until `stop` fires.
pub(crate) async fn run(engine: Arc<Engine>, mut stop: broadcast::Receiver<()>) {
    let mut links: HashMap<(String, u16), Option<TcpStream>> = HashMap::new();
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let Some(c) = engine.cluster() else { return };
        let view = Bytes::from(c.gossip());
        let password = engine.with_config(|c| c.requirepass.clone());
        let peers: Vec<(String, u16)> = c.peers().into_iter().map(|(_, ip, p)| (ip, p)).collect();
        links.retain(|k, _| peers.contains(k));
        let mut round = tokio::task::JoinSet::new();
        for addr in peers {
            let mut link = links.remove(&addr).flatten();
            let (engine, view, password) = (engine.clone(), view.clone(), password.clone());
            round.spawn(async move {
                let ok = tokio::time::timeout(
                    EXCHANGE_TIMEOUT,
                    exchange(&engine, &mut link, &addr, &view, password.as_deref()),
                )
                .await;
                if !matches!(ok, Ok(Some(()))) {
                    link = None;
                }
                (addr, link)
            });
        }
        while let Some(done) = round.join_next().await {
            if let Ok((addr, link)) = done {
                links.insert(addr, link);
            }
        }
    }
}
