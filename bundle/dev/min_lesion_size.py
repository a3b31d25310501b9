"""Minimum lesion size on pooled out-of-fold masks (docs/results.md, rule 6):
``python -m bundle.dev min-lesion-size --score_dir runs/cv/score_2000 [--sizes "[5,10,20,40]"]``.

Predicted lesions (26-connected components) smaller than V mm³ are removed from each saved out-of-fold mask with
the transform the inference config uses (``monai.transforms.RemoveSmallObjects``, ``by_measure``, full
connectivity, on the input grid), and the case is scored again (``bundle.dev.saved_masks``). The masks are
deterministic, so this equals running the inference config with ``min_lesion_mm3: V``. Writes
SCORE_DIR/min_lesion_size.json and .md: pooled MS and glioma means of Dice and lesion F1 per V (V = 0: no filter)
and the rule's verdict.
"""

from __future__ import annotations

import json

from monai.transforms import RemoveSmallObjects

from bundle.dev.saved_masks import changes, pooled_markdown, publish, score_variants, verdict
from bundle.evaluation.crossval import FOLDS_FILE

RULE_TIE = 0.005  # a V within this of the best MS lesion F1 loses to the smaller V
MIN_F1_GAIN = 0.02  # against no filter
MAX_DICE_LOSS = 0.005  # MS and glioma, against no filter


def remove_small_lesions(seg, min_mm3: float):
    """``seg`` (channel-first MetaTensor, 0/1) without its 26-connected components smaller than ``min_mm3`` mm³."""
    if min_mm3 <= 0:
        return seg
    return RemoveSmallObjects(min_size=min_mm3, connectivity=3, by_measure=True)(seg)


def choose(pooled: dict[float, dict]) -> dict:
    """Rule 6 over ``{V: {"ms": {"dice", "lesion_f1"}, "glioma": {"dice", ...}}}`` (V = 0: no filter)."""
    sizes = sorted(v for v in pooled if v > 0)
    best_f1 = max(pooled[v]["ms"]["lesion_f1"] for v in sizes)
    chosen = next(v for v in sizes if pooled[v]["ms"]["lesion_f1"] >= best_f1 - RULE_TIE)
    base, cand = pooled[0], pooled[chosen]
    checks = changes(base, cand, "ms_lesion_f1", ("ms_dice", "glioma_dice"))
    passes = (checks["ms_lesion_f1_gain"] >= MIN_F1_GAIN and checks["ms_dice_change"] >= -MAX_DICE_LOSS
              and checks["glioma_dice_change"] >= -MAX_DICE_LOSS)
    return {"candidate_mm3": chosen, **checks, "adopt": passes}


def min_lesion_size(score_dir: str, sizes=(5, 10, 20, 40), folds_file: str = FOLDS_FILE) -> dict:
    """Score every case of ``score_dir`` (a ``crossval score`` output) at each minimum lesion size (module
    docstring); returns the content of SCORE_DIR/min_lesion_size.json."""
    sizes = [0.0] + sorted(float(v) for v in (json.loads(sizes) if isinstance(sizes, str) else sizes))
    variants = {str(v): (lambda seg, brain, prob, v=v: remove_small_lesions(seg, v)) for v in sizes}
    result = score_variants(score_dir, variants, folds_file)
    result["pooled"] = {float(v): p for v, p in result["pooled"].items()}
    result["rule"] = choose(result["pooled"])
    return publish(score_dir, "min_lesion_size", result, markdown(result))


def markdown(result: dict) -> str:
    """The pooled means per minimum size and the rule's verdict as Markdown."""
    rows = [(f"{float(v):g}", p) for v, p in sorted(result["pooled"].items(), key=lambda kv: float(kv[0]))]
    return pooled_markdown(f"Minimum lesion size on the pooled out-of-fold masks at {result['iterations']} iterations",
                           "min. lesion (mm³)", rows,
                           verdict("Rule 6", f"{result['rule']['candidate_mm3']:g} mm³", result["rule"]))


def min_lesion_size_command(score_dir: str, sizes=(5, 10, 20, 40), folds_file: str = FOLDS_FILE) -> None:
    """Command line: ``min_lesion_size``, printing the Markdown summary instead of the returned dictionary."""
    print(markdown(min_lesion_size(score_dir, sizes, folds_file)), end="")
