"""Lesion contrast against out-of-fold Dice: ``python -m bundle.dev lesion-ratio --score_dir runs/cv/score_2000``.

For every labelled case of a ``crossval score`` folder, on the input grid: the FLAIR scaled as the inference config
scales it (``NormalizeToTissue``, method "mode": parenchyma about 1; no resampling, bias-field correction or
smoothing here), and the lesion-to-tissue ratio r = median of the scaled image inside the label (the median over the
voxels above 0 outside it is reported beside it). Printed and written to SCORE_DIR/lesion_ratio.json and .md
with the case's out-of-fold Dice and true and predicted lesion volume, and per kind the Spearman rank correlation
of r with Dice: whether faint lesions are the ones the model misses.
"""

from __future__ import annotations

import os

import numpy as np
from monai.transforms import LoadImage
from scipy.stats import spearmanr

from bundle.dev.saved_masks import publish, scored_cases
from bundle.evaluation.crossval import FOLDS_FILE, KINDS
from bundle.evaluation.evaluate import label_on_image_grid
from bundle.preprocessing.intensity import normalize_to_tissue


def lesion_ratio(image, label) -> dict:
    """Median scaled intensity inside the label (r) and over the other voxels above 0, channel-first MetaTensors on
    one grid."""
    scaled = normalize_to_tissue(image, method="mode")[0].numpy()
    lesion = label[0].numpy() > 0
    return {"lesion_ratio": round(float(np.median(scaled[lesion])), 3) if lesion.any() else None,
            "other_tissue": round(float(np.median(scaled[~lesion & (scaled > 0)])), 3)}


def lesion_ratios(score_dir: str, folds_file: str = FOLDS_FILE) -> dict:
    """Lesion ratios of the cases of ``score_dir`` with their Dice (module docstring); the content of
    SCORE_DIR/lesion_ratio.json."""
    scored, source = scored_cases(score_dir, folds_file)
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    cases = []
    for case in scored["cases"]:
        image = loader(source[case["id"]]["image"])
        ratios = lesion_ratio(image, label_on_image_grid(loader(source[case["id"]]["label"]), image))
        cases.append({"id": case["id"], "kind": case["kind"], "dice": case["dice"], **ratios,
                      "true_volume_ml": case.get("true_volume_ml"), "predicted_volume_ml": case.get("predicted_volume_ml")})
    correlation = {}
    for kind in KINDS:
        rows = [c for c in cases if c["kind"] == kind and c["lesion_ratio"] is not None]
        rho = spearmanr([c["lesion_ratio"] for c in rows], [c["dice"] for c in rows]).statistic if len(rows) > 2 else None
        correlation[kind] = None if rho is None or not np.isfinite(rho) else round(float(rho), 3)
    result = {"score_dir": os.path.abspath(score_dir), "iterations": scored["iterations"],
              "spearman_ratio_dice": correlation, "cases": cases}
    return publish(score_dir, "lesion_ratio", result, markdown(result))


def markdown(result: dict) -> str:
    """Per kind: the cases by lesion ratio with Dice and volumes, and the rank correlation."""
    lines = [f"Lesion contrast against out-of-fold Dice at {result['iterations']} iterations\n"]
    for kind in KINDS:
        lines += [f"\n{kind}: Spearman rho (lesion ratio, Dice) = {result['spearman_ratio_dice'][kind]}\n",
                  "| case | lesion ratio | other tissue | Dice | true mL | predicted mL |", "|---|---|---|---|---|---|"]
        rows = sorted((c for c in result["cases"] if c["kind"] == kind), key=lambda c: c["lesion_ratio"] or 0)
        lines += [f"| {c['id']} | {c['lesion_ratio']} | {c['other_tissue']} | {c['dice']} | {c['true_volume_ml']} | "
                  f"{c['predicted_volume_ml']} |" for c in rows]
    return "\n".join(lines) + "\n"


def lesion_ratios_command(score_dir: str, folds_file: str = FOLDS_FILE) -> None:
    """Command line: ``lesion_ratios``, printing the Markdown instead of the returned dictionary."""
    print(markdown(lesion_ratios(score_dir, folds_file)), end="")
