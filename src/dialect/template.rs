//! `template` on `/api/generate` is a Go `text/template`, not text: actions
//! can build words that appear nowhere in the body (`{{"\x66oo"}}`), hide
//! text in comments, or join fields. When `guard.allow_templates` is on, the
//! guard accepts only literal text and field references (`{{ .Prompt }}`,
//! with Go's `{{-`/`-}}` trim markers), and scans the text the template
//! renders: literal text and field values, joined as Ollama will join them.

/// The fields a template may reference, as Ollama names them, and the body
/// field each one prints. `.Response` is empty while the prompt is rendered.
const FIELDS: &[(&str, Option<&str>)] = &[
    ("System", Some("system")),
    ("Prompt", Some("prompt")),
    ("Suffix", Some("suffix")),
    ("Response", None),
];

#[derive(Debug, PartialEq)]
enum Part<'a> {
    Text(&'a str),
    /// The body field printed here (`None` prints nothing).
    Field(Option<&'static str>),
}

/// Checks `template`; the error names the first action that is not a plain
/// field reference.
pub fn validate(template: &str) -> Result<(), String> {
    parse(template).map(|_| ())
}

/// The text `template` renders with `field` giving each body field's value.
pub fn render<'a>(template: &str, field: impl Fn(&str) -> &'a str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for part in parse(template)? {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Field(Some(name)) => out.push_str(field(name)),
            Part::Field(None) => {}
        }
    }
    Ok(out)
}

/// The literal text of any Go template, actions and comments cut out and
/// the pieces joined (for model templates on `/api/create`, which may use
/// every action: what they say in plain text is still scanned whole).
pub fn literal_text(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        match rest[open + 2..].find("}}") {
            Some(close) => rest = &rest[open + 2 + close + 2..],
            None => return out + &rest[open..],
        }
    }
    out + rest
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let inner_start = open + 2;
        let close = rest[inner_start..]
            .find("}}")
            .ok_or("template: `{{` without a closing `}}`")?;
        let mut action = &rest[inner_start..inner_start + close];
        // Go's trim markers: "{{- " and " -}}" (the space is required).
        if let Some(a) = action.strip_prefix('-').filter(|a| a.starts_with(is_space)) {
            text = text.trim_end_matches(is_space);
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-').filter(|a| a.ends_with(is_space)) {
            trim_next = true;
            action = a;
        }
        parts.push(Part::Text(text));
        parts.push(Part::Field(field_reference(action.trim_matches(is_space))?));
        rest = &rest[inner_start + close + 2..];
    }
    if trim_next {
        rest = rest.trim_start_matches(is_space);
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

fn field_reference(action: &str) -> Result<Option<&'static str>, String> {
    let name = action.strip_prefix('.').unwrap_or("");
    FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, field)| *field)
        .ok_or_else(|| {
            let shown: String = action.chars().take(40).collect();
            format!(
                "template action `{{{{{shown}}}}}` is not allowed: only {} may appear between {{{{ }}}}",
                FIELDS
                    .iter()
                    .map(|(n, _)| format!("`.{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(t: &str) -> Result<String, String> {
        render(t, |f| match f {
            "system" => "SYS",
            "prompt" => "PROMPT",
            _ => "",
        })
    }

    #[test]
    fn literal_text_and_field_references_render() {
        assert_eq!(
            rendered("<s>{{ .System }}\n{{.Prompt}}{{ .Response }}</s>").as_deref(),
            Ok("<s>SYS\nPROMPT</s>")
        );
        assert_eq!(
            rendered("a  \n{{- .System -}}\n  b").as_deref(),
            Ok("aSYSb")
        );
        assert_eq!(rendered("no actions").as_deref(), Ok("no actions"));
    }

    #[test]
    fn literal_text_cuts_every_action() {
        assert_eq!(
            literal_text("forbidden{{/* x */}}word{{ if .System }} ok{{ end }}"),
            "forbiddenword ok"
        );
        assert_eq!(literal_text("a {{ b"), "a {{ b");
    }

    #[test]
    fn every_other_action_is_refused() {
        for t in [
            "forbidden{{/* */}}word",
            r#"{{"\x66orbiddenword"}}"#,
            "{{ if .System }}x{{ end }}",
            "{{ .Messages }}",
            "{{ printf \"%s\" .Prompt }}",
            "{{-3}}",
            "{{ .Prompt ",
            "{{ .prompt }}",
        ] {
            assert!(rendered(t).is_err(), "{t}");
        }
    }
}
