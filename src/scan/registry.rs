//! The registry: every scanner type, one line each. `{type: NAME, ...}` in
//! `scanners.input[]` / `scanners.output[]` deserialises into [`ScannerSpec`],
//! and [`ScannerSpec::build`] turns it into a configured scanner.
//!
//! Adding a scanner: one file in `src/scan/`, one variant and one match arm here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::classifier::Setup;
use super::pipeline::{Configured, Pipeline};
use super::{
    Mode, Scanner, ban_substrings, code, delay, guard_model, invisible_text, language, no_refusal,
    pii, prompt_injection, regex, secrets, token_limit, toxicity, urls,
};

/// One entry of `scanners.input[]` or `scanners.output[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScannerSpec {
    BanSubstrings(ban_substrings::Config),
    Regex(regex::Config),
    InvisibleText(invisible_text::Config),
    Delay(delay::Config),
    PromptInjection(prompt_injection::Config),
    Secrets(secrets::Config),
    Pii(pii::Config),
    Toxicity(toxicity::Config),
    TokenLimit(token_limit::Config),
    Language(language::Config),
    Code(code::Config),
    Urls(urls::Config),
    NoRefusal(no_refusal::Config),
    GuardModel(guard_model::Config),
}

/// What scanners may need from the rest of the configuration.
#[derive(Clone, Debug)]
pub struct Resources {
    /// Where model-running scanners find their files.
    pub models: Setup,
    /// Ollama's base URL (`ollama.url`): guard models are served there
    /// unless their entry names another.
    pub ollama_url: String,
}

/// What every scanner config shares, read off whichever variant it is.
struct Common<'a> {
    kind: &'static str,
    name: &'a Option<String>,
    mode: Mode,
    threshold: f32,
}

impl ScannerSpec {
    fn common(&self) -> Common<'_> {
        /// Scanners whose matches all score 1.0 use this.
        const CERTAIN: f32 = 0.5;
        let (kind, name, mode, threshold) = match self {
            Self::BanSubstrings(c) => ("ban_substrings", &c.name, c.mode, CERTAIN),
            Self::Regex(c) => ("regex", &c.name, c.mode, CERTAIN),
            Self::InvisibleText(c) => ("invisible_text", &c.name, c.mode, CERTAIN),
            Self::Delay(c) => ("delay", &c.name, c.mode, CERTAIN),
            Self::PromptInjection(c) => ("prompt_injection", &c.name, c.mode, c.threshold),
            Self::Secrets(c) => ("secrets", &c.name, c.mode, CERTAIN),
            Self::Pii(c) => ("pii", &c.name, c.mode, CERTAIN),
            Self::Toxicity(c) => ("toxicity", &c.name, c.mode, c.threshold),
            Self::TokenLimit(c) => ("token_limit", &c.name, c.mode, CERTAIN),
            Self::Language(c) => (
                "language",
                &c.name,
                c.mode,
                CERTAIN.min(c.min_confidence as f32),
            ),
            Self::Code(c) => ("code", &c.name, c.mode, CERTAIN),
            Self::Urls(c) => ("urls", &c.name, c.mode, CERTAIN),
            Self::NoRefusal(c) => ("no_refusal", &c.name, c.mode, CERTAIN),
            Self::GuardModel(c) => ("guard_model", &c.name, c.mode, c.threshold),
        };
        Common {
            kind,
            name,
            mode,
            threshold,
        }
    }

    /// The scanner's type name, as written in config.
    pub fn kind(&self) -> &'static str {
        self.common().kind
    }

    /// Builds the scanner, or says what is wrong with its options.
    pub fn build(&self, res: &Resources) -> Result<Configured, String> {
        let scanner: Arc<dyn Scanner> = match self {
            Self::BanSubstrings(c) => Arc::new(c.build()?),
            Self::Regex(c) => Arc::new(c.build()?),
            Self::InvisibleText(c) => Arc::new(c.build()?),
            Self::Delay(c) => Arc::new(c.build()?),
            Self::PromptInjection(c) => Arc::new(c.build(&res.models)?),
            Self::Secrets(c) => Arc::new(c.build()?),
            Self::Pii(c) => Arc::new(c.build()?),
            Self::Toxicity(c) => Arc::new(c.build()?),
            Self::TokenLimit(c) => Arc::new(c.build()?),
            Self::Language(c) => Arc::new(c.build()?),
            Self::Code(c) => Arc::new(c.build()?),
            Self::Urls(c) => Arc::new(c.build()?),
            Self::NoRefusal(c) => Arc::new(c.build()?),
            Self::GuardModel(c) => Arc::new(c.build(&res.ollama_url)?),
        };
        let common = self.common();
        if common.mode == Mode::Redact && !scanner.can_redact() {
            return Err(format!(
                "{} cannot redact: use mode block or report",
                common.kind
            ));
        }
        Ok(Configured {
            name: common
                .name
                .clone()
                .unwrap_or_else(|| common.kind.to_string()),
            mode: common.mode,
            threshold: common.threshold,
            scanner,
        })
    }
}

/// Builds a pipeline from a list of specs; each problem is reported with the
/// index of the entry (`scanners.input[2]: ...`).
pub fn build_pipeline(
    list: &str,
    specs: &[ScannerSpec],
    res: &Resources,
) -> Result<Pipeline, Vec<String>> {
    let mut built = Vec::with_capacity(specs.len());
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match spec.build(res) {
            Ok(c) => built.push(c),
            Err(e) => problems.push(format!("{list}[{i}] ({}): {e}", spec.kind())),
        }
    }
    if problems.is_empty() {
        Ok(Pipeline::new(built))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Resources {
        Resources {
            models: Setup::new("models", 0),
            ollama_url: "http://127.0.0.1:11434".into(),
        }
    }

    fn parse(yaml: &str) -> ScannerSpec {
        serde_saphyr::from_str(yaml).expect("valid scanner yaml")
    }

    #[test]
    fn yaml_entries_become_named_scanners() {
        let spec = parse("type: ban_substrings\nsubstrings: [x]\nname: words\nmode: report\n");
        let built = spec.build(&models()).expect("builds");
        assert_eq!(built.name, "words");
        assert_eq!(built.mode, Mode::Report);
        let default_name = parse("type: invisible_text\n")
            .build(&models())
            .expect("builds");
        assert_eq!(default_name.name, "invisible_text");
    }

    #[test]
    fn unknown_types_and_options_are_rejected() {
        assert!(serde_saphyr::from_str::<ScannerSpec>("type: nope\n").is_err());
        assert!(serde_saphyr::from_str::<ScannerSpec>("type: regex\npaterns: [x]\n").is_err());
    }

    #[test]
    fn every_bad_entry_is_reported_with_its_index() {
        let specs = vec![
            parse("type: regex\npatterns: ['(']\n"),
            parse("type: invisible_text\n"),
            parse("type: ban_substrings\nsubstrings: []\n"),
        ];
        let problems = build_pipeline("scanners.input", &specs, &models())
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("scanners.input[0] (regex)"));
        assert!(problems[1].starts_with("scanners.input[2] (ban_substrings)"));
    }
}
