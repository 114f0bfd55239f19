#!/usr/bin/env bash
# Trains the prompt_injection classifier head (bench/pi_train.py) on the train
# split of bench/pi_data.py, picks its threshold on validation, and writes
# data/prompt_injection_head.json. The test split is never read here; report
# it once with bench/eval.sh. About 10 minutes on 2 cores (embedding).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${EVAL_DIR:-target/eval}
EVAL_DIR=$work bash bench/eval_fetch.sh
"$work/venv/bin/python" bench/pi_train.py "$work/data" "${GUARD_MODELS_DIR:-models}" \
  "$work/src/jailguard/jailguard-0.1.2/models/neural_binary_200k.json" data/prompt_injection_head.json
