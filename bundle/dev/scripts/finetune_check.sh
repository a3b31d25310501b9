#!/usr/bin/env bash
# The local-adaptation measurement of docs/finetune.md: the shipped weights fine-tuned (python -m bundle finetune,
# defaults) on the MSLesSeg scans of P14 (3 time points) and P18, and the left-out MSLesSeg patient P39 scored before
# and after with python -m bundle evaluate (the same site: one centre's scans). From the bundle root, with ../shared:
#   bash bundle/dev/scripts/finetune_check.sh [OUT_DIR]   (default runs/finetune_check; about 15 minutes on 2 cores)
set -euo pipefail
out="${1:-runs/finetune_check}"
py=.venv/bin/python
data="$(cd ../shared/data/mslesseg && pwd)"
mkdir -p "$out"
cat > "$out/site.json" <<JSON
{"training": [
  {"image": "$data/P14_T1_flair.nii.gz", "label": "$data/P14_T1_mask.nii.gz"},
  {"image": "$data/P14_T2_flair.nii.gz", "label": "$data/P14_T2_mask.nii.gz"},
  {"image": "$data/P14_T3_flair.nii.gz", "label": "$data/P14_T3_mask.nii.gz"},
  {"image": "$data/P18_T1_flair.nii.gz", "label": "$data/P18_T1_mask.nii.gz"}],
 "testing": [{"image": "$data/P39_T1_flair.nii.gz", "label": "$data/P39_T1_mask.nii.gz"}]}
JSON
[ -f "$out/before/metrics.json" ] || $py -m bundle evaluate --datalist "$out/site.json" --output_dir "$out/before"
[ -f "$out/tuned/model.pt" ] || $py -m bundle finetune --datalist "$out/site.json" --output_dir "$out/tuned"
[ -f "$out/after/metrics.json" ] || $py -m bundle evaluate --datalist "$out/site.json" --output_dir "$out/after" \
    --ckpt "$out/tuned/model.pt"
$py - "$out" <<'PY'
import json, sys
for name in ("before", "after"):
    mean = json.load(open(f"{sys.argv[1]}/{name}/metrics.json"))["mean"]
    print(name, {k: mean[k] for k in ("dice", "lesion_f1", "avd_ml") if k in mean})
PY
