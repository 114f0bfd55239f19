//! Reading the config: the YAML file (if any) into a tree, environment
//! overrides onto the tree, then each section into its typed struct. Each
//! section and each scanner entry is read on its own so that one run reports
//! every broken part, not just the first.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Config, env};
use crate::scan::ScannerSpec;

/// Every problem found in the config, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Where the config comes from: `--config`, else `CONFIG_FILE`, else
/// `./config.yaml` when it exists, else the built-in defaults.
pub fn load(cli_path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let from_env = std::env::var_os("CONFIG_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let explicit = cli_path.map(Path::to_path_buf).or(from_env);
    let path = match explicit {
        Some(p) => Some(p),
        None => Some(PathBuf::from("config.yaml")).filter(|p| p.exists()),
    };
    let text = match &path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            ConfigError(vec![format!(
                "cannot read config file {}: {e}",
                p.display()
            )])
        })?,
        None => String::new(),
    };
    let config = load_from(&text, |k| std::env::var(k).ok())?;
    Ok((config, path))
}

/// The config without validating it (scanners are not built, so no model is
/// loaded): for `--healthcheck`, which needs only where the server listens.
/// Unreadable parts keep their defaults.
pub fn load_unchecked(cli_path: Option<&Path>) -> Config {
    let path = cli_path.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("config.yaml")).filter(|p| p.exists()))
    });
    let text = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut tree = parse_tree(&text).unwrap_or_default();
    let mut problems = env::apply(&mut tree, |k| std::env::var(k).ok());
    typed(tree, &mut problems)
}

/// Builds and validates a config from YAML text and an environment lookup.
pub fn load_from(
    yaml: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut tree = parse_tree(yaml).map_err(|e| ConfigError(vec![e]))?;
    let mut problems = env::apply(&mut tree, lookup);
    let config = typed(tree, &mut problems);
    problems.extend(config.validate());
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError(problems))
    }
}

fn parse_tree(yaml: &str) -> Result<Map<String, Value>, String> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_saphyr::from_str::<Value>(yaml) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err("config file must be a mapping of sections (server, ollama, ...)".into()),
        Err(e) => Err(format!("config file is not valid YAML: {e}")),
    }
}

/// Reads one section, naming the exact key of a problem (`server.port: ...`).
fn section<T: DeserializeOwned + Default>(
    name: &str,
    tree: &mut Map<String, Value>,
    problems: &mut Vec<String>,
) -> T {
    let Some(value) = tree.remove(name) else {
        return T::default();
    };
    let value = if value.is_null() {
        Value::Object(Map::new())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).unwrap_or_else(|e| {
        let at = e.path().to_string();
        let key = if at == "." {
            name.to_string()
        } else {
            format!("{name}.{at}")
        };
        problems.push(format!("{key}: {}", e.inner()));
        T::default()
    })
}

/// Reads `scanners.input` / `scanners.output` entry by entry.
fn scanner_list(
    list: &str,
    value: Option<Value>,
    res: &crate::scan::registry::Resources,
    problems: &mut Vec<String>,
) -> Option<Vec<ScannerSpec>> {
    let items = match value? {
        Value::Array(items) => items,
        Value::Null => return Some(Vec::new()),
        _ => {
            problems.push(format!(
                "scanners.{list}: must be a list of {{type: NAME, ...}} entries"
            ));
            return None;
        }
    };
    let mut specs = Vec::with_capacity(items.len());
    let mut unreadable = false;
    for (i, item) in items.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, ScannerSpec>(item) {
            Ok(spec) => specs.push((i, spec)),
            Err(e) => {
                problems.push(format!("scanners.{list}[{i}]: {}", e.inner()));
                unreadable = true;
            }
        }
    }
    if unreadable {
        // `validate()` would number the readable entries from 0; check them
        // here with their place in the file, and keep the default list.
        for (i, spec) in &specs {
            if let Err(e) = spec.build(res) {
                problems.push(format!("scanners.{list}[{i}] ({}): {e}", spec.kind()));
            }
        }
        return None;
    }
    Some(specs.into_iter().map(|(_, s)| s).collect())
}

fn typed(mut tree: Map<String, Value>, problems: &mut Vec<String>) -> Config {
    let mut config = Config {
        server: section("server", &mut tree, problems),
        ollama: section("ollama", &mut tree, problems),
        guard: section("guard", &mut tree, problems),
        cache: section("cache", &mut tree, problems),
        redis: section("redis", &mut tree, problems),
        admin: section("admin", &mut tree, problems),
        auth: section("auth", &mut tree, problems),
        ..Config::default()
    };
    if let Some(scanners) = tree.remove("scanners") {
        match scanners {
            Value::Object(mut lists) => {
                if let Some(input) = scanner_list(
                    "input",
                    lists.remove("input"),
                    &config.scanner_resources(),
                    problems,
                ) {
                    config.scanners.input = input;
                }
                if let Some(output) = scanner_list(
                    "output",
                    lists.remove("output"),
                    &config.scanner_resources(),
                    problems,
                ) {
                    config.scanners.output = output;
                }
                problems.extend(
                    lists
                        .keys()
                        .map(|k| format!("scanners.{k}: unknown key (expected input, output)")),
                );
            }
            Value::Null => {}
            _ => problems.push("scanners: must be a mapping with input and output lists".into()),
        }
    }
    problems.extend(tree.keys().map(|k| {
        format!(
            "{k}: unknown section (expected server, ollama, guard, scanners, cache, redis, admin, auth)"
        )
    }));
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CacheBackend;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_yaml_gives_defaults() {
        let config = load_from("", no_env).expect("defaults are valid");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn env_wins_over_yaml() {
        let yaml = "server:\n  port: 9001\ncache:\n  backend: memory\n";
        let config =
            load_from(yaml, |k| (k == "PROXY_PORT").then(|| "9002".into())).expect("valid");
        assert_eq!(config.server.port, 9002);
        assert_eq!(config.cache.backend, CacheBackend::Memory);
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let yaml = "server:\n  port: high\nollama:\n  ur: x\nredis:\n  port: 0\nextra: 1\nscanners:\n  input:\n    - type: nope\n    - type: regex\n      patterns: ['(']\n";
        let err =
            load_from(yaml, |k| (k == "CACHE_TTL").then(|| "soon".into())).expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "server.port:",
            "ollama.ur:",
            "unknown field `ur`",
            "extra: unknown section",
            "scanners.input[0]:",
            "scanners.input[1] (regex)",
            "CACHE_TTL (cache.ttl)",
            "redis.port",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn non_mapping_files_are_rejected_clearly() {
        let err = load_from("- a\n- b\n", no_env).expect_err("invalid");
        assert!(err.to_string().contains("must be a mapping"));
        let err = load_from("server: [", no_env).expect_err("invalid");
        assert!(err.to_string().contains("not valid YAML"));
    }
}

#[cfg(test)]
mod retired_keys {
    use super::load_from;

    #[test]
    fn a_config_with_the_retired_scan_interval_still_loads() {
        let yaml = "guard:\n  stream:\n    scan_interval_bytes: 32\n    overlap_bytes: 128\n";
        let config = load_from(yaml, |_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.guard.stream.scan_interval_bytes, Some(32));
        assert_eq!(config.guard.stream.overlap_bytes, 128);
    }
}
