//! Checks of meaning, after parsing: ranges, URLs, scanner options. Returns
//! every problem, each naming its key.

use super::{CacheBackend, Config};
use crate::scan::registry::build_pipeline;

/// Upper bound for the stream overlap: more would hold whole replies back.
const MAX_OVERLAP_BYTES: usize = 1024 * 1024;

impl Config {
    /// Every problem with this config, or an empty list.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                p.push(msg.to_string());
            }
        };
        check(
            self.server.max_body_bytes > 0,
            "server.max_body_bytes: must be > 0",
        );
        for (secs, key) in [
            (
                self.server.header_read_timeout_secs,
                "server.header_read_timeout_secs",
            ),
            (
                self.server.body_read_timeout_secs,
                "server.body_read_timeout_secs",
            ),
        ] {
            check(
                secs > 0.0 && secs <= 3600.0,
                &format!("{key}: must be within (0, 3600]"),
            );
        }
        check(
            self.server.max_connections > 0,
            "server.max_connections: must be > 0",
        );
        check(
            self.server.max_in_flight > 0,
            "server.max_in_flight: must be > 0",
        );
        check(
            self.guard.scan_timeout_secs > 0.0 && self.guard.scan_timeout_secs <= 3600.0,
            "guard.scan_timeout_secs: must be within (0, 3600]",
        );
        check(
            valid_http_url(&self.ollama.url),
            "ollama.url: must be an http:// or https:// URL",
        );
        for (key, v) in [
            (
                "ollama.connect_timeout_secs",
                self.ollama.connect_timeout_secs,
            ),
            (
                "ollama.response_timeout_secs",
                self.ollama.response_timeout_secs,
            ),
            ("ollama.idle_timeout_secs", self.ollama.idle_timeout_secs),
            (
                "redis.socket_connect_timeout",
                self.redis.socket_connect_timeout,
            ),
            ("redis.socket_timeout", self.redis.socket_timeout),
            (
                "redis.health_check_interval",
                self.redis.health_check_interval,
            ),
        ] {
            check(
                v.is_finite() && v > 0.0 && v < 1e9,
                &format!("{key}: must be a number of seconds > 0"),
            );
        }
        check(
            (400..=599).contains(&self.guard.block_status),
            "guard.block_status: must be an HTTP error status (400-599)",
        );
        check(
            self.guard.stream.overlap_bytes <= MAX_OVERLAP_BYTES,
            "guard.stream.overlap_bytes: must be at most 1048576",
        );
        check(
            self.guard.stream.judge_every_bytes <= crate::guard::output::MAX_HELD_BYTES,
            "guard.stream.judge_every_bytes: must be at most 65536 (more is released anyway)",
        );
        check(self.cache.ttl > 0, "cache.ttl: must be > 0 seconds");
        check(self.cache.max_size > 0, "cache.max_size: must be > 0");
        check(self.redis.port > 0, "redis.port: must be 1-65535");
        check(self.redis.db >= 0, "redis.db: must be >= 0");
        check(
            self.redis.max_connections > 0,
            "redis.max_connections: must be >= 1",
        );
        check(
            !self.redis.key_prefix.is_empty(),
            "redis.key_prefix: must not be empty",
        );
        if let Some(url) = &self.redis.url {
            check(
                url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("unix://"),
                "redis.url: must start with redis://, rediss:// or unix://",
            );
        }
        check(
            self.cache.backend != CacheBackend::Redis || self.redis.enabled,
            "cache.backend: redis needs redis.enabled: true",
        );
        p.extend(redis_topology_problems(&self.redis));
        if self.admin.token.as_deref().is_some_and(|t| t.len() < 16) {
            p.push("admin.token: must be at least 16 characters".into());
        }
        // The keys given here and the network rules (`auth.keys_file` is
        // read at start).
        let inline = crate::config::AuthConfig {
            keys_file: None,
            ..self.auth.clone()
        };
        if let Err(problems) = crate::access::keys::KeyRing::load(&inline) {
            p.extend(problems);
        }
        let a = &self.auth;
        let trusted = &self.server.trusted_proxies;
        if let Err(problems) =
            crate::access::net::NetRules::new(&a.allow_cidrs, &a.deny_cidrs, trusted)
        {
            p.extend(problems);
        }
        if self
            .cache
            .signing_key
            .as_deref()
            .is_some_and(|k| k.len() < 16)
        {
            p.push("cache.signing_key: must be at least 16 characters".into());
        }
        for (list, specs) in [
            ("scanners.input", &self.scanners.input),
            ("scanners.output", &self.scanners.output),
        ] {
            if let Err(problems) = build_pipeline(list, specs, &self.scanner_resources()) {
                p.extend(problems);
            }
        }
        p
    }
}

