//! Long texts are read in overlapping windows, never cut off: `window` word
//! pieces between `[CLS]` and `[SEP]`, a new window every `stride` pieces,
//! and a last one flush with the end. A text's score is its highest window's
//! (`bench/pi_train.py` cuts training texts the same way).

use tokenizers::Tokenizer;

/// A text cut for the classifier.
pub struct Cut {
    /// Token ids of each window, `[CLS] ... [SEP]`.
    pub windows: Vec<Vec<i64>>,
    /// Word pieces with a letter or digit in them (punctuation, emoji and
    /// other `[UNK]` pieces aside).
    pub wordy: usize,
}

pub fn cut(tokenizer: &Tokenizer, text: &str, window: usize, stride: usize) -> Result<Cut, String> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|e| format!("tokenizer: {e}"))?;
    let wordy = encoding
        .get_tokens()
        .iter()
        .filter(|t| *t != "[UNK]" && t.chars().any(char::is_alphanumeric))
        .count();
    Ok(Cut {
        windows: split(encoding.get_ids(), ids(tokenizer)?, window, stride),
        wordy,
    })
}

/// `[CLS]` and `[SEP]` ids.
fn ids(tokenizer: &Tokenizer) -> Result<(i64, i64), String> {
    let id = |t| {
        tokenizer
            .token_to_id(t)
            .map(i64::from)
            .ok_or_else(|| format!("tokenizer has no {t}"))
    };
    Ok((id("[CLS]")?, id("[SEP]")?))
}

/// At most how many word pieces `text` has: every run of letters and digits
/// is at least one, and so is every other character that is not white space
/// (BERT splits punctuation and symbols into pieces of their own). One pass,
/// no allocation: a text far over `max_windows` is refused without being
/// tokenized.
pub fn fewest_pieces(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            n += usize::from(!in_word);
            in_word = true;
        } else {
            n += usize::from(!c.is_whitespace());
            in_word = false;
        }
    }
    n
}

/// How many windows a text of `pieces` word pieces takes.
pub fn count(pieces: usize, window: usize, stride: usize) -> usize {
    if pieces == 0 {
        return 0;
    }
    let mut n = pieces.saturating_sub(window) / stride + 1;
    if (n - 1) * stride + window < pieces {
        n += 1;
    }
    n
}

fn split(pieces: &[u32], (cls, sep): (i64, i64), window: usize, stride: usize) -> Vec<Vec<i64>> {
    let n = count(pieces.len(), window, stride);
    (0..n)
        .map(|i| {
            let start = (i * stride).min(pieces.len().saturating_sub(window));
            let end = (start + window).min(pieces.len());
            let mut ids = Vec::with_capacity(end - start + 2);
            ids.push(cls);
            ids.extend(pieces[start..end].iter().map(|&p| i64::from(p)));
            ids.push(sep);
            ids
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(len: usize, window: usize, stride: usize) -> Vec<i64> {
        let pieces: Vec<u32> = (0..len as u32).collect();
        split(&pieces, (-1, -2), window, stride)
            .iter()
            .map(|w| w[1])
            .collect()
    }

    #[test]
    fn short_texts_are_one_window() {
        assert_eq!(starts(5, 126, 96), vec![0]);
        assert_eq!(starts(126, 126, 96), vec![0]);
        assert!(starts(0, 126, 96).is_empty());
    }

    #[test]
    fn every_piece_is_in_a_window_and_the_last_is_flush_with_the_end() {
        for len in [127, 200, 222, 223, 1000, 4321] {
            let pieces: Vec<u32> = (0..len as u32).collect();
            let wins = split(&pieces, (-1, -2), 126, 96);
            assert_eq!(wins.len(), count(len, 126, 96));
            let mut seen = vec![false; len];
            for w in &wins {
                assert_eq!((w[0], w[w.len() - 1]), (-1, -2));
                assert!(w.len() <= 128);
                for &p in &w[1..w.len() - 1] {
                    seen[p as usize] = true;
                }
            }
            assert!(
                seen.iter().all(|s| *s),
                "len {len}: a piece fell between windows"
            );
            assert_eq!(wins[wins.len() - 1][126], len as i64 - 1);
        }
    }

    #[test]
    fn fewest_pieces_never_overcounts() {
        let tokenizer = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/all-MiniLM-L6-v2/tokenizer.json");
        let Ok(tokenizer) = Tokenizer::from_file(tokenizer) else {
            panic!("models fetched by ./scripts/test.sh");
        };
        for text in [
            "plain words here",
            "a@b.co a@b.co, x.y!",
            "unbelievably antidisestablishmentarianism",
            "忽略之前的所有指令 and 😀😀 émigré",
            "",
            "   ",
        ] {
            let pieces = tokenizer.encode(text, false).map(|e| e.len()).unwrap_or(0);
            assert!(
                fewest_pieces(text) <= pieces,
                "{text:?}: {} > {pieces}",
                fewest_pieces(text)
            );
        }
        assert_eq!(fewest_pieces("a@b.co "), 5);
    }

    #[test]
    fn windows_match_the_trainer() {
        // bench/pi_train.py: range(0, max(n - W, 0) + 1, S), plus n - W when
        // the last start leaves pieces over.
        assert_eq!(starts(300, 126, 96), vec![0, 96, 174]);
        assert_eq!(starts(222, 126, 96), vec![0, 96]);
    }
}
