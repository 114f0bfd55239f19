//! The deployment files keep their promises: compose services, healthchecks,
//! the environment contract (every variable is one the proxy reads, and
//! together they form a valid config), Redis settings, a non-root image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;

use ollama_guard::config::{env, load_from};
use serde_json::Value;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn compose(name: &str) -> Value {
    serde_saphyr::from_str(&read(name)).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

/// `${VAR:-default}` → `default`, as compose resolves it with VAR unset.
fn resolve(value: &str) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(inner) => inner.split_once(":-").map_or("", |(_, d)| d).to_string(),
        None => value.to_string(),
    }
}

fn environment(service: &Value) -> HashMap<String, String> {
    service["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), resolve(v.as_str().unwrap_or(&v.to_string()))))
        .collect()
}

/// The services `up` starts with no `--profile` given.
fn services(file: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = file["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.get("profiles").is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    names.sort();
    names
}

fn check_redis(file: &str, redis: &Value) {
    assert!(
        redis["image"]
            .as_str()
            .unwrap()
            .starts_with("redis:7-alpine"),
        "{file}"
    );
    let volumes: Vec<&str> = redis["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        volumes.contains(&"./redis.conf:/usr/local/etc/redis/redis.conf:ro"),
        "{file}: {volumes:?}"
    );
    assert!(
        redis["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.as_str().unwrap().starts_with("127.0.0.1:")),
        "{file}"
    );
    assert_eq!(
        redis["healthcheck"]["test"],
        serde_json::json!(["CMD", "redis-cli", "ping"]),
        "{file}"
    );
}

fn check_guard(file: &str, guard: &Value) -> HashMap<String, String> {
    let env_vars = environment(guard);
    let known: Vec<String> = env::keys().into_iter().map(|k| k.name).collect();
    for name in env_vars.keys().filter(|k| *k != "RUST_LOG") {
        assert!(
            known.contains(name),
            "{file}: {name} is not a variable ollama-guard reads"
        );
    }
    for seed in [
        "OLLAMA_URL",
        "PROXY_PORT",
        "CACHE_BACKEND",
        "CACHE_TTL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
    ] {
        assert!(env_vars.contains_key(seed), "{file}: missing {seed}");
    }
    load_from("", |k| env_vars.get(k).cloned())
        .unwrap_or_else(|e| panic!("{file}: its environment is not a valid config: {e}"));
    assert_eq!(
        guard["depends_on"]["redis"]["condition"], "service_healthy",
        "{file}"
    );
    assert_eq!(
        guard["healthcheck"]["test"][1], "/usr/local/bin/ollama-guard",
        "{file}"
    );
    assert_eq!(guard["healthcheck"]["test"][2], "--healthcheck", "{file}");
    env_vars
}

#[test]
fn docker_compose_is_a_complete_guarded_stack() {
    let file = compose("docker-compose.yml");
    assert_eq!(services(&file), vec!["ollama", "ollama-guard", "redis"]);
    let s = &file["services"];
    check_redis("docker-compose.yml", &s["redis"]);
    let env_vars = check_guard("docker-compose.yml", &s["ollama-guard"]);
    assert_eq!(env_vars["OLLAMA_URL"], "http://ollama:11434");
    assert_eq!(env_vars["REDIS_HOST"], "redis");
    assert!(
        s["ollama"]["image"]
            .as_str()
            .unwrap()
            .starts_with("ollama/ollama")
    );
    assert!(s["ollama"]["healthcheck"]["test"].is_array());
    assert_eq!(s["ollama-guard"]["ports"][0], "8080:8080");
}

#[test]
fn macos_compose_targets_arm64_with_ollama_on_the_host() {
    let file = compose("docker-compose-macos.yml");
    assert_eq!(services(&file), vec!["ollama-guard", "redis"]);
    let s = &file["services"];
    check_redis("docker-compose-macos.yml", &s["redis"]);
    let env_vars = check_guard("docker-compose-macos.yml", &s["ollama-guard"]);
    assert_eq!(env_vars["OLLAMA_URL"], "http://host.docker.internal:11434");
    for name in ["redis", "ollama-guard"] {
        assert_eq!(s[name]["platform"], "linux/arm64/v8", "{name}");
        assert!(
            s[name]["deploy"]["resources"]["limits"]["memory"].is_string(),
            "{name} has a memory limit"
        );
    }
}

#[test]
fn redis_compose_is_redis_with_a_web_ui() {
    let file = compose("docker-compose-redis.yml");
    assert_eq!(services(&file), vec!["redis", "redisinsight"]);
    check_redis("docker-compose-redis.yml", &file["services"]["redis"]);
    assert!(file["services"]["redisinsight"]["healthcheck"]["test"].is_array());
}

#[test]
fn redis_conf_has_production_cache_settings() {
    let conf = read("redis.conf");
    let settings: HashMap<&str, &str> = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim().split_once(' '))
        .collect();
    assert_eq!(settings["maxmemory-policy"], "allkeys-lru");
    assert_eq!(settings["appendonly"], "yes");
    assert_eq!(settings["maxmemory"], "256mb");
    assert_eq!(settings["protected-mode"], "yes");
}

#[test]
fn dockerfile_builds_in_stages_and_runs_as_non_root_with_a_healthcheck() {
    let file = read("Dockerfile");
    assert_eq!(
        file.lines().filter(|l| l.starts_with("FROM ")).count(),
        3,
        "models, build and run stages"
    );
    // The model files are baked in, where the binary is told to look.
    assert!(file.contains("./scripts/fetch-models.sh"), "{file}");
    assert!(file.contains("COPY --from=models /models /usr/share/ollama-guard/models"));
    assert!(file.contains("GUARD_MODELS_DIR=/usr/share/ollama-guard/models"));
    let user = file
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    let who = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .unwrap_or("");
    assert!(!matches!(who, "root" | "0" | ""), "{user}");
    assert!(file.contains("HEALTHCHECK") && file.contains("--healthcheck"));
}

/// Every file the source compiles in (`include_str!`, `include_bytes!`) is
/// copied into the build stage, or `docker build` fails.
#[test]
fn dockerfile_copies_every_file_the_build_compiles_in() {
    let file = read("Dockerfile");
    let copied: Vec<&str> = file
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut included = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for part in text.split("include_").skip(1) {
                let Some(rest) = part
                    .strip_prefix("str!(\"")
                    .or_else(|| part.strip_prefix("bytes!(\""))
                else {
                    continue;
                };
                let target = dir.join(rest.split('"').next().unwrap_or_default());
                let target = target.canonicalize().unwrap();
                included.push(target.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    assert!(included.len() >= 3, "{included:?}");
    for path in included {
        assert!(
            copied.iter().any(|c| path.starts_with(c)),
            "{} is compiled in but not copied by the Dockerfile",
            path.display()
        );
    }
}
