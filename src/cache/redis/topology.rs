//! Where Redis is: one server at a URL, the master Sentinel names, or a
//! Redis Cluster, each with optional TLS (`redis.tls_*`). Everything here
//! is the redis crate's own support; this file only builds it from config
//! and puts the three behind one connection type, [`Conn`].
//!
//! Pub/sub (the L1 clear message) needs one node to subscribe on: the
//! server, the current master, or a cluster node (a cluster broadcasts
//! classic PUBLISH to every node).

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ConnectionAddr, Pipeline, RedisError,
    RedisFuture, TlsCertificates, TlsMode, Value,
};
use tokio::sync::Mutex;

use crate::config::{RedisConfig, mask_url_password};

pub enum Topology {
    /// One server at a URL.
    Single(Client),
    /// The master the sentinels name, asked again on every (re)connect, so
    /// a failover is followed on the supervisor's next probe.
    Sentinel(Mutex<SentinelClient>),
    /// A Redis Cluster found from its seed nodes; `seeds` are plain clients
    /// of the same nodes, for pub/sub.
    Cluster {
        client: ClusterClient,
        seeds: Vec<Client>,
    },
}

/// An open connection to whichever topology: commands and pipelines go
/// through it unchanged (the cluster connection routes them by key).
#[derive(Clone)]
pub enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What one connect brings: connections for commands, a client to
/// subscribe with, and where it went (for logs).
pub struct Connected {
    pub conns: Vec<Conn>,
    pub pubsub: Client,
    pub at: String,
}

/// `host:port` (`[v6]:port` for IPv6) as its parts.
pub fn host_port(node: &str) -> Result<(String, u16), String> {
    let (host, port) = node
        .rsplit_once(':')
        .ok_or_else(|| format!("{node:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{node:?}: the port must be 1-65535"))?;
    if host.is_empty() {
        return Err(format!("{node:?}: the host is empty"));
    }
    Ok((host.to_string(), port))
}

/// The CA and client certificate from `redis.tls_*`, read now so a bad
/// file stops the start with its name.
fn certificates(cfg: &RedisConfig) -> Result<Option<TlsCertificates>, String> {
    let read = |key: &str, file: &Option<String>| -> Result<Option<Vec<u8>>, String> {
        file.as_ref()
            .map(|f| std::fs::read(f).map_err(|e| format!("{key}: cannot read {f}: {e}")))
            .transpose()
    };
    let root_cert = read("redis.tls_ca_file", &cfg.tls_ca_file)?;
    let cert = read("redis.tls_cert_file", &cfg.tls_cert_file)?;
    let key = read("redis.tls_key_file", &cfg.tls_key_file)?;
    let client_tls = match (cert, key) {
        (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig {
            client_cert,
            client_key,
        }),
        (None, None) => None,
        _ => return Err("redis.tls_cert_file and redis.tls_key_file: give both or neither".into()),
    };
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

fn redis_err(what: &str, e: RedisError) -> String {
    format!("{what}: {e}")
}

impl Topology {
    /// The topology the config names; `url` is the single server's URL
    /// (see `connection_url`), whose scheme also says whether TLS is on.
    pub fn from_config(cfg: &RedisConfig, url: &reqwest::Url) -> Result<Self, String> {
        let certs = certificates(cfg)?;
        let tls = url.scheme() == "rediss";
        if !cfg.sentinel.nodes.is_empty() {
            return sentinel(cfg, tls, certs).map(|c| Topology::Sentinel(Mutex::new(c)));
        }
        if !cfg.cluster_nodes.is_empty() {
            return cluster(cfg, tls, certs);
        }
        let client = match certs {
            Some(certs) => Client::build_with_tls(url.as_str(), certs),
            None => Client::open(url.as_str()),
        };
        client
            .map(Topology::Single)
            .map_err(|e| redis_err("redis", e))
    }

    /// Where the config says Redis is, for logs (no secrets).
    pub fn describe(cfg: &RedisConfig, url: &reqwest::Url) -> String {
        if !cfg.sentinel.nodes.is_empty() {
            let nodes = cfg.sentinel.nodes.join(",");
            format!("sentinel:{}@{nodes}", cfg.sentinel.master_name)
        } else if !cfg.cluster_nodes.is_empty() {
            format!("cluster:{}", cfg.cluster_nodes.join(","))
        } else {
            mask_url_password(url.as_str())
        }
    }

    /// Opens `n` connections (one for a cluster: it holds one per node
    /// itself) and checks them with PING.
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        n: usize,
    ) -> Result<Connected, RedisError> {
        let (client, at) = match self {
            Topology::Cluster { client, seeds } => {
                let mut conn = client.get_async_connection().await?;
                redis::cmd("PING").query_async::<()>(&mut conn).await?;
                let (pubsub, at) = reachable_seed(seeds).await?;
                return Ok(Connected {
                    conns: vec![Conn::Cluster(conn)],
                    pubsub,
                    at: format!("cluster via {at}"),
                });
            }
            Topology::Single(client) => (client.clone(), String::new()),
            Topology::Sentinel(sentinel) => {
                let client = sentinel.lock().await.async_get_client().await?;
                let at = format!("master {}", client.get_connection_info().addr());
                (client, at)
            }
        };
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = client
                .get_multiplexed_async_connection_with_config(config)
                .await?;
            redis::cmd("PING").query_async::<()>(&mut c).await?;
            conns.push(Conn::Node(c));
        }
        Ok(Connected {
            conns,
            pubsub: client,
            at,
        })
    }

    /// Whether a READONLY answer means the master moved (Sentinel: ask the
    /// sentinels again) rather than a replica configured on purpose.
    pub fn follows_failover(&self) -> bool {
        matches!(self, Topology::Sentinel(_))
    }
}

