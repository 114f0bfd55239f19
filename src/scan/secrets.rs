//! `secrets`: credentials of the common providers and generic `key = value`
//! secrets. One Aho-Corasick pass over the text finds which providers'
//! keywords appear; only their patterns run, so a long text costs one
//! linear scan plus the few patterns it could match. Generic values must
//! look random (Shannon entropy) and not like a placeholder.

use std::sync::{LazyLock, OnceLock};

use aho_corasick::AhoCorasick;
use async_trait::async_trait;
use memchr::memmem::{Finder, FinderRev};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::tail::Viable;
use super::{Match, Mode, Scanner};

/// `{type: secrets, mode: redact}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
}

impl Config {
    pub fn build(&self) -> Result<Secrets, String> {
        rules()
            .map(|_| Secrets)
            .map_err(|e| format!("built-in secret patterns: {e}"))
    }
}

/// One provider format.
struct Rule {
    /// Shown in findings; also names the placeholder (`[REDACTED_{tag}]`).
    what: &'static str,
    tag: &'static str,
    re: Regex,
    /// The capture group holding the secret (0: the whole match).
    group: usize,
    /// Require this many bits of entropy per character in the secret.
    min_entropy: f64,
}

struct Rules {
    rules: Vec<Rule>,
    /// Keywords, and for each the rules it enables.
    keywords: AhoCorasick,
    enables: Vec<Vec<usize>>,
}

/// (what, tag, keywords, pattern, group, min entropy)
type Spec = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
    usize,
    f64,
);

const SPECS: &[Spec] = &[
    (
        "AWS access key",
        "AWS_KEY",
        &["akia", "asia", "abia", "acca"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        1,
        0.0,
    ),
    (
        "AWS secret key",
        "AWS_SECRET",
        &[
            "aws_secret",
            "secret_access",
            "aws-secret",
            "secretaccesskey",
        ],
        r#"(?i)aws.{0,20}?secret.{0,20}?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})\b"#,
        1,
        3.5,
    ),
    (
        "Google API key",
        "GCP_API_KEY",
        &["aiza"],
        r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        1,
        0.0,
    ),
    (
        "Google service account key",
        "GCP_SERVICE_ACCOUNT",
        &["service_account"],
        r#""private_key"\s*:\s*"(-----BEGIN PRIVATE KEY-----[^"]+)""#,
        1,
        0.0,
    ),
    (
        "Azure storage key",
        "AZURE_STORAGE_KEY",
        &["accountkey"],
        r"AccountKey=([A-Za-z0-9+/]{86,88}={0,2})",
        1,
        0.0,
    ),
    (
        "GitHub token",
        "GITHUB_TOKEN",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b",
        1,
        0.0,
    ),
    (
        "GitHub fine-grained token",
        "GITHUB_TOKEN",
        &["github_pat_"],
        r"\b(github_pat_[A-Za-z0-9_]{82})\b",
        1,
        0.0,
    ),
    (
        "GitLab token",
        "GITLAB_TOKEN",
        &["glpat-"],
        r"\b(glpat-[A-Za-z0-9_\-]{20})\b",
        1,
        0.0,
    ),
    (
        "Slack token",
        "SLACK_TOKEN",
        &["xox"],
        r"\b(xox[baprse]-[A-Za-z0-9-]{10,250})\b",
        1,
        0.0,
    ),
    (
        "Slack webhook",
        "SLACK_WEBHOOK",
        &["hooks.slack.com"],
        r"(https://hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{23,25})",
        1,
        0.0,
    ),
    (
        "Stripe key",
        "STRIPE_KEY",
        &["sk_live", "sk_test", "rk_live", "rk_test"],
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99})\b",
        1,
        0.0,
    ),
    (
        "OpenAI key",
        "OPENAI_KEY",
        &["t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\b(sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,})",
        1,
        0.0,
    ),
    (
        "Anthropic key",
        "ANTHROPIC_KEY",
        &["sk-ant-"],
        r"\b(sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,110})",
        1,
        0.0,
    ),
    (
        "Hugging Face token",
        "HUGGINGFACE_TOKEN",
        &["hf_"],
        r"\b(hf_[A-Za-z]{34})\b",
        1,
        3.0,
    ),
    (
        "Twilio API key",
        "TWILIO_KEY",
        &["sk"],
        r"\b(SK[0-9a-f]{32})\b",
        1,
        0.0,
    ),
    (
        "SendGrid key",
        "SENDGRID_KEY",
        &["sg."],
        r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b",
        1,
        0.0,
    ),
    (
        "npm token",
        "NPM_TOKEN",
        &["npm_"],
        r"\b(npm_[A-Za-z0-9]{36})\b",
        1,
        0.0,
    ),
    (
        "PyPI token",
        "PYPI_TOKEN",
        &["pypi-ageichlwas5vcmc"],
        r"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        1,
        0.0,
    ),
    (
        "JSON Web Token",
        "JWT",
        &["eyj"],
        r"\b(eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})",
        1,
        0.0,
    ),
    (
        "private key",
        "PRIVATE_KEY",
        &["private key"],
        r"(-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----[\s\S]{16,}?-----END (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----)",
        1,
        0.0,
    ),
    (
        "database URL with password",
        "DB_PASSWORD",
        &["://"],
        r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver)://[^\s:/@]+:([^\s@/]{3,})@[^\s/]+",
        1,
        0.0,
    ),
    (
        "generic secret",
        "SECRET",
        &[
            "key",
            "secret",
            "token",
            "password",
            "passwd",
            "pwd",
            "credential",
        ],
        r#"(?i)\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?token|auth[_-]?token|token|password|passwd|pwd|credentials?)\b["']?\s*(?::|=|:=|=>)\s*["']?([A-Za-z0-9_\-+/=.~!@#$%^&*]{12,})["']?"#,
        1,
        3.0,
    ),
];