fn valid_http_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Sentinel, Cluster and TLS settings that cannot work, each naming its key.
fn redis_topology_problems(r: &super::RedisConfig) -> Vec<String> {
    let mut p = Vec::new();
    let sentinel = !r.sentinel.nodes.is_empty();
    let cluster = !r.cluster_nodes.is_empty();
    if sentinel && cluster {
        p.push(
            "redis.sentinel.nodes and redis.cluster_nodes: choose one (Sentinel or Cluster)".into(),
        );
    }
    if sentinel && r.sentinel.master_name.trim().is_empty() {
        p.push("redis.sentinel.master_name: must not be empty".into());
    }
    if cluster && r.db != 0 {
        p.push("redis.db: a Redis Cluster has database 0 only".into());
    }
    let nodes = r.sentinel.nodes.iter().map(|n| ("redis.sentinel.nodes", n));
    for (key, node) in nodes.chain(r.cluster_nodes.iter().map(|n| ("redis.cluster_nodes", n))) {
        if let Err(e) = crate::cache::redis::topology::host_port(node) {
            p.push(format!("{key}: {e}"));
        }
    }
    let tls = r.ssl || r.url.as_deref().is_some_and(|u| u.starts_with("rediss://"));
    let files = [
        ("redis.tls_ca_file", &r.tls_ca_file),
        ("redis.tls_cert_file", &r.tls_cert_file),
        ("redis.tls_key_file", &r.tls_key_file),
    ];
    for (key, file) in files {
        let Some(file) = file else { continue };
        if !tls {
            p.push(format!(
                "{key}: TLS is off (set redis.ssl: true, or a rediss:// url)"
            ));
        } else if let Err(e) = std::fs::metadata(file) {
            p.push(format!("{key}: cannot read {file}: {e}"));
        }
    }
    if r.tls_cert_file.is_some() != r.tls_key_file.is_some() {
        p.push("redis.tls_cert_file and redis.tls_key_file: give both or neither".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_empty());
    }

    #[test]
    fn bad_values_are_all_named() {
        let mut c = Config::default();
        c.ollama.url = "ftp://x".into();
        c.redis.socket_timeout = -1.0;
        c.guard.block_status = 200;
        c.redis.url = Some("http://redis".into());
        c.admin.token = Some("short".into());
        let problems = c.validate();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("redis.socket_timeout"))
        );
    }

    #[test]
    fn redis_topologies_that_cannot_work_are_named() {
        let mut c = Config::default();
        c.redis.sentinel.nodes = vec!["s1:26379".into(), "s2".into()];
        c.redis.cluster_nodes = vec!["n1:7000".into()];
        c.redis.db = 2;
        c.redis.tls_ca_file = Some("/nonexistent.pem".into());
        c.redis.tls_cert_file = Some("/also-missing.pem".into());
        let problems = c.validate();
        for key in [
            "redis.sentinel.nodes and redis.cluster_nodes: choose one",
            "redis.db: a Redis Cluster",
            "redis.sentinel.nodes: \"s2\"",
            "redis.tls_ca_file: TLS is off",
            "redis.tls_cert_file and redis.tls_key_file",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key}: {problems:?}"
            );
        }
        c.redis.ssl = true;
        let problems = c.validate();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("redis.tls_ca_file: cannot read /nonexistent.pem")),
            "{problems:?}"
        );
    }
}
