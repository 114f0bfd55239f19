//! Signed verdicts (`cache.signing_key`): every value written to Redis
//! carries an HMAC-SHA256 over its Redis key and its bytes, so write access
//! to Redis cannot mark a text as allowed (nor move a verdict to another
//! key). A value that fails the check is ignored, counted and rescanned.
//!
//! Stored form: `s1:<hex mac>:<verdict JSON>`; unsigned: the JSON alone.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const TAG: &[u8] = b"s1:";

#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

/// What a stored value says, once checked.
#[derive(Debug, PartialEq)]
pub enum Checked<'a> {
    /// The verdict JSON, signed where signing is on.
    Good(&'a [u8]),
    /// Signing is on and this value is unsigned or signed wrongly.
    Forged,
}

impl Signer {
    pub fn new(key: &str) -> Self {
        // HMAC takes keys of any length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Self { mac }
    }

    fn tag(&self, redis_key: &str, json: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(redis_key.as_bytes());
        mac.update(&[0]);
        mac.update(json);
        mac
    }

    pub fn sign(&self, redis_key: &str, json: Vec<u8>) -> Vec<u8> {
        let tag = hex::encode(self.tag(redis_key, &json).finalize().into_bytes());
        let mut out = Vec::with_capacity(TAG.len() + tag.len() + 1 + json.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(tag.as_bytes());
        out.push(b':');
        out.extend(json);
        out
    }
}

/// Checks `raw` (stored at `redis_key`) with `signer`, if signing is on.
/// Without it, a signed value is read too (instances rolling over).
pub fn check<'a>(signer: Option<&Signer>, redis_key: &str, raw: &'a [u8]) -> Checked<'a> {
    let signed = raw
        .strip_prefix(TAG)
        .and_then(|rest| rest.get(64..).map(|json| (&rest[..64], json)))
        .and_then(|(tag, json)| Some((tag, json.strip_prefix(b":")?)));
    match (signer, signed) {
        (None, Some((_, json))) => Checked::Good(json),
        (None, None) => Checked::Good(raw),
        (Some(_), None) => Checked::Forged,
        (Some(s), Some((tag, json))) => {
            let ok =
                hex::decode(tag).is_ok_and(|tag| s.tag(redis_key, json).verify_slice(&tag).is_ok());
            match ok {
                true => Checked::Good(json),
                false => Checked::Forged,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = br#"{"allowed":true,"findings":[],"redactions":[]}"#;

    #[test]
    fn a_signed_value_reads_back_only_at_its_key_with_the_key() {
        let s = Signer::new("shared-secret");
        let stored = s.sign("p:verdict:aa", JSON.to_vec());
        assert_eq!(
            check(Some(&s), "p:verdict:aa", &stored),
            Checked::Good(JSON)
        );
        assert_eq!(
            check(Some(&s), "p:verdict:bb", &stored),
            Checked::Forged,
            "moved"
        );
        let other = Signer::new("another-secret");
        assert_eq!(
            check(Some(&other), "p:verdict:aa", &stored),
            Checked::Forged
        );
        assert_eq!(
            check(Some(&s), "p:verdict:aa", JSON),
            Checked::Forged,
            "unsigned"
        );
        let mut tampered = stored.clone();
        let at = tampered.len() - 3;
        tampered[at] ^= 1;
        assert_eq!(check(Some(&s), "p:verdict:aa", &tampered), Checked::Forged);
        assert_eq!(check(None, "p:verdict:aa", &stored), Checked::Good(JSON));
        assert_eq!(check(None, "p:verdict:aa", JSON), Checked::Good(JSON));
    }
}
