"""Hole filling on pooled out-of-fold masks (docs/results.md, rule 8):
``python -m bundle.dev fill-holes --score_dir runs/cv/score_2000``.

Each saved out-of-fold mask (input grid) is filled and scored again (``bundle.dev.saved_masks``):

* "3d": background components of the mask that do not reach the volume's border become lesion
  (``monai.transforms.FillHoles``, full connectivity: background voxels touching at an edge or corner are connected);
* "2d": the same in every slice along the grid's third axis (full in-plane connectivity);

and each filled mask is cut to the case's brain mask again, so no lesion voxel lies outside the brain. Writes
SCORE_DIR/fill_holes.json and .md: pooled MS and glioma means of Dice and lesion F1 per candidate ("none": the masks
as written) and the rule's verdict.
"""

from __future__ import annotations

import torch
from monai.transforms import FillHoles

from bundle.dev.saved_masks import changes, pooled_markdown, publish, score_variants, verdict
from bundle.evaluation.crossval import FOLDS_FILE

CANDIDATES = ("3d", "2d")
RULE_TIE = 0.002  # "2d" must beat "3d" in pooled glioma Dice by more than this
MIN_GLIOMA_DICE_GAIN = 0.01  # against no filling
MAX_LOSS = 0.005  # MS Dice, MS lesion F1 and glioma lesion F1, against no filling


def fill_lesion_holes(seg, mode: str, brain=None):
    """``seg`` (channel-first 0/1 MetaTensor, (1, H, W, D)) with its holes filled in 3D or per slice along the last
    axis (module docstring), then set to 0 outside ``brain`` (same grid; None: no cut). ``mode`` "none" returns it."""
    if mode == "none":
        return seg
    if mode not in CANDIDATES:
        raise ValueError(f"mode must be 'none' or one of {CANDIDATES}, got {mode!r}")
    filled = (seg > 0).to(torch.uint8)
    if mode == "3d":
        filled = FillHoles()(filled)
    else:
        for k in range(filled.shape[-1]):
            filled[..., k] = torch.as_tensor(FillHoles()(filled[..., k]))
    if brain is not None:
        filled = filled * (brain > 0)
    return filled.to(seg.dtype)


def choose(pooled: dict[str, dict]) -> dict:
    """Rule 8 over ``{"none" | "3d" | "2d": {"ms": {"dice", "lesion_f1"}, "glioma": {"dice", "lesion_f1"}}}``."""
    glioma = {mode: pooled[mode]["glioma"]["dice"] for mode in CANDIDATES}
    chosen = "2d" if glioma["2d"] > glioma["3d"] + RULE_TIE else "3d"
    base, cand = pooled["none"], pooled[chosen]
    checks = changes(base, cand, "glioma_dice", ("ms_dice", "ms_lesion_f1", "glioma_lesion_f1"))
    passes = checks["glioma_dice_gain"] >= MIN_GLIOMA_DICE_GAIN and all(
        checks[k] >= -MAX_LOSS for k in ("ms_dice_change", "ms_lesion_f1_change", "glioma_lesion_f1_change"))
    return {"candidate": chosen, **checks, "adopt": passes}


def fill_holes(score_dir: str, folds_file: str = FOLDS_FILE) -> dict:
    """Score every case of ``score_dir`` (a ``crossval score`` output) without and with each kind of hole filling
    (module docstring); returns the content of SCORE_DIR/fill_holes.json."""
    variants = {mode: (lambda seg, brain, prob, mode=mode: fill_lesion_holes(seg, mode, brain))
                for mode in ("none", *CANDIDATES)}
    result = score_variants(score_dir, variants, folds_file)
    result["rule"] = choose(result["pooled"])
    return publish(score_dir, "fill_holes", result, markdown(result))


def markdown(result: dict) -> str:
    """The pooled means per candidate and the rule's verdict as Markdown."""
    return pooled_markdown(f"Hole filling on the pooled out-of-fold masks at {result['iterations']} iterations",
                           "holes filled", list(result["pooled"].items()),
                           verdict("Rule 8", result["rule"]["candidate"], result["rule"]))


def fill_holes_command(score_dir: str, folds_file: str = FOLDS_FILE) -> None:
    """Command line: ``fill_holes``, printing the Markdown summary instead of the returned dictionary."""
    print(markdown(fill_holes(score_dir, folds_file)), end="")
