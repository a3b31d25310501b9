#!/usr/bin/env bash
# Create ./.venv-deploy (at the bundle root) with the MONAI Deploy App SDK and the bundle's runtime packages.
# The SDK lives in its own environment: it pins Holoscan builds that the bundle's main environment does not need.
# TORCH_SPEC picks the torch build as in .ci/setup (default torch==2.13.0: the CPU wheel on this project's machines).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-deploy
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import monai.deploy, highdicom, torch, deepbet" 2>/dev/null; then
  exit 0
fi
bash bundle/venv_with_torch.sh "$VENV"
"$VENV/bin/python" -m pip install --quiet -r bundle/deploy/requirements.txt
"$VENV/bin/python" -c "import monai.deploy, highdicom; print('monai-deploy-app-sdk', monai.deploy.__version__)"
