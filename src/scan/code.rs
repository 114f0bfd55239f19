//! `code`: source code in a text: fenced blocks (```lang … ```) and, outside
//! fences, runs of lines that read as code. The language comes from the
//! fence tag or from keyword hints; `languages` limits which ones count
//! (empty: any code). Fenced blocks can be redacted.

use std::sync::OnceLock;

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Match, Mode, Scanner, builtin_regex};

/// `{type: code, languages: [python, shell]}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    /// Languages to flag (e.g. python, javascript, shell, sql); empty: all.
    pub languages: Vec<String>,
}

impl Config {
    pub fn build(&self) -> Result<Code, String> {
        let known = HINTS.iter().map(|(l, _)| *l).collect::<Vec<_>>();
        for l in &self.languages {
            if !known.contains(&l.as_str()) {
                return Err(format!(
                    "unknown language {l:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(Code {
            languages: self.languages.clone(),
        })
    }
}

/// Keyword hints per language, as regexes over one line.
const HINTS: &[(&str, &str)] = &[
    (
        "python",
        r"^\s*(def \w+\(.*\):|class \w+(\(.*\))?:|import \w+|from [\w.]+ import |elif .*:|print\(|if __name__ ==)",
    ),
    (
        "javascript",
        r"^\s*(function \w*\(|const \w+ = |let \w+ = |var \w+ = |console\.log\(|module\.exports|export (default |const |function )|=> \{|require\(['\x22])",
    ),
    (
        "typescript",
        r"^\s*(interface \w+ \{|type \w+ = |\w+: (string|number|boolean)[;,)]|export interface )",
    ),
    (
        "rust",
        r"^\s*(fn \w+(<.*>)?\(|let mut \w+|impl(<.*>)? \w+|use \w+(::\w+)+;|pub (fn|struct|enum) |#\[derive\()",
    ),
    (
        "go",
        r"^\s*(func (\(.*\) )?\w+\(|package \w+$|\w+ := |import \($|fmt\.Print)",
    ),
    (
        "java",
        r"^\s*(public (static )?(class|void|int|String) |private \w+ \w+;|System\.out\.print|@Override)",
    ),
    (
        "c",
        r"^\s*(#include <\w+(\.h)?>|int main\(|printf\(|malloc\(|std::)",
    ),
    (
        "shell",
        r"^\s*(#!/bin/(ba)?sh|sudo |apt(-get)? install|rm -rf |chmod |curl .*\| *(ba)?sh|export \w+=|echo \$)",
    ),
    (
        "sql",
        r"(?i)^\s*(select .+ from |insert into |update \w+ set |delete from |create table |drop table )",
    ),
    (
        "html",
        r"^\s*(<!doctype html>|<(html|head|body|div|script|style)[ >])",
    ),
];

fn hints() -> &'static [(&'static str, Regex)] {
    static H: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    H.get_or_init(|| {
        HINTS
            .iter()
            .map(|(l, p)| (*l, builtin_regex(&format!("(?m){p}"))))
            .collect()
    })
}

fn fences() -> &'static Regex {
    static F: OnceLock<Regex> = OnceLock::new();
    F.get_or_init(|| builtin_regex(r"(?s)```[ \t]*([\w+#-]*)[^\n]*\n(.*?)```"))
}

/// The language a piece of code reads as: the one with most hinting lines
/// (at least `min` of them).
fn guess(code: &str, min: usize) -> Option<&'static str> {
    hints()
        .iter()
        .map(|(l, r)| (*l, r.find_iter(code).count()))
        .filter(|(_, n)| *n >= min)
        .max_by_key(|(_, n)| *n)
        .map(|(l, _)| l)
}

fn canonical(tag: &str) -> Option<&'static str> {
    let t = tag.to_ascii_lowercase();
    Some(match t.as_str() {
        "py" | "python" | "python3" => "python",
        "js" | "javascript" | "jsx" | "node" => "javascript",
        "ts" | "typescript" | "tsx" => "typescript",
        "rs" | "rust" => "rust",
        "go" | "golang" => "go",
        "java" => "java",
        "c" | "cpp" | "c++" | "h" | "hpp" => "c",
        "sh" | "bash" | "shell" | "zsh" | "console" => "shell",
        "sql" | "postgresql" | "mysql" => "sql",
        "html" | "xml" => "html",
        _ => return None,
    })
}

pub struct Code {
    languages: Vec<String>,
}

impl Code {
    fn wanted(&self, lang: Option<&str>) -> bool {
        self.languages.is_empty() || lang.is_some_and(|l| self.languages.iter().any(|w| w == l))
    }
}

#[async_trait]
impl Scanner for Code {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let mut found = Vec::new();
        let mut outside = String::with_capacity(text.len());
        let mut last = 0;
        for caps in fences().captures_iter(text) {
            let (Some(all), Some(tag), Some(body)) = (caps.get(0), caps.get(1), caps.get(2)) else {
                continue;
            };
            outside.push_str(&text[last..all.start()]);
            last = all.end();
            let lang = canonical(tag.as_str()).or_else(|| guess(body.as_str(), 1));
            if self.wanted(lang) {
                found.push(Match {
                    span: Some(all.range()),
                    score: 1.0,
                    reason: format!("{} code block", lang.unwrap_or("unknown")),
                    placeholder: "[CODE_REMOVED]".into(),
                    part: None,
                    report_only: false,
                });
            }
        }
        outside.push_str(&text[last..]);
        if let Some(lang) = guess(&outside, 3).filter(|l| self.wanted(Some(l))) {
            found.push(Match::judgement(
                0.8,
                format!("{lang} code outside a code block"),
            ));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reasons(languages: &[&str], text: &str) -> Vec<String> {
        let c = Config {
            languages: languages.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
        .build()
        .expect("config");
        crate::scan::reasons(&c, text).await
    }

    #[tokio::test]
    async fn fenced_and_bare_code_is_found_with_its_language() {
        assert_eq!(
            reasons(&[], "see:\n```python\nprint('x')\n```\n").await,
            vec!["python code block"]
        );
        assert_eq!(
            reasons(&[], "```\nfn main() {\n    let mut x = 1;\n}\n```").await,
            vec!["rust code block"]
        );
        let bare = "import os\nimport sys\ndef main():\n    print(os.getcwd())\n";
        assert_eq!(
            reasons(&[], bare).await,
            vec!["python code outside a code block"]
        );
    }

    #[tokio::test]
    async fn only_listed_languages_count_and_prose_passes() {
        assert!(
            reasons(&["shell"], "```python\nprint(1)\n```")
                .await
                .is_empty()
        );
        assert_eq!(
            reasons(&["shell"], "```bash\nsudo rm -rf /\n```").await,
            vec!["shell code block"]
        );
        assert!(
            reasons(
                &[],
                "Let me explain how the import process works; from here we define the plan."
            )
            .await
            .is_empty()
        );
    }

    #[tokio::test]
    async fn fenced_blocks_can_be_redacted() {
        let c = Config::default().build().expect("config");
        let text = "before\n```js\nconsole.log(1)\n```\nafter";
        let m = &c.scan(text).await.expect("scan")[0];
        assert_eq!(
            &text[m.span.clone().expect("span")],
            "```js\nconsole.log(1)\n```"
        );
    }

    #[test]
    fn unknown_languages_are_config_errors() {
        assert!(
            Config {
                languages: vec!["cobol".into()],
                ..Config::default()
            }
            .build()
            .is_err()
        );
    }
}
