//! `urls`: links in a text, judged by where they lead: allow and deny lists
//! of domains (a listed domain covers its subdomains), IP-literal hosts,
//! punycode (`xn--`) and mixed-script hosts (look-alike domains), and
//! dangerous schemes (`data:`, `javascript:`, `vbscript:`, `file:`).

use std::sync::OnceLock;

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::tail::Viable;
use super::{Match, Mode, Scanner, builtin_regex};

/// `{type: urls, deny_domains: [...], allow_domains: [...]}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    /// When not empty, links to any other domain are flagged.
    pub allow_domains: Vec<String>,
    pub deny_domains: Vec<String>,
    pub block_ip_hosts: bool,
    pub block_punycode: bool,
    pub block_mixed_script: bool,
    pub blocked_schemes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            allow_domains: Vec::new(),
            deny_domains: Vec::new(),
            block_ip_hosts: true,
            block_punycode: true,
            block_mixed_script: true,
            blocked_schemes: ["data", "javascript", "vbscript", "file"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<Urls, String> {
        let clean = |list: &[String]| {
            list.iter()
                .map(|d| d.trim().trim_start_matches("*.").to_ascii_lowercase())
                .collect()
        };
        Ok(Urls {
            config: self.clone(),
            allow: clean(&self.allow_domains),
            deny: clean(&self.deny_domains),
        })
    }
}

fn links() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| builtin_regex(r#"(?i)\b(?:(?:https?|ftp|wss?)://|www\.)[^\s<>"'`]+|\b(?:data|javascript|vbscript|file):[^\s<>"'`]+"#))
}

pub struct Urls {
    config: Config,
    allow: Vec<String>,
    deny: Vec<String>,
}

fn under(host: &str, domain: &str) -> bool {
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// Letters of more than one script in one label (`pаypal`, Cyrillic а).
fn mixed_script(host: &str) -> bool {
    host.split('.').any(|label| {
        let latin = label.chars().any(|c| c.is_ascii_alphabetic());
        let other = label.chars().any(|c| c.is_alphabetic() && !c.is_ascii());
        latin && other
    })
}

impl Urls {
    /// Why a link is flagged, if it is.
    fn judge(&self, link: &str) -> Option<String> {
        let lower = link.to_ascii_lowercase();
        if let Some(scheme) = self
            .config
            .blocked_schemes
            .iter()
            .find(|s| lower.starts_with(&format!("{s}:")))
        {
            return Some(format!("{scheme}: link"));
        }
        let with_scheme = if lower.starts_with("www.") {
            format!("http://{link}")
        } else {
            link.to_string()
        };
        let raw_host = with_scheme
            .split("://")
            .nth(1)?
            .split(['/', '?', '#'])
            .next()?
            .rsplit('@')
            .next()?
            .to_string();
        let raw_host = raw_host.trim_end_matches(['.', ',', ')']);
        if self.config.block_mixed_script && mixed_script(raw_host) {
            return Some("mixed-script host".into());
        }
        let url = reqwest::Url::parse(&with_scheme).ok()?;
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        let is_ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if self.config.block_ip_hosts && is_ip {
            return Some("IP-literal host".into());
        }
        if self.config.block_punycode && host.split('.').any(|l| l.starts_with("xn--")) {
            return Some("punycode host".into());
        }
        if self.deny.iter().any(|d| under(&host, d)) {
            return Some("denied domain".into());
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|d| under(&host, d)) {
            return Some("domain not on the allow list".into());
        }
        None
    }
}

#[async_trait]
impl Scanner for Urls {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        Ok(links()
            .find_iter(text)
            .filter_map(|m| {
                let link = m.as_str().trim_end_matches(['.', ',', ')', ';', ':']);
                self.judge(link).map(|why| Match {
                    span: Some(m.start()..m.start() + link.len()),
                    score: 1.0,
                    reason: why,
                    placeholder: "[URL_#]".into(),
                    part: None,
                    report_only: false,
                })
            })
            .collect())
    }

    fn hold_back(&self, text: &str, settled: usize) -> usize {
        static V: OnceLock<Option<Viable>> = OnceLock::new();
        V.get_or_init(|| Viable::new(&[links().as_str()]).ok())
            .as_ref()
            .map_or(0, |v| v.tail(text, settled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reasons(config: Config, text: &str) -> Vec<String> {
        crate::scan::reasons(&config.build().expect("config"), text).await
    }

    #[tokio::test]
    async fn flags_each_kind_of_risky_link() {
        let c = || Config {
            deny_domains: vec!["evil.example".into()],
            ..Config::default()
        };
        assert_eq!(
            reasons(c(), "see https://cdn.evil.example/x.js now").await,
            vec!["denied domain"]
        );
        assert_eq!(
            reasons(c(), "go to http://192.168.0.10/admin").await,
            vec!["IP-literal host"]
        );
        assert_eq!(
            reasons(c(), "https://xn--pypal-4ve.com/login").await,
            vec!["punycode host"]
        );
        assert_eq!(
            reasons(c(), "https://pаypal.com/login").await,
            vec!["mixed-script host"]
        );
        assert_eq!(
            reasons(c(), "click javascript:alert(1)").await,
            vec!["javascript: link"]
        );
        assert_eq!(
            reasons(c(), "img data:text/html;base64,PHNjcmlwdD4=").await,
            vec!["data: link"]
        );
    }

    #[tokio::test]
    async fn allow_lists_cover_subdomains_and_ordinary_links_pass() {
        let allow = Config {
            allow_domains: vec!["example.com".into()],
            ..Config::default()
        };
        assert!(
            reasons(allow.clone(), "docs at https://docs.example.com/a.")
                .await
                .is_empty()
        );
        assert_eq!(
            reasons(allow, "and www.other.org").await,
            vec!["domain not on the allow list"]
        );
        assert!(
            reasons(
                Config::default(),
                "read https://www.rust-lang.org/learn, then https://crates.io."
            )
            .await
            .is_empty()
        );
    }
}
