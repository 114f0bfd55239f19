use super::*;
use crate::scan::registry::build_pipeline;
use crate::scan::{Numbering, ScannerSpec};

fn guard(yaml: &str, interval: usize, overlap: usize) -> OutputGuard {
    let specs: Vec<ScannerSpec> = serde_saphyr::from_str(yaml).expect("yaml");
    let pipeline = Arc::new(build_pipeline("t", &specs).expect("valid"));
    OutputGuard::new(
        pipeline,
        StreamConfig {
            scan_interval_bytes: interval,
            overlap_bytes: overlap,
        },
        FailMode::Closed,
    )
}

const BAN: &str = "- {type: ban_substrings, substrings: [kill all humans]}\n";

#[tokio::test]
async fn phrase_split_over_three_chunks_is_caught() {
    let mut g = guard(BAN, 1, 64);
    for part in ["we must kill", " all hu", "mans now"] {
        g.push(part);
        if let WindowVerdict::Block(names) = g.scan().await {
            assert_eq!(part, "mans now", "blocked only once the phrase is complete");
            assert_eq!(names, vec!["ban_substrings".to_string()]);
            return;
        }
    }
    panic!("the split phrase was never caught");
}

#[tokio::test]
async fn windows_that_do_not_overlap_enough_miss_the_phrase() {
    // The counter-case that shows why the overlap exists.
    let mut g = guard(BAN, 1, 0);
    for part in ["we must kill", " all hu", "mans now"] {
        g.push(part);
        assert_eq!(g.scan().await, WindowVerdict::Pass(vec![]));
    }
}

#[tokio::test]
async fn interval_holds_text_until_enough_is_pending() {
    let mut g = guard(BAN, 10, 64);
    g.push("abc");
    assert!(!g.due());
    g.push("defghij");
    assert!(g.due());
    assert_eq!(g.scan().await, WindowVerdict::Pass(vec![]));
    assert_eq!(g.pending_bytes(), 0);
}

#[tokio::test]
async fn memory_keeps_only_the_overlap() {
    let mut g = guard(BAN, 1, 8);
    for _ in 0..100 {
        g.push("0123456789");
        g.scan().await;
    }
    assert!(g.text.len() <= 8, "kept {} bytes", g.text.len());
    assert_eq!(g.push("x"), 1000..1001);
}

#[tokio::test]
async fn redactions_come_back_in_absolute_offsets() {
    let mut g = guard(
        "- {type: regex, mode: redact, patterns: ['sk-[a-z]{4}'], placeholder: '[KEY]'}\n",
        1,
        4,
    );
    g.push("0123456789");
    g.scan().await;
    g.push("key sk-abcd!");
    let WindowVerdict::Pass(r) = g.scan().await else {
        panic!("should pass")
    };
    assert_eq!((r[0].start, r[0].end), (14, 21));
}

#[test]
fn redact_range_splits_a_span_across_frames() {
    let spans = vec![Redaction {
        start: 4,
        end: 10,
        placeholder: "[X]".into(),
    }];
    // Frames "abc sk" (0..6), "-123" (6..10), " ok" (10..13).
    let n = &mut Numbering::default();
    assert_eq!(redact_range("abc sk", &(0..6), &spans, n), "abc [X]");
    assert_eq!(redact_range("-123", &(6..10), &spans, n), "");
    assert_eq!(redact_range(" ok", &(10..13), &spans, n), " ok");
}
