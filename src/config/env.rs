//! Environment overrides. Every config key has a name, derived from its path:
//! the section's prefix, then the key path, upper-cased and joined with `_`.
//! The prefixes keep the seed names (`PROXY_PORT`, `OLLAMA_URL`, `CACHE_TTL`,
//! `REDIS_HOST`, `ADMIN_TOKEN`) working as a contract. List-valued keys
//! (`SCANNERS_INPUT`) take YAML, e.g. `[{type: invisible_text}]`.

use serde_json::{Map, Value};

use super::Config;

/// Section name in `config.yaml` and the prefix of its environment names.
const SECTION_PREFIXES: &[(&str, &str)] = &[
    ("server", "PROXY"),
    ("ollama", "OLLAMA"),
    ("guard", "GUARD"),
    ("scanners", "SCANNERS"),
    ("cache", "CACHE"),
    ("redis", "REDIS"),
    ("admin", "ADMIN"),
    ("auth", "AUTH"),
];

/// One overridable key.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvKey {
    /// e.g. `REDIS_SOCKET_TIMEOUT`
    pub name: String,
    /// e.g. `["redis", "socket_timeout"]`
    pub path: Vec<String>,
    /// The default, which also tells how to read the variable.
    pub default: Value,
}

/// Every key of the config with its environment name, in file order.
pub fn keys() -> Vec<EnvKey> {
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for (section, prefix) in SECTION_PREFIXES {
        if let Some(tree) = defaults.get(section) {
            walk(tree, prefix, &mut vec![section.to_string()], &mut out);
        }
    }
    out
}

fn walk(tree: &Value, name: &str, path: &mut Vec<String>, out: &mut Vec<EnvKey>) {
    match tree {
        Value::Object(map) => {
            for (key, sub) in map {
                path.push(key.clone());
                walk(sub, &format!("{name}_{}", key.to_uppercase()), path, out);
                path.pop();
            }
        }
        leaf => out.push(EnvKey {
            name: name.to_string(),
            path: path.clone(),
            default: leaf.clone(),
        }),
    }
}

/// Reads an environment string as the kind of value the key's default is.
fn parse(raw: &str, default: &Value) -> Result<Value, String> {
    match default {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(raw.trim())
            .map(Value::Number)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        // A YAML list, or plain comma-separated words (`a:26379,b:26379`).
        Value::Array(_) => match serde_saphyr::from_str::<Value>(raw) {
            Ok(Value::String(words)) => Ok(Value::Array(
                words
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| Value::String(w.to_string()))
                    .collect(),
            )),
            Ok(v) => Ok(v),
            Err(e) => Err(format!("expected a YAML list: {e}")),
        },
        _ => Ok(Value::String(raw.to_string())),
    }
}

/// Writes every set (non-empty) variable into `tree`; returns the problems.
pub fn apply(
    tree: &mut Map<String, Value>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for key in keys() {
        let Some(raw) = lookup(&key.name).filter(|v| !v.is_empty()) else {
            continue;
        };
        match parse(&raw, &key.default) {
            Ok(value) => set(tree, &key.path, value),
            Err(e) => problems.push(format!("{} ({}): {e}", key.name, key.path.join("."))),
        }
    }
    problems
}

fn set(tree: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = tree;
    for p in parents {
        let entry = node
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(map) = entry else { return };
        node = map;
    }
    node.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn seed_names_are_derived_from_key_paths() {
        let names: Vec<String> = keys().into_iter().map(|k| k.name).collect();
        for seed in [
            "REDIS_ENABLED",
            "REDIS_HOST",
            "REDIS_PORT",
            "REDIS_DB",
            "REDIS_PASSWORD",
            "REDIS_URL",
            "REDIS_SSL",
            "REDIS_MAX_CONNECTIONS",
            "REDIS_SOCKET_CONNECT_TIMEOUT",
            "REDIS_SOCKET_TIMEOUT",
            "REDIS_KEY_PREFIX",
            "CACHE_ENABLED",
            "CACHE_BACKEND",
            "CACHE_TTL",
            "CACHE_MAX_SIZE",
            "OLLAMA_URL",
            "PROXY_HOST",
            "PROXY_PORT",
            "ADMIN_TOKEN",
            "SCANNERS_INPUT",
            "GUARD_STREAM_OVERLAP_BYTES",
        ] {
            assert!(names.iter().any(|n| n == seed), "missing {seed}");
        }
    }

    #[test]
    fn values_are_read_as_their_key_kind() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("PROXY_PORT", "9000"),
            ("REDIS_SSL", "yes"),
            ("REDIS_PASSWORD", "12345"),
            ("SCANNERS_OUTPUT", "[{type: invisible_text}]"),
            ("CACHE_TTL", ""),
            ("REDIS_SENTINEL_NODES", "s1:26379, s2:26379"),
            ("REDIS_CLUSTER_NODES", "[n1:7000, n2:7001]"),
        ]);
        let mut tree = Map::new();
        let problems = apply(&mut tree, |k| env.get(k).map(|v| v.to_string()));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tree["server"]["port"], Value::from(9000));
        assert_eq!(tree["redis"]["ssl"], Value::Bool(true));
        assert_eq!(tree["redis"]["password"], Value::from("12345"));
        assert_eq!(
            tree["scanners"]["output"][0]["type"],
            Value::from("invisible_text")
        );
        assert!(tree.get("cache").is_none(), "empty variables are ignored");
        let nodes = |v: &Value| v.as_array().map(|a| a.len());
        assert_eq!(
            tree["redis"]["sentinel"]["nodes"][1],
            Value::from("s2:26379")
        );
        assert_eq!(nodes(&tree["redis"]["sentinel"]["nodes"]), Some(2));
        assert_eq!(tree["redis"]["cluster_nodes"][0], Value::from("n1:7000"));
    }

    #[test]
    fn unreadable_values_name_the_variable_and_key() {
        let mut tree = Map::new();
        let problems = apply(&mut tree, |k| match k {
            "PROXY_PORT" => Some("eighty".into()),
            "CACHE_ENABLED" => Some("maybe".into()),
            _ => None,
        });
        assert_eq!(problems.len(), 2);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("PROXY_PORT (server.port)"))
        );
    }
}
