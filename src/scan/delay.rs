//! `delay`: waits a fixed time and finds nothing. It stands in for a costly
//! scanner (a guard-model call) when measuring or demonstrating the verdict
//! cache: the first request for a text pays `millis`, repeats do not. With
//! `busy: true` it keeps a core busy for that time instead of sleeping, as a
//! slow CPU-bound scanner would.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Cost, Match, Mode, Scanner};

/// `{type: delay, millis: 200}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name in logs and metrics; defaults to the type.
    pub name: Option<String>,
    pub mode: Mode,
    /// How long each scan takes.
    pub millis: u64,
    /// Spin the CPU instead of sleeping.
    pub busy: bool,
}

pub struct Delay {
    time: Duration,
    busy: bool,
}

impl Config {
    pub fn build(&self) -> Result<Delay, String> {
        if self.millis > 60_000 {
            return Err("millis must be at most 60000".into());
        }
        Ok(Delay {
            time: Duration::from_millis(self.millis),
            busy: self.busy,
        })
    }
}

#[async_trait]
impl Scanner for Delay {
    fn cost(&self) -> Cost {
        Cost::Expensive
    }
    async fn scan(&self, _text: &str) -> Result<Vec<Match>, String> {
        if self.busy {
            let started = std::time::Instant::now();
            while started.elapsed() < self.time {
                std::hint::spin_loop();
            }
        } else {
            tokio::time::sleep(self.time).await;
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_the_configured_time_and_finds_nothing() {
        let d = Config {
            millis: 200,
            ..Config::default()
        }
        .build()
        .expect("valid");
        let started = tokio::time::Instant::now();
        assert!(d.scan("anything").await.expect("scan").is_empty());
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }
}