fn rules() -> Result<&'static Rules, String> {
    static RULES: OnceLock<Result<Rules, String>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            let mut rules = Vec::with_capacity(SPECS.len());
            let mut words: Vec<&str> = Vec::new();
            let mut enables: Vec<Vec<usize>> = Vec::new();
            for (i, (what, tag, keywords, pattern, group, min_entropy)) in SPECS.iter().enumerate()
            {
                let re = Regex::new(pattern).map_err(|e| format!("{what}: {e}"))?;
                rules.push(Rule {
                    what,
                    tag,
                    re,
                    group: *group,
                    min_entropy: *min_entropy,
                });
                for k in *keywords {
                    match words.iter().position(|w| w == k) {
                        Some(j) => enables[j].push(i),
                        None => {
                            words.push(k);
                            enables.push(vec![i]);
                        }
                    }
                }
            }
            let keywords = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&words)
                .map_err(|e| e.to_string())?;
            Ok(Rules {
                rules,
                keywords,
                enables,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Values that stand for a secret rather than being one.
fn is_placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [
        "your",
        "example",
        "xxxx",
        "changeme",
        "change-me",
        "placeholder",
        "redacted",
        "dummy",
        "<",
        "${",
        "{{",
    ]
    .iter()
    .any(|p| v.contains(p))
}

pub struct Secrets;

#[async_trait]
impl Scanner for Secrets {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let rules = rules()?;
        let mut wanted = vec![false; rules.rules.len()];
        for m in rules.keywords.find_overlapping_iter(text) {
            for &i in &rules.enables[m.pattern().as_usize()] {
                wanted[i] = true;
            }
        }
        let mut found: Vec<Match> = Vec::new();
        for (rule, _) in rules.rules.iter().zip(&wanted).filter(|(_, w)| **w) {
            for caps in rule.re.captures_iter(text) {
                let Some(secret) = caps
                    .get(rule.group)
                    .or_else(|| caps.iter().skip(1).flatten().next())
                else {
                    continue;
                };
                let value = secret.as_str();
                if entropy(value) < rule.min_entropy || is_placeholder(value) {
                    continue;
                }
                if found.iter().any(|f| {
                    f.span
                        .as_ref()
                        .is_some_and(|s| s.start < secret.end() && secret.start() < s.end)
                }) {
                    continue; // a more specific rule already took it
                }
                found.push(Match {
                    span: Some(secret.range()),
                    score: 1.0,
                    reason: rule.what.to_string(),
                    placeholder: format!("[REDACTED_{}]", rule.tag),
                    part: None,
                    report_only: false,
                });
            }
        }
        Ok(found)
    }

    /// A trailing prefix of any provider's format, or a private key begun
    /// and not yet ended (held whole, up to [`PEM_TAIL_BYTES`]).
    fn hold_back(&self, text: &str, settled: usize) -> usize {
        static BEGIN: LazyLock<FinderRev> = LazyLock::new(|| FinderRev::new("-----BEGIN "));
        static END: LazyLock<Finder> = LazyLock::new(|| Finder::new("-----END "));
        let pem = BEGIN
            .rfind(text)
            .filter(|&at| END.find(&text.as_bytes()[at..]).is_none())
            .map_or(0, |at| text.len() - at);
        let tail = tails().map_or(0, |v| v.tail(text, settled));
        tail.max(pem.min(PEM_TAIL_BYTES))
    }
}

/// Most bytes of an unfinished private key held back (a 4096-bit RSA key in
/// PEM is about 3.3 kB).
const PEM_TAIL_BYTES: usize = 16 * 1024;

fn tails() -> Option<&'static Viable> {
    static V: OnceLock<Option<Viable>> = OnceLock::new();
    V.get_or_init(|| {
        let patterns: Vec<&str> = SPECS.iter().map(|s| s.3).collect();
        Viable::new(&patterns).ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests;
