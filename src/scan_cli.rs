//! `ollama-guard scan`: the proxy's scanners on text from standard input,
//! one JSON report per line on standard output. Plain input is one text;
//! with `--jsonl` each line is `{"text": "...", "direction": "input"|"output"}`
//! (an `id` field is echoed back). A line that cannot be read gets an
//! `{"line": N, "error": "..."}` report and the rest go on.

use std::io::{BufRead, Write};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::guard::Guard;
use crate::scan::Direction;

/// What a run saw: the exit code follows from it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub scanned: usize,
    pub blocked: usize,
    pub errors: usize,
}

impl Outcome {
    /// 2 if any line was unreadable or a scanner failed, else 1 if anything
    /// was blocked, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.errors > 0 {
            2
        } else {
            i32::from(self.blocked > 0)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    direction: Option<Direction>,
    id: Option<Value>,
}

pub async fn run(
    guard: &Guard,
    jsonl: bool,
    direction: Direction,
    input: impl BufRead,
    out: &mut impl Write,
) -> std::io::Result<Outcome> {
    let mut outcome = Outcome::default();
    if !jsonl {
        let text = std::io::read_to_string(input)?;
        emit(guard, &mut outcome, out, direction, &text, None).await?;
        return Ok(outcome);
    }
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(l) => {
                emit(
                    guard,
                    &mut outcome,
                    out,
                    l.direction.unwrap_or(direction),
                    &l.text,
                    l.id,
                )
                .await?
            }
            Err(e) => {
                outcome.errors += 1;
                writeln!(
                    out,
                    "{}",
                    json!({ "line": n + 1, "error": format!("expected {{\"text\": ..., \"direction\": ...}}: {e}") })
                )?;
            }
        }
    }
    Ok(outcome)
}

async fn emit(
    guard: &Guard,
    outcome: &mut Outcome,
    out: &mut impl Write,
    direction: Direction,
    text: &str,
    id: Option<Value>,
) -> std::io::Result<()> {
    let mut report = match guard.report(direction, text, true).await {
        Ok(r) => {
            outcome.scanned += 1;
            outcome.blocked += usize::from(!r.allowed);
            serde_json::to_value(r).unwrap_or_default()
        }
        Err(e) => {
            outcome.errors += 1;
            json!({ "error": e.to_string() })
        }
    };
    if let (Some(id), Some(map)) = (id, report.as_object_mut()) {
        map.insert("id".into(), id);
    }
    writeln!(out, "{report}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::VerdictCache;
    use crate::config::load_from;
    use crate::metrics::Metrics;
    use std::sync::Arc;

    fn guard() -> Guard {
        let yaml = "scanners:\n  input:\n    - {type: ban_substrings, substrings: [forbidden]}\n    - {type: regex, mode: redact, patterns: ['\\d{4}']}\n  output: []\n";
        let config = load_from(yaml, |_| None).expect("config");
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        Guard::new(&config, Arc::new(VerdictCache::disabled(&metrics)), metrics).expect("guard")
    }

    async fn lines(jsonl: bool, input: &str) -> (Vec<Value>, Outcome) {
        let mut out = Vec::new();
        let outcome = run(
            &guard(),
            jsonl,
            Direction::Input,
            input.as_bytes(),
            &mut out,
        )
        .await
        .expect("io");
        let reports = String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        (reports, outcome)
    }

    #[tokio::test]
    async fn jsonl_gets_one_report_per_line_in_order() {
        let input = "{\"text\": \"hello\", \"id\": 1}\n\n{\"text\": \"a forbidden word\", \"id\": \"b\"}\n{\"text\": \"pin 1234\"}\n";
        let (reports, outcome) = lines(true, input).await;
        assert_eq!(reports.len(), 3);
        assert_eq!(
            (reports[0]["allowed"].as_bool(), reports[0]["id"].as_i64()),
            (Some(true), Some(1))
        );
        assert_eq!(reports[1]["blocked_by"], json!(["ban_substrings"]));
        assert_eq!(reports[2]["redacted_text"], "pin [REDACTED]");
        assert_eq!(reports[0]["scanners"][0]["scanner"], "ban_substrings");
        assert_eq!(
            outcome,
            Outcome {
                scanned: 3,
                blocked: 1,
                errors: 0
            }
        );
        assert_eq!(outcome.exit_code(), 1);
    }

    #[tokio::test]
    async fn unreadable_lines_are_reported_and_the_rest_go_on() {
        let (reports, outcome) =
            lines(true, "not json\n{\"txt\": \"x\"}\n{\"text\": \"fine\"}\n").await;
        assert_eq!(reports[0]["line"], 1);
        assert!(
            reports[1]["error"]
                .as_str()
                .expect("error")
                .contains("unknown field")
        );
        assert_eq!(reports[2]["allowed"], true);
        assert_eq!(outcome.exit_code(), 2);
    }

    #[tokio::test]
    async fn plain_input_is_one_text() {
        let (reports, outcome) = lines(false, "line one\nline two\n").await;
        assert_eq!(reports.len(), 1);
        assert_eq!(outcome.exit_code(), 0);
    }
}
