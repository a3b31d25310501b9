"""Failure AUROC and review flags of two case scores, recomputed from saved ``evaluate`` outputs (stage 18).

    python docs/analysis/review_score_from_outputs.py runs/stage17/val runs/stage17/test ...

Each folder holds an ``evaluate`` run: metrics.json (the per-case Dice) and each case's ``_prob``, ``_seg`` and
``_uncertainty`` NIfTI. Scores, both from those maps:

* sigma score (versions 0.6.0-0.9.0): mean uncertainty over voxels with p > 0.1; flag when > 0.2;
* estimated-Dice score (since 0.10.0): 1 - ``bundle.report.estimated_dice`` of the saved mask; flag when > 0.4.

Prints one line per case, the pooled AUROC of each score for Dice < 0.5, what each flag catches, and the AUROC
within every folder that holds both failures and successes.
"""

import json
import sys

import nibabel as nib
import numpy as np
import torch
from monai.metrics import compute_roc_auc

from bundle.evaluate import FAILURE_DICE
from bundle.report import case_uncertainty_score


def load(path: str) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj, dtype=np.float64)


def case_scores(folder: str) -> list[dict]:
    rows = []
    with open(f"{folder}/metrics.json") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        stem = f"{folder}/{case['id']}"
        p, u, seg = load(f"{stem}_prob.nii.gz"), load(f"{stem}_uncertainty.nii.gz"), load(f"{stem}_seg.nii.gz")
        sigma = float(u[p > 0.1].mean()) if (p > 0.1).any() else 0.0
        rows.append({"folder": folder, "id": case["id"], "dice": case["dice"], "sigma": sigma,
                     "estimated": case_uncertainty_score(p, seg)})
    return rows


def report(rows: list[dict]) -> None:
    failed = torch.tensor([r["dice"] < FAILURE_DICE for r in rows])
    line = f"{len(rows)} cases, {int(failed.sum())} failures"
    for name, threshold in (("sigma", 0.2), ("estimated", 0.4)):
        score = torch.tensor([r[name] for r in rows])
        flag = score > threshold
        auroc = compute_roc_auc(score, failed.float()) if 0 < failed.sum() < len(rows) else float("nan")
        line += (f"; {name}: AUROC {auroc:.3f}, flags {int((flag & failed).sum())}/{int(failed.sum())} failures "
                 f"and {int((flag & ~failed).sum())}/{int((~failed).sum())} successes")
    print(line)


rows = [row for folder in sys.argv[1:] for row in case_scores(folder)]
for r in rows:
    print(f"{r['folder']:28s} {r['id'][:40]:40s} Dice {r['dice']:.3f}  sigma score {r['sigma']:.3f}  "
          f"estimated Dice {1 - r['estimated']:.3f}")
report(rows)
for folder in sys.argv[1:]:
    print(f"  {folder}: ", end="")
    report([r for r in rows if r["folder"] == folder])
