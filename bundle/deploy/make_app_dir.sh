#!/usr/bin/env bash
# Assemble the application folder that `monai-deploy package` turns into a container image (see docs/deploy.md):
#   OUT_DIR/__main__.py, bundle/, configs/, models/model.ts, app.yaml, requirements.txt
# The folder runs as it will in the container: `python OUT_DIR -i DICOM_DIR -o OUTPUT_DIR`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:?usage: bash bundle/deploy/make_app_dir.sh OUT_DIR}"
rm -rf "$OUT"
mkdir -p "$OUT/models"
cp -r "$ROOT/bundle" "$ROOT/configs" "$OUT/"
cp "$ROOT/models/model.ts" "$OUT/models/"
cp "$ROOT/bundle/deploy/app.yaml" "$ROOT/bundle/deploy/requirements.txt" "$OUT/"
printf 'from bundle.deploy.__main__ import main\n\nmain()\n' > "$OUT/__main__.py"
find "$OUT" -name __pycache__ -prune -exec rm -rf {} +
echo "$OUT"