fn sentinel(
    cfg: &RedisConfig,
    tls: bool,
    certs: Option<TlsCertificates>,
) -> Result<SentinelClient, String> {
    let s = &cfg.sentinel;
    let addrs = s.nodes.iter().map(|n| {
        let (host, port) = host_port(n)?;
        Ok(match tls {
            true => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            },
            false => ConnectionAddr::Tcp(host, port),
        })
    });
    let addrs = addrs.collect::<Result<Vec<_>, String>>()?;
    let err = |e| redis_err("redis.sentinel", e);
    let mut b = SentinelClientBuilder::new(addrs, &s.master_name, SentinelServerType::Master)
        .map_err(err)?
        .set_client_to_redis_db(cfg.db);
    if tls {
        b = b
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            b = b
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    }
    if let Some(u) = &cfg.username {
        b = b.set_client_to_redis_username(u);
    }
    if let Some(p) = &cfg.password {
        b = b.set_client_to_redis_password(p);
    }
    if let Some(u) = &s.username {
        b = b.set_client_to_sentinel_username(u);
    }
    if let Some(p) = &s.password {
        b = b.set_client_to_sentinel_password(p);
    }
    b.build().map_err(err)
}

fn cluster(
    cfg: &RedisConfig,
    tls: bool,
    certs: Option<TlsCertificates>,
) -> Result<Topology, String> {
    let scheme = if tls { "rediss" } else { "redis" };
    let urls = cfg
        .cluster_nodes
        .iter()
        .map(|n| {
            let (host, port) = host_port(n).map_err(|e| format!("redis.cluster_nodes: {e}"))?;
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let mut url = reqwest::Url::parse(&format!("{scheme}://{host}:{port}"))
                .map_err(|e| format!("redis.cluster_nodes: {n:?}: {e}"))?;
            if let Some(u) = &cfg.username {
                let _ = url.set_username(u);
            }
            if let Some(p) = &cfg.password {
                let _ = url.set_password(Some(p));
            }
            Ok(url.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    let timeout = crate::config::secs(cfg.socket_timeout);
    let mut b = ClusterClient::builder(urls.clone())
        .connection_timeout(crate::config::secs(cfg.socket_connect_timeout))
        .response_timeout(timeout)
        // Redirects and reconnects within the command's own time budget.
        .retries(2);
    // The nodes' URLs carry the username and password: the builder takes
    // them from the first.
    if tls {
        b = b.tls(TlsMode::Secure);
        if let Some(certs) = certs.clone() {
            b = b.certs(certs);
        }
    }
    let client = b.build().map_err(|e| redis_err("redis.cluster_nodes", e))?;
    let seeds = urls
        .iter()
        .map(|u| match certs.clone() {
            Some(c) => Client::build_with_tls(u.as_str(), c),
            None => Client::open(u.as_str()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| redis_err("redis.cluster_nodes", e))?;
    Ok(Topology::Cluster { client, seeds })
}

/// The first seed node that answers a PING, for pub/sub.
async fn reachable_seed(seeds: &[Client]) -> Result<(Client, String), RedisError> {
    let mut last = None;
    for seed in seeds {
        let attempt = async {
            let mut c = seed.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut c).await
        };
        match attempt.await {
            Ok(()) => return Ok((seed.clone(), seed.get_connection_info().addr().to_string())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "redis.cluster_nodes is empty",
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_host_and_port() {
        assert_eq!(host_port("cache:6379").unwrap(), ("cache".into(), 6379));
        assert_eq!(host_port("[::1]:7000").unwrap(), ("::1".into(), 7000));
        for bad in ["cache", "cache:0", ":6379", "cache:x", "cache:70000"] {
            assert!(host_port(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_missing_tls_file_is_named() {
        let cfg = RedisConfig {
            ssl: true,
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisConfig::default()
        };
        let url = reqwest::Url::parse("rediss://127.0.0.1:6379/0").unwrap();
        let Err(e) = Topology::from_config(&cfg, &url) else {
            panic!("a missing CA file was accepted");
        };
        assert!(
            e.contains("redis.tls_ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }
}
