//! Network rules: which addresses may connect (`auth.allow_cidrs`,
//! `auth.deny_cidrs`), and when `X-Forwarded-For` is believed
//! (`server.trusted_proxies`: only from those peers, never by default).

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Parsed CIDR lists.
#[derive(Debug, Default)]
pub struct NetRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    trusted: Vec<IpNet>,
}

/// `10.0.0.0/8`, `::1/128`, or a bare address (one host).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR"))
}

fn parse_all(key: &str, list: &[String], problems: &mut Vec<String>) -> Vec<IpNet> {
    list.iter()
        .filter_map(|s| {
            parse_net(s)
                .map_err(|e| problems.push(format!("{key}: {e}")))
                .ok()
        })
        .collect()
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl NetRules {
    pub fn new(allow: &[String], deny: &[String], trusted: &[String]) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let rules = Self {
            allow: parse_all("auth.allow_cidrs", allow, &mut problems),
            deny: parse_all("auth.deny_cidrs", deny, &mut problems),
            trusted: parse_all("server.trusted_proxies", trusted, &mut problems),
        };
        match problems.is_empty() {
            true => Ok(rules),
            false => Err(problems),
        }
    }

    /// The client's address: the peer's, or, when the peer is a trusted
    /// proxy, the last address in `X-Forwarded-For` that is not one.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = canonical(peer?);
        if !self.is_trusted(client) {
            return Some(client);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                // An unreadable hop: stop at the last address known good.
                break;
            };
            client = canonical(ip);
            if !self.is_trusted(client) {
                break;
            }
        }
        Some(client)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Whether the client may be served: not denied, and allowed when an
    /// allow list is set (an unknown address is allowed only without one).
    pub fn admits(&self, client: Option<IpAddr>) -> bool {
        match client {
            Some(ip) => {
                !self.deny.iter().any(|n| n.contains(&ip))
                    && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
            }
            None => self.allow.is_empty() && self.deny.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str], trusted: &[&str]) -> NetRules {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        NetRules::new(&v(allow), &v(deny), &v(trusted)).expect("valid")
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().expect("header"));
        h
    }

    #[test]
    fn allow_and_deny_lists_for_both_families() {
        let r = rules(&["10.0.0.0/8", "fd00::/8"], &["10.9.0.0/16"], &[]);
        assert!(r.admits(ip("10.1.2.3")));
        assert!(!r.admits(ip("10.9.2.3")), "deny wins");
        assert!(r.admits(ip("fd12::1")));
        assert!(!r.admits(ip("192.168.1.1")));
        assert!(!r.admits(None), "unknown address with an allow list");
        assert!(rules(&[], &[], &[]).admits(None));
        let mapped = r.client(ip("::ffff:10.1.2.3"), &HeaderMap::new());
        assert!(r.admits(mapped), "IPv4-mapped IPv6 is IPv4");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = rules(&[], &[], &[]);
        assert_eq!(
            none.client(ip("203.0.113.5"), &xff("10.0.0.1")),
            ip("203.0.113.5")
        );
        let r = rules(&[], &[], &["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(
            r.client(ip("127.0.0.1"), &xff("198.51.100.7")),
            ip("198.51.100.7")
        );
        // The rightmost hop not ours is the client; what it claims is not.
        assert_eq!(
            r.client(ip("127.0.0.1"), &xff("1.1.1.1, 198.51.100.7, 10.0.0.2")),
            ip("198.51.100.7")
        );
        assert_eq!(
            r.client(ip("203.0.113.5"), &xff("10.0.0.1")),
            ip("203.0.113.5")
        );
        assert_eq!(r.client(ip("127.0.0.1"), &xff("junk")), ip("127.0.0.1"));
    }

    #[test]
    fn bad_entries_are_named() {
        let v = vec!["10.0.0.0/33".to_string(), "nope".to_string()];
        let problems = NetRules::new(&v, &[], &v).err().unwrap_or_default();
        assert_eq!(problems.len(), 4);
        assert!(problems[0].starts_with("auth.allow_cidrs"));
        assert!(problems[2].starts_with("server.trusted_proxies"));
    }
}
