"""Confident lesions only, on pooled out-of-fold masks (docs/results.md, rules 14 and 15):
``python -m bundle.dev confident-lesions --score_dir runs/cv/score_4000
[--candidate_dir runs/cv/samples_4_tissue_boxes_score_4000] [--peaks "[0.6,0.7,0.8,0.9]"]``.

Hysteresis on the lesion probability p (the mean of the N soft masks, saved as ``<case>_prob.nii.gz`` on the input
grid): a predicted lesion, a 26-connected component of the mask, is kept only if its largest p reaches q,

    keep(L) = max_{v in L} p(v) >= q

(q <= 0.5 keeps every lesion of the mask p > 0.5). The masks are deterministic, so filtering the saved ones equals
running inference with the filter. Every case is scored again (``bundle.evaluation.evaluate.mask_metrics``) with
the review flag's case signals recomputed on the filtered mask (estimated Dice, lesion volume, mean uncertainty
in lesions; the sample agreement and brain volume do not depend on the mask) and the flag refitted by rule 2
(``bundle.evaluation.crossval.fit_review_rule``). Rule 14 picks q on SCORE_DIR; with ``candidate_dir`` (a speed
candidate's scores of the same snapshots), rule 15 compares that candidate with the default, both filtered at the
chosen q. Writes SCORE_DIR/confident_lesions.json and .md.
"""

from __future__ import annotations

import json
import os

import numpy as np
from scipy import ndimage

from bundle.dev.saved_masks import changes, pooled_markdown, publish, score_variants, verdict
from bundle.dev.speed_rule import ALLOWED, MAX_MORE_FLAGGED
from bundle.evaluation.crossval import FOLDS_FILE, fit_review_rule, flagged_cases, review_settings

RULE_TIE = 0.005  # a q within this of the best glioma lesion F1 loses to the lower q
MIN_GLIOMA_F1_GAIN = 0.02  # rule 14, against no filter
MAX_LOSS = 0.005  # rule 14: MS lesion F1, MS Dice and glioma Dice, against no filter
FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connected, as the inference config's small-lesion filter


def keep_confident_lesions(mask: np.ndarray, probability: np.ndarray, min_peak: float) -> np.ndarray:
    """``mask`` (3D, 0/1) without its 26-connected components whose largest ``probability`` is below ``min_peak``."""
    mask = np.asarray(mask) > 0
    labels, count = ndimage.label(mask, structure=FULL_CONNECTIVITY)
    if count == 0:
        return mask
    peaks = ndimage.maximum(np.asarray(probability), labels, index=np.arange(1, count + 1))
    return np.concatenate([[False], np.asarray(peaks) >= min_peak])[labels]


def score_peaks(score_dir: str, peaks: list[float], folds_file: str = FOLDS_FILE) -> dict:
    """Each case of ``score_dir`` filtered at each q of ``peaks`` (0: no filter), scored by ``score_variants``, with
    the review flag refitted per q: {"score_dir", "iterations", "cases", "pooled": {q: ...}, "flag": {q: ...}}."""
    def variant(q):
        def keep(seg, brain, prob):
            seg[0] = seg.new_tensor(keep_confident_lesions(seg[0].numpy(), prob[0].numpy(), q).astype(np.float32))
            return seg
        return keep

    result = score_variants(score_dir, {str(q): variant(q) for q in peaks}, folds_file)
    config = review_settings(os.path.join(os.path.dirname(__file__), "..", ".."))
    result["pooled"] = {float(q): p for q, p in result["pooled"].items()}
    result["flag"] = {q: fit_review_rule([case[str(q)] for case in result["cases"]], config) for q in peaks}
    return result


