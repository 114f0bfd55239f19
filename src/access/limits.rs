//! Rate limits per key, shared by every instance through Redis: one atomic
//! step per request, a Lua script running GCRA (the generic cell rate
//! algorithm) over the key's request and token buckets on Redis's own clock.
//! A key of `N` a minute may send `N` at once, then one every `60/N` s.
//! When Redis is away, each instance counts alone (the limit then holds per
//! instance) and says so (`/cache/health`, `ollama_guard_rate_limit_local`).
//! Buckets are keyed by the key's name, never by the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::redis::RedisTier;
use crate::metrics::Metrics;

use super::keys::Client;

const MINUTE_MICROS: u64 = 60_000_000;

/// Checks every bucket, then takes from all of them or from none. Per
/// bucket: ARGV = emission interval (µs), tolerance (µs), cost. Returns
/// {1, 0} when allowed, {0, µs to wait} when not.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, wait = {}, 0
for i = 1, #KEYS do
  local step, tau, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
  local new = tat + step * cost
  if new - tau > now then wait = math.max(wait, new - tau - now) end
  tats[i] = new
end
if wait > 0 then return {0, wait} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
end
return {1, 0}
";

/// One bucket's part in a check.
#[derive(Clone, Copy, Debug)]
struct Take {
    bucket: &'static str,
    /// Emission interval: a minute over the limit.
    step: u64,
    /// How far ahead of now the bucket may run: a minute.
    tau: u64,
    cost: u64,
}

impl Take {
    fn new(bucket: &'static str, per_minute: u64, cost: u64) -> Self {
        let step = (MINUTE_MICROS / per_minute).max(1);
        Self {
            bucket,
            step,
            tau: MINUTE_MICROS,
            // A request bigger than a minute's budget takes all of it.
            cost: cost.min(per_minute),
        }
    }
}

pub struct Limiter {
    redis: Option<Arc<RedisTier>>,
    script: redis::Script,
    /// Local buckets' theoretical arrival times, µs since `epoch`.
    local: Mutex<HashMap<(String, &'static str), u64>>,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

impl Limiter {
    pub fn new(redis: Option<Arc<RedisTier>>, metrics: Arc<Metrics>) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            local: Mutex::default(),
            epoch: Instant::now(),
            metrics,
        }
    }

    /// Whether limits are counted in this instance only now.
    pub fn is_local(&self) -> bool {
        !self.redis.as_ref().is_some_and(|r| r.is_available())
    }

    /// Takes one request and `tokens` from `client`'s buckets, or says how
    /// long to wait.
    pub async fn admit(&self, client: &Client, tokens: u64) -> Result<(), Duration> {
        let limits = &client.limits;
        let mut takes = Vec::with_capacity(2);
        if limits.requests_per_minute > 0 {
            takes.push(Take::new("requests", limits.requests_per_minute, 1));
        }
        if limits.tokens_per_minute > 0 && tokens > 0 {
            takes.push(Take::new("tokens", limits.tokens_per_minute, tokens));
        }
        if takes.is_empty() {
            return Ok(());
        }
        if let Some(redis) = self.redis.as_ref().filter(|r| r.is_available()) {
            // `{name}` is a cluster hash tag: a key's buckets share a slot,
            // so one script can take from both.
            let keys: Vec<String> = takes
                .iter()
                .map(|t| format!("{}rate:{{{}}}:{}", redis.prefix, client.name, t.bucket))
                .collect();
            let args: Vec<u64> = takes.iter().flat_map(|t| [t.step, t.tau, t.cost]).collect();
            if let Some((allowed, wait)) =
                redis.invoke::<(i64, i64)>(&self.script, &keys, &args).await
            {
                self.metrics.rate_limit_local.set(0);
                return match allowed {
                    1 => Ok(()),
                    _ => Err(Duration::from_micros(wait.max(1) as u64)),
                };
            }
        }
        self.metrics.rate_limit_local.set(1);
        self.admit_locally(&client.name, &takes)
    }

    /// The same algorithm on this instance's clock.
    fn admit_locally(&self, name: &str, takes: &[Take]) -> Result<(), Duration> {
        let now = self.epoch.elapsed().as_micros() as u64;
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0;
        let mut next = Vec::with_capacity(takes.len());
        for t in takes {
            let tat = local
                .get(&(name.to_string(), t.bucket))
                .copied()
                .unwrap_or(now)
                .max(now);
            let new = tat + t.step * t.cost;
            let allowed_at = new.saturating_sub(t.tau);
            if allowed_at > now {
                wait = wait.max(allowed_at - now);
            }
            next.push(new);
        }
        if wait > 0 {
            return Err(Duration::from_micros(wait));
        }
        for (t, new) in takes.iter().zip(next) {
            local.insert((name.to_string(), t.bucket), new);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    fn client(yaml: &str) -> Arc<Client> {
        let auth: AuthConfig = serde_saphyr::from_str(yaml).expect("yaml");
        let ring = super::super::keys::KeyRing::load(&auth).expect("keys");
        ring.get("k-0123456789abcdef").expect("key").clone()
    }

    #[tokio::test]
    async fn a_burst_of_the_limit_then_refusals_with_a_wait() {
        let c = client(
            "keys: [{key: k-0123456789abcdef, name: k, rate_limit: {requests_per_minute: 5}}]",
        );
        let limiter = Limiter::new(None, Arc::new(Metrics::new().expect("metrics")));
        for _ in 0..5 {
            assert!(limiter.admit(&c, 0).await.is_ok());
        }
        let wait = limiter.admit(&c, 0).await.err().unwrap_or_default();
        assert!(
            wait > Duration::from_secs(11) && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        assert!(limiter.is_local());
    }

    #[tokio::test]
    async fn tokens_are_a_bucket_of_their_own_and_a_refusal_takes_nothing() {
        let c = client(
            "keys: [{key: k-0123456789abcdef, name: k, rate_limit: {requests_per_minute: 100, tokens_per_minute: 1000}}]",
        );
        let limiter = Limiter::new(None, Arc::new(Metrics::new().expect("metrics")));
        assert!(limiter.admit(&c, 900).await.is_ok());
        assert!(limiter.admit(&c, 200).await.is_err(), "over the tokens");
        assert!(
            limiter.admit(&c, 100).await.is_ok(),
            "the refusal took nothing"
        );
        assert!(limiter.admit(&c, 5000).await.is_err());
    }
}
