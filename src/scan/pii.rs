//! `pii`: e-mail addresses, phone numbers (international and national
//! formats), payment card numbers (Luhn-checked), IBANs (mod-97 checked), US
//! social security numbers (valid ranges only) and IP addresses. Redaction
//! writes numbered placeholders (`[EMAIL_1]`); the same value gets the same
//! number throughout a request.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::tail::Viable;
use super::{Match, Mode, Scanner};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Email,
    Phone,
    CreditCard,
    Iban,
    Ssn,
    IpAddress,
}

impl Entity {
    const ALL: [Entity; 6] = [
        Entity::Email,
        Entity::CreditCard,
        Entity::Iban,
        Entity::Ssn,
        Entity::IpAddress,
        Entity::Phone,
    ];

    fn tag(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::Ssn => "SSN",
            Entity::IpAddress => "IP_ADDRESS",
        }
    }
}

/// `{type: pii, entities: [email, phone, ...], mode: redact}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    /// Which kinds to look for (default: all).
    pub entities: Vec<Entity>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            entities: Entity::ALL.to_vec(),
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<Pii, String> {
        if self.entities.is_empty() {
            return Err("entities must list at least one kind".into());
        }
        patterns()?;
        // Specific kinds first: a card or IBAN is not also a phone number.
        let entities = Entity::ALL
            .into_iter()
            .filter(|e| self.entities.contains(e))
            .collect();
        Ok(Pii { entities })
    }
}

struct Patterns {
    email: Regex,
    card: Regex,
    iban: Regex,
    ssn: Regex,
    phone: Regex,
    ipv4: Regex,
    ipv6: Regex,
    /// Digit groups that are dates or SSN-shaped, never phone numbers.
    not_phone: Regex,
}

fn patterns() -> Result<&'static Patterns, String> {
    static P: OnceLock<Result<Patterns, String>> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).map_err(|e| e.to_string());
        Ok(Patterns {
            email: re(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")?,
            card: re(r"\b\d(?:[ \-]?\d){11,18}\b")?,
            iban: re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")?,
            ssn: re(r"\b(\d{3})([- ])(\d{2})([- ])(\d{4})\b")?,
            phone: re(r"(?:\+|\b00)?\(?\d[\d\s().\-/]{6,20}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b")?,
            ipv4: re(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")?,
            ipv6: re(r"(?i)\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b")?,
            not_phone: re(r"^(?:\d{4}[-/.]\d{2}[-/.]\d{2}|\d{2}[-/.]\d{2}[-/.]\d{4}|\d{3}[- ]\d{2}[- ]\d{4})$")?,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

pub fn luhn(ds: &[u32]) -> bool {
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn iban_valid(candidate: &str) -> bool {
    let s: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    let mut rem: u64 = 0;
    for c in rearranged.chars() {
        let v = match c.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    rem == 1
}

fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let a: u32 = area.parse().unwrap_or(0);
    a != 0 && a != 666 && a < 900 && group != "00" && serial != "0000"
}

fn phone_like(candidate: &str, p: &Patterns) -> bool {
    let n = digits(candidate).len();
    let international = candidate.starts_with('+') || candidate.starts_with("00");
    let separated = candidate
        .chars()
        .any(|c| matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'));
    let trunk = candidate.trim_start_matches('(').starts_with('0');
    (9..=15).contains(&n)
        && (international || separated || trunk)
        && !p.not_phone.is_match(candidate.trim())
}

pub struct Pii {
    entities: Vec<Entity>,
}

impl Pii {
    fn find(&self, entity: Entity, text: &str, p: &Patterns) -> Vec<std::ops::Range<usize>> {
        let ranges = |re: &Regex| re.find_iter(text).map(|m| m.range()).collect::<Vec<_>>();
        match entity {
            Entity::Email => ranges(&p.email),
            Entity::CreditCard => p
                .card
                .find_iter(text)
                .filter(|m| {
                    let d = digits(m.as_str());
                    (12..=19).contains(&d.len()) && luhn(&d)
                })
                .map(|m| m.range())
                .collect(),
            Entity::Iban => p
                .iban
                .find_iter(text)
                .filter(|m| iban_valid(m.as_str()))
                .map(|m| m.range())
                .collect(),
            Entity::Ssn => p
                .ssn
                .captures_iter(text)
                .filter(|c| c[2] == c[4] && ssn_valid(&c[1], &c[3], &c[5]))
                .filter_map(|c| c.get(0).map(|m| m.range()))
                .collect(),
            Entity::Phone => p
                .phone
                .find_iter(text)
                .filter(|m| phone_like(m.as_str(), p))
                .map(|m| m.range())
                .collect(),
            Entity::IpAddress => {
                let v4 = p
                    .ipv4
                    .find_iter(text)
                    .filter(|m| m.as_str().parse::<Ipv4Addr>().is_ok());
                let v6 = p.ipv6.find_iter(text).filter(|m| {
                    m.as_str().matches(':').count() >= 2 && m.as_str().parse::<Ipv6Addr>().is_ok()
                });
                v4.chain(v6).map(|m| m.range()).collect()
            }
        }
    }
}

#[async_trait]
impl Scanner for Pii {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let p = patterns()?;
        let mut found: Vec<Match> = Vec::new();
        // Spans taken so far, start -> end. They never overlap, so the one
        // starting last before a new range's end is the only one that can
        // overlap it: one lookup per match, not a pass over all of them.
        let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
        for &entity in &self.entities {
            for range in self.find(entity, text, p) {
                if taken
                    .range(..range.end)
                    .next_back()
                    .is_some_and(|(_, &end)| end > range.start)
                {
                    continue;
                }
                taken.insert(range.start, range.end);
                found.push(Match {
                    span: Some(range),
                    score: 1.0,
                    reason: format!("{} found", entity.tag().to_lowercase().replace('_', " ")),
                    placeholder: format!("[{}_#]", entity.tag()),
                    part: None,
                    report_only: false,
                });
            }
        }
        Ok(found)
    }

    fn hold_back(&self, text: &str, settled: usize) -> usize {
        tails().map_or(0, |v| v.tail(text, settled))
    }
}

/// Every entity's pattern, for [`Scanner::hold_back`] (all of them: holding
/// for an entity that is not enabled only delays, never leaks).
fn tails() -> Option<&'static Viable> {
    static V: OnceLock<Option<Viable>> = OnceLock::new();
    V.get_or_init(|| {
        let p = patterns().ok()?;
        let all = [
            &p.email, &p.card, &p.iban, &p.ssn, &p.phone, &p.ipv4, &p.ipv6,
        ];
        let sources: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
        Viable::new(&sources).ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests;