def choose(pooled: dict[float, dict]) -> dict:
    """Rule 14 over ``{q: {"ms": {...}, "glioma": {...}}}`` (q = 0: no filter)."""
    peaks = sorted(q for q in pooled if q > 0)
    best = max(pooled[q]["glioma"]["lesion_f1"] for q in peaks)
    chosen = next(q for q in peaks if pooled[q]["glioma"]["lesion_f1"] >= best - RULE_TIE)
    checks = changes(pooled[0], pooled[chosen], "glioma_lesion_f1", ("ms_lesion_f1", "ms_dice", "glioma_dice"))
    adopt = checks["glioma_lesion_f1_gain"] >= MIN_GLIOMA_F1_GAIN and all(
        checks[f"{figure}_change"] >= -MAX_LOSS for figure in ("ms_lesion_f1", "ms_dice", "glioma_dice"))
    return {"candidate_peak": chosen, **checks, "adopt": adopt}


def compare_speed(default: dict, candidate: dict, q: float) -> dict:
    """Rule 15: the candidate against the default, both filtered at q (entries of ``score_peaks``), under rule 12's
    terms (``bundle.dev.speed_rule``)."""
    base, cand = default["pooled"][q], candidate["pooled"][q]
    checks = {f"{kind}_{metric}_change": round(cand[kind][metric] - base[kind][metric], 4) for kind, metric in ALLOWED}
    counts = {name: flagged_cases(scores["flag"][q]) for name, scores in (("default", default), ("candidate", candidate))}
    passes = all(checks[f"{kind}_{metric}_change"] >= -allowed for (kind, metric), allowed in ALLOWED.items())
    passes = passes and counts["candidate"] <= counts["default"] + MAX_MORE_FLAGGED
    return {"peak": q, **checks, "flagged_default": counts["default"], "flagged_candidate": counts["candidate"],
            "adopt": passes}


def confident_lesions(score_dir: str, candidate_dir: str = "", peaks=(0.6, 0.7, 0.8, 0.9),
                      folds_file: str = FOLDS_FILE) -> dict:
    """Rules 14 and 15 (module docstring); returns the content of SCORE_DIR/confident_lesions.json."""
    peaks = [0.0] + sorted(float(q) for q in (json.loads(peaks) if isinstance(peaks, str) else peaks))
    default = score_peaks(score_dir, peaks, folds_file)
    result = {"default": default, "rule_14": choose(default["pooled"])}
    if candidate_dir and result["rule_14"]["adopt"]:
        q = result["rule_14"]["candidate_peak"]
        candidate = score_peaks(candidate_dir, [0.0, q], folds_file)
        result["candidate"] = candidate
        result["rule_15"] = compare_speed(default, candidate, q)
    return publish(score_dir, "confident_lesions", result, markdown(result))


def markdown(result: dict) -> str:
    """Pooled means per q with the refitted flags, and the rules' verdicts, as Markdown."""
    default = result["default"]
    rows = [(f"{q:g}" + (" (no filter)" if not q else "") + f", {flagged_cases(default['flag'][q])} flagged", p)
            for q, p in sorted(default["pooled"].items())]
    text = pooled_markdown(f"Confident lesions only (largest p >= q) on the pooled out-of-fold masks at "
                           f"{default['iterations']} iterations", "q, cases flagged", rows,
                           verdict("Rule 14", f"q = {result['rule_14']['candidate_peak']:g}", result["rule_14"]))
    if "rule_15" in result:
        rule = result["rule_15"]
        cand_rows = [(f"candidate, q = {q:g}, {flagged_cases(result['candidate']['flag'][q])} flagged", p)
                     for q, p in sorted(result["candidate"]["pooled"].items())]
        text += "\n" + pooled_markdown(f"Speed candidate {result['candidate']['score_dir']}", "q, cases flagged",
                                       cand_rows, verdict("Rule 15", f"q = {rule['peak']:g}", rule)
                                       + f" (flagged: default {rule['flagged_default']}, candidate "
                                         f"{rule['flagged_candidate']})")
    return text


def confident_lesions_command(score_dir: str, candidate_dir: str = "", peaks=(0.6, 0.7, 0.8, 0.9),
                              folds_file: str = FOLDS_FILE) -> None:
    """Command line: ``confident_lesions``, printing the Markdown summary instead of the returned dictionary."""
    print(markdown(confident_lesions(score_dir, candidate_dir, peaks, folds_file)), end="")
