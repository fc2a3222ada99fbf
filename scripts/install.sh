#!/usr/bin/env bash
# Install traindyn into ./.venv (created if needed) on a fresh machine.
#   bash scripts/install.sh          # runtime dependencies
#   bash scripts/install.sh --dev    # plus test, lint and reference-library dependencies
# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB
# CUDA build, while torch==2.13.0 resolves to a CPU wheel on this project's machines.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[dev]" ;;
    --bench) extras="[dev,bench]" ;;
    *) echo "install.sh: unknown option $arg (use --dev or --bench)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
py=.venv/bin/python
"$py" -m pip install --quiet --upgrade pip
if ! "$py" -c "import torch" 2>/dev/null; then
  "$py" -m pip install --quiet "torch==2.13.0"
fi
"$py" -m pip install --quiet -e ".${extras}"
echo "traindyn installed in .venv ($("$py" -c 'import traindyn; print(traindyn.__version__)'))"
