//! Addresses: `inproc` (the engine in this process), `host:port`, `tcp://host:port`,
//! `unix:///path`, and a cluster's nodes (`host:port,host:port,...`). `SSDB` follows
//! SmartRedis: with `SR_DB_TYPE=Standalone` a comma list names alternatives (one picked
//! at random), otherwise the nodes of a cluster.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

use crate::error::{Error, ErrorCode, Result};

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// The engine in this process: no socket, no serialization.
    Inproc,
    /// TCP host and port.
    Tcp(String, u16),
    /// A Unix-domain socket path.
    Unix(PathBuf),
    /// Nodes of a Redis Cluster (TCP): any of them gives the others.
    Cluster(Vec<Address>),
}

fn invalid(addr: &str, why: &str) -> Error {
    Error::err(
        ErrorCode::BadInput,
        format!(
            "invalid address '{addr}': {why} (expected inproc, host:port, tcp://host:port or unix:///path)"
        ),
    )
}

impl Address {
    /// Parse one address.
    ///
    /// # Errors
    /// When the address has none of the accepted forms.
    pub fn parse(addr: &str) -> Result<Address> {
        let a = addr.trim();
        if a.contains(',') {
            let nodes = a
                .split(',')
                .filter(|e| !e.trim().is_empty())
                .map(Address::parse)
                .collect::<Result<Vec<_>>>()?;
            if nodes.iter().any(|n| !matches!(n, Address::Tcp(..))) {
                return Err(invalid(addr, "a cluster's nodes are host:port addresses"));
            }
            return Ok(match nodes.len() {
                0 => return Err(invalid(addr, "empty address list")),
                1 => nodes.into_iter().next().unwrap_or(Address::Inproc),
                _ => Address::Cluster(nodes),
            });
        }
        if a == "inproc" || a == "inproc://" {
            return Ok(Address::Inproc);
        }
        if let Some(path) = a.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(invalid(addr, "a Unix socket path must be absolute"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        let hp = a.strip_prefix("tcp://").unwrap_or(a);
        let (host, port) = hp
            .rsplit_once(':')
            .ok_or_else(|| invalid(addr, "missing port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid(addr, "missing host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| invalid(addr, "bad port"))?;
        Ok(Address::Tcp(host.to_string(), port))
    }

    /// Pick one entry of a comma-separated list (SmartRedis' `SSDB` semantics: at random,
    /// so that many clients spread over the listed servers).
    ///
    /// # Errors
    /// An empty list or an invalid entry.
    pub fn pick(list: &str) -> Result<Address> {
        let entries: Vec<&str> = list.split(',').filter(|e| !e.trim().is_empty()).collect();
        if entries.is_empty() {
            return Err(invalid(list, "empty address list"));
        }
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let i = (h.finish() as usize) % entries.len();
        Address::parse(entries[i])
    }

    /// A list from `SSDB`: alternatives when `SR_DB_TYPE` is `Standalone`, else a cluster's
    /// nodes (SmartRedis' default mode is Clustered).
    ///
    /// # Errors
    /// An empty list or an invalid entry.
    pub fn from_ssdb(list: &str) -> Result<Address> {
        let standalone =
            std::env::var("SR_DB_TYPE").is_ok_and(|t| t.trim().eq_ignore_ascii_case("standalone"));
        // A Unix socket cannot be a cluster node: such a list names alternatives too.
        if standalone || list.contains("unix://") {
            return Address::pick(list);
        }
        match Address::parse(list)? {
            // Start from a different node in each process, as pick() spreads clients.
            Address::Cluster(mut nodes) => {
                let mut h = RandomState::new().build_hasher();
                h.write_u32(std::process::id());
                let n = nodes.len();
                nodes.rotate_left((h.finish() as usize) % n);
                Ok(Address::Cluster(nodes))
            }
            a => Ok(a),
        }
    }

    /// Whether a client asks at once for the slot map: a list of cluster nodes, or a TCP
    /// address with `SR_DB_TYPE=Clustered`. (A client of one TCP address finds out it
    /// talks to a cluster from the first `MOVED` it gets, and routes from then on.)
    pub fn is_cluster(&self) -> bool {
        match self {
            Address::Cluster(_) => true,
            Address::Tcp(..) => std::env::var("SR_DB_TYPE")
                .is_ok_and(|t| t.trim().eq_ignore_ascii_case("clustered")),
            _ => false,
        }
    }

    /// The default address: `SSDB`, then `INSITU_ADDRESS`.
    ///
    /// # Errors
    /// When neither is set, or the value is invalid.
    pub fn from_env() -> Result<Address> {
        for var in ["SSDB", "INSITU_ADDRESS"] {
            if let Ok(v) = std::env::var(var) {
                if !v.trim().is_empty() {
                    return Address::from_ssdb(&v);
                }
            }
        }
        Err(Error::err(
            ErrorCode::BadInput,
            "no server address: set SSDB or INSITU_ADDRESS (e.g. inproc, 127.0.0.1:6780 or unix:///tmp/insitu.sock)",
        ))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Inproc => f.write_str("inproc"),
            Address::Tcp(h, p) => write!(f, "tcp://{h}:{p}"),
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Cluster(nodes) => {
                for (i, n) in nodes.iter().enumerate() {
                    let Address::Tcp(h, p) = n else { continue };
                    write!(f, "{}{h}:{p}", if i > 0 { "," } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Address::parse("127.0.0.1:6780").unwrap(),
            Address::Tcp("127.0.0.1".into(), 6780)
        );
        assert_eq!(
            Address::parse("tcp://node1:1").unwrap(),
            Address::Tcp("node1".into(), 1)
        );
        assert_eq!(
            Address::parse("unix:///tmp/s.sock").unwrap(),
            Address::Unix("/tmp/s.sock".into())
        );
        assert_eq!(
            Address::parse("[::1]:5").unwrap(),
            Address::Tcp("::1".into(), 5)
        );
        assert_eq!(Address::parse("inproc").unwrap(), Address::Inproc);
        for bad in ["nohost", ":1", "h:0", "h:70000", "unix://rel", ""] {
            let e = Address::parse(bad).unwrap_err();
            assert!(e.text().starts_with("ERR invalid address"), "{bad}: {e}");
        }
        assert!(matches!(
            Address::pick("a:1,b:2").unwrap(),
            Address::Tcp(_, _)
        ));
        let c = Address::parse("a:1, b:2").unwrap();
        assert_eq!(
            c,
            Address::Cluster(vec![
                Address::Tcp("a".into(), 1),
                Address::Tcp("b".into(), 2)
            ])
        );
        assert_eq!(c.to_string(), "a:1,b:2");
        assert_eq!(Address::parse("a:1,").unwrap(), Address::Tcp("a".into(), 1));
        assert!(Address::parse("a:1,unix:///s").is_err());
        assert!(Address::pick(",").is_err());
    }
}
