#!/usr/bin/env bash
# Create the virtual environment VENV_DIR (if missing) with an up-to-date pip and the chosen torch build.
# TORCH_SPEC picks the build as in .ci/setup (default torch==2.13.0: the CPU wheel on this project's machines, the
# CUDA build from PyPI on an ordinary Linux GPU machine). Used by bundle/deploy/setup.sh and bundle/label/setup.sh.
set -euo pipefail
VENV="${1:?usage: bash bundle/venv_with_torch.sh VENV_DIR}"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet ${TORCH_SPEC:-torch==2.13.0}
