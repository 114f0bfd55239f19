//! The operator's calls on L2: clearing this deployment's verdicts
//! (`POST /cache/clear`) and the figures `/cache/stats` shows. On a
//! cluster both visit every primary: SCAN walks one node at a time, and
//! INFO answers once per node.

use std::future::Future;
use std::time::Duration;

use redis::RedisError;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::topology::Conn;
use super::{RedisTier, describe};

/// Time allowed to each command of an admin call (SCAN, UNLINK, INFO).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys asked for per SCAN step and removed per UNLINK.
const CLEAR_BATCH: usize = 1000;

impl RedisTier {
    /// Removes every key under the prefix (SCAN + UNLINK in batches, never
    /// KEYS or FLUSHDB), then tells every instance to clear its L1. Returns
    /// (keys removed, instances listening for the message).
    pub async fn clear(&self) -> Result<(u64, u64), String> {
        let mut conn = self.conn().ok_or("Redis is not connected")?;
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut removed = 0u64;
        for node in admin(primaries(&mut conn)).await? {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(CLEAR_BATCH);
                let (next, keys): (u64, Vec<String>) =
                    admin(on_node(&mut conn, &node, scan)).await?;
                if !keys.is_empty() {
                    // A cluster connection splits a multi-key UNLINK by slot.
                    let unlink = redis::cmd("UNLINK").arg(&keys).to_owned();
                    removed += admin(unlink.query_async::<u64>(&mut conn)).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        let channel = self.clear_channel();
        let publish = redis::cmd("PUBLISH").arg(&channel).arg("clear").to_owned();
        let mut told = admin(publish.query_async::<u64>(&mut conn)).await?;
        if let Conn::Cluster(_) = conn {
            // PUBLISH counts the receiving node's subscribers only; the
            // message reaches every node, so count them all.
            let numsub = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).to_owned();
            let counts: Vec<(String, u64)> = admin(numsub.query_async(&mut conn)).await?;
            told = counts.iter().map(|(_, n)| n).sum();
        }
        Ok((removed, told))
    }

    /// `connected_clients`, `used_memory` (summed over a cluster's nodes)
    /// and the key count, from INFO and DBSIZE.
    pub async fn info(&self) -> Option<serde_json::Value> {
        let (info, keys): (redis::Value, u64) = self
            .run(ADMIN_TIMEOUT, "INFO", |mut c| async move {
                let info = redis::cmd("INFO").query_async(&mut c).await?;
                let keys = redis::cmd("DBSIZE").query_async(&mut c).await?;
                Ok((info, keys))
            })
            .await?;
        let texts = node_texts(info);
        let sum = |name: &str| {
            let values = texts
                .iter()
                .filter_map(|t| field(t, name)?.parse::<u64>().ok());
            values.reduce(|a, b| a + b)
        };
        let human = match texts.as_slice() {
            [one] => field(one, "used_memory_human").map(str::to_string),
            _ => None,
        };
        Some(serde_json::json!({
            "connected_clients": sum("connected_clients"),
            "used_memory": sum("used_memory"),
            "used_memory_human": human,
            "nodes": texts.len(),
            "total_keys": keys,
        }))
    }
}

/// A node to SCAN: `None` is the connection's own server.
type Node = Option<(String, u16)>;

/// The nodes that hold keys: the one server, or every cluster primary
/// (from CLUSTER NODES, failed ones left out).
async fn primaries(conn: &mut Conn) -> Result<Vec<Node>, RedisError> {
    let Conn::Cluster(_) = conn else {
        return Ok(vec![None]);
    };
    let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let addr = fields.nth(1)?;
            let flags = fields.next()?;
            let primary = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            let hostport = addr.split('@').next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            let port: u16 = port.parse().ok()?;
            primary.then(|| Some((host.to_string(), port)))
        })
        .collect())
}

/// Runs `cmd` on `node` (a cluster routes it there by address).
async fn on_node<T: redis::FromRedisValue>(
    conn: &mut Conn,
    node: &Node,
    cmd: redis::Cmd,
) -> Result<T, RedisError> {
    match (conn, node) {
        (Conn::Cluster(c), Some((host, port))) => {
            let route = SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            };
            let value = c.route_command(cmd, RoutingInfo::SingleNode(route)).await?;
            Ok(redis::from_redis_value(value)?)
        }
        (conn, _) => cmd.query_async(conn).await,
    }
}

/// INFO's text, once per node: a string from one server, a map of node
/// to string from a cluster.
fn node_texts(info: redis::Value) -> Vec<String> {
    use redis::Value;
    match info {
        Value::Map(pairs) => pairs.into_iter().flat_map(|(_, v)| node_texts(v)).collect(),
        other => redis::from_redis_value::<String>(other)
            .into_iter()
            .collect(),
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

async fn admin<T>(f: impl Future<Output = Result<T, RedisError>>) -> Result<T, String> {
    match tokio::time::timeout(ADMIN_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| describe(&e)),
        Err(_) => Err(format!("Redis did not answer within {ADMIN_TIMEOUT:?}")),
    }
}

/// Escapes Redis glob characters so a prefix matches only itself.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(glob_escape("app:*[x]?\\"), "app:\\*\\[x\\]\\?\\\\");
    }

    #[test]
    fn info_is_read_from_one_server_or_every_node() {
        use redis::Value;
        let one = Value::BulkString(b"# Clients\r\nconnected_clients:3\r\n".to_vec());
        assert_eq!(node_texts(one).len(), 1);
        let text = |n: u8| Value::BulkString(format!("used_memory:{n}\r\n").into_bytes());
        let map = Value::Map(vec![
            (Value::SimpleString("a:1".into()), text(5)),
            (Value::SimpleString("b:2".into()), text(7)),
        ]);
        let texts = node_texts(map);
        let total: u64 = texts
            .iter()
            .filter_map(|t| field(t, "used_memory")?.parse::<u64>().ok())
            .sum();
        assert_eq!((texts.len(), total), (2, 12));
    }
}
