//! The front ends' listeners: each bound port, its connections counted against
//! `maxclients`, served until the server stops ([`Frontends`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::conn::accept_counted;
use super::service::Kserve;
use super::{grpc, http};
use crate::engine::Engine;

/// The KServe front ends of one server, started by `insitu serve` beside its RESP
/// listeners.
pub struct Frontends {
    /// The shared state.
    pub kserve: Arc<Kserve>,
    /// The addresses bound: gRPC, HTTP, metrics.
    pub grpc: Option<SocketAddr>,
    /// HTTP/REST's address.
    pub http: Option<SocketAddr>,
    /// `/metrics`' address.
    pub metrics: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn bind(
    host: &str,
    port: Option<u16>,
    what: &str,
) -> std::io::Result<Option<tokio::net::TcpListener>> {
    let Some(port) = port else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for {what} on {host}:{port}: {e}"),
            )
        })?;
    Ok(Some(l))
}

impl Frontends {
    /// Bind the front ends the settings ask for (on the first `bind` address), load the
    /// model repository, and serve until [`Frontends::stop`].
    ///
    /// # Errors
    /// A port that cannot be bound.
    pub async fn start(engine: Arc<Engine>) -> std::io::Result<Frontends> {
        let kserve = Kserve::new(engine.clone());
        let cfg = kserve.config.clone();
        let host = engine.with_config(|c| {
            c.listen
                .bind
                .split_whitespace()
                .next()
                .unwrap_or("127.0.0.1")
                .to_string()
        });
        let repo = cfg.model_repository.is_some();
        let grpc = bind(&host, cfg.grpc_port.resolve(8001, repo), "gRPC").await?;
        let http = bind(&host, cfg.http_port.resolve(8000, repo), "HTTP").await?;
        let metrics = bind(&host, cfg.metrics_port.resolve(8002, repo), "metrics").await?;
        let (stop, stopped) = watch::channel(false);
        let addr =
            |l: &Option<tokio::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        let mut fe = Frontends {
            grpc: addr(&grpc),
            http: addr(&http),
            metrics: addr(&metrics),
            kserve: kserve.clone(),
            stop,
            tasks: Vec::new(),
        };
        // Serving first, so that health and readiness answer while the repository loads.
        let max_conns = engine.with_config(|c| c.maxclients);
        for (listener, what) in [(grpc, "gRPC"), (http, "HTTP"), (metrics, "metrics")] {
            let Some(l) = listener else { continue };
            if let Ok(a) = l.local_addr() {
                tracing::info!("KServe {what} on {a}");
            }
            let incoming = accept_counted(l, max_conns, stopped.clone());
            let (k, s) = (kserve.clone(), stopped.clone());
            fe.tasks.push(match what {
                "gRPC" => tokio::spawn(grpc::serve(k, incoming, s)),
                _ => tokio::spawn(http::serve(k, incoming, s, what == "metrics")),
            });
        }
        if let Some(dir) = &cfg.model_repository {
            tracing::info!("model repository {}", dir.display());
        }
        kserve
            .repository
            .load_initial(&engine, &cfg.load_models)
            .await;
        kserve.set_ready();
        if cfg.model_control == crate::engine::ModelControl::Poll && cfg.model_repository.is_some()
        {
            let k = kserve.clone();
            let mut stopped = stopped.clone();
            let every = Duration::from_secs(cfg.repository_poll_secs.max(1));
            fe.tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = tokio::time::sleep(every) => k.repository.poll(&k.engine).await,
                    }
                }
            }));
        }
        Ok(fe)
    }

    /// Stop serving: open requests finish, then the listeners close.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}
