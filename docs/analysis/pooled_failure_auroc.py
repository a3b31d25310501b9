"""Failure AUROC of the case uncertainty score, and what the 0.6.0 review rule flags, over labelled held-out cases.

Without arguments: every case scored with bundle 0.5.1 (docs/results.md, "Review flag"; run from the bundle root after
the evaluate commands of that section; the 4 cases as given are the 0.5.0 table's values). With arguments: the cases
of the given ``evaluate`` output folders (e.g. the stage 13 ones, docs/results.md "Version 0.7.0").

For folders written by 0.10.0 or later, metrics.json's uncertainty_score is 1 - estimated Dice, flagged above 0.4,
not 0.2: use review_score_from_outputs.py, which computes both scores from the saved maps."""

import json
import sys

import torch
from monai.metrics import compute_roc_auc

EVALUATIONS = ("runs/pooled/eval", "runs/variants/eval_validation", "runs/variants/eval_testing", "runs/variants/eval_oblique")
cases = [] if sys.argv[1:] else [
    {"id": "BRATS_472", "dice": 0.917, "uncertainty_score": 0.113},
    {"id": "BRATS_473", "dice": 0.371, "uncertainty_score": 0.335},
    {"id": "patient26", "dice": 0.472, "uncertainty_score": 0.289},
    {"id": "BRATS_474", "dice": 0.886, "uncertainty_score": 0.096},
]
for folder in sys.argv[1:] or EVALUATIONS:
    with open(f"{folder}/metrics.json") as f:
        cases += json.load(f)["cases"]
failed = torch.tensor([c["dice"] < 0.5 for c in cases])
score = torch.tensor([c["uncertainty_score"] for c in cases])
print(f"{len(cases)} cases, {int(failed.sum())} failures; AUROC {compute_roc_auc(score, failed.float()):.3f}")
flag = score > 0.2
print(f"score > 0.2 flags {int(flag.sum())}: failures {int((flag & failed).sum())} of {int(failed.sum())}, "
      f"successes {int((flag & ~failed).sum())} of {int((~failed).sum())}")
