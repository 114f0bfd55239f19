//! The README is a contract: its config reference names every key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ollama_guard::config::env;

#[test]
fn readme_config_reference_lists_every_key_and_env_name() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for key in env::keys() {
        let row = format!("| `{}` | `{}` |", key.path.join("."), key.name);
        assert!(
            readme.contains(&row),
            "README.md is missing the config row starting {row}"
        );
    }
}

#[test]
fn readme_starts_with_the_two_setup_commands() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let head: String = readme.lines().take(30).collect::<Vec<_>>().join("\n");
    assert!(head.contains("./run_proxy.sh run"), "{head}");
    assert!(head.contains("./scripts/test.sh"), "{head}");
}
