"""Mask post-processing candidates scored on the saved out-of-fold masks of a ``crossval score`` folder.

The out-of-fold masks are deterministic, so changing a mask after it was written equals running the inference config
with the setting that makes the same change. Each variant maps (mask, brain mask) -> mask, channel-first MetaTensors
on the input grid (the brain mask is None where a folder holds none); every case is scored again with ``python -m
bundle evaluate``'s mask metrics (``bundle.evaluation.evaluate.mask_metrics``) and the cases are pooled per kind.
Used by the rules of docs/results.md that act on the mask only (``bundle.dev.min_lesion_size``,
``bundle.dev.fill_holes``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
from monai.transforms import LoadImage

from bundle.evaluation.crossval import FOLDS_FILE, KINDS, read_folds
from bundle.evaluation.evaluate import load_case, mask_metrics
from bundle.inputs.data import case_name
from bundle.outputs.files import write_json_atomic, write_text_atomic
from bundle.outputs.report import estimated_dice

POOLED = ("dice", "lesion_f1", "lesion_recall", "lesion_precision")


def scored_cases(score_dir: str, folds_file: str = FOLDS_FILE) -> tuple[dict, dict]:
    """(SCORE_DIR/metrics.json, {case id: its entry of ``folds_file``}): the scored cases and their images and
    labels."""
    with open(os.path.join(score_dir, "metrics.json")) as f:
        scored = json.load(f)
    return scored, {case_name(c["image"]): c for c in read_folds(folds_file)}


def score_variants(score_dir: str, variants: dict[str, Callable], folds_file: str = FOLDS_FILE) -> dict:
    """Every case of ``score_dir`` scored under each of ``variants`` ({name: (seg, brain, probability) -> seg}, the
    saved lesion probability on the same grid); returns {"score_dir", "iterations", "pooled": {name: {kind: {"dice",
    "lesion_f1", ...}}}, "cases": [{"id", "kind", "fold", name: mask_metrics and ``case_signals``, ...}]}."""
    scored, source = scored_cases(score_dir, folds_file)
    per_case = []
    for case in scored["cases"]:
        fold_dir = os.path.join(score_dir, f"fold_{case['fold']}")
        _, label, seg, prob, uncertainty = load_case(source[case["id"]], fold_dir)
        brain_file = os.path.join(fold_dir, f"{case['id']}_brain.nii.gz")
        brain = LoadImage(image_only=True, ensure_channel_first=True)(brain_file) if os.path.isfile(brain_file) else None
        row = {"id": case["id"], "kind": case["kind"], "fold": case["fold"]}
        for name, variant in variants.items():
            mask = variant(seg.clone(), brain, prob)
            row[name] = {**mask_metrics(mask, label), **case_signals(case, mask, prob, uncertainty)}
        per_case.append(row)
        print(f"{case['id']}: Dice by variant {[row[name]['dice'] for name in variants]}", flush=True)
    pooled = {name: {kind: {k: _mean([r[name][k] for r in per_case if r["kind"] == kind]) for k in POOLED}
                     for kind in KINDS} for name in variants}
    return {"score_dir": os.path.abspath(score_dir), "iterations": scored["iterations"], "pooled": pooled,
            "cases": per_case}


def case_signals(case: dict, mask, prob, uncertainty) -> dict:
    """The review flag's case signals of a changed ``mask`` (``bundle.evaluation.crossval.fit_review_rule`` reads
    them): the estimated Dice and the mean uncertainty in lesions recomputed on it; the sample agreement, the lesion
    fraction at the brain's edge and the brain volume as scored (the first two do not depend on the mask, the edge
    fraction barely)."""
    inside = mask[0].numpy() > 0
    sigma = uncertainty[0].numpy()
    return {"estimated_dice": round(estimated_dice(prob[0].numpy(), inside), 4),
            "mean_uncertainty_in_lesions": round(float(sigma[inside].mean()), 4) if inside.any() else 0.0,
            **{key: case.get(key) for key in ("sample_agreement", "lesion_fraction_at_brain_edge", "brain_volume_ml")}}


def _mean(values: list) -> float | None:
    """Mean of the values that are not None (a lesion ratio without lesions to count is None), 4 decimals."""
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def pooled_markdown(title: str, variant_column: str, pooled: list[tuple[str, dict]], verdict: str) -> str:
    """A Markdown table of the pooled means, one row per (variant label, pooled entry of ``score_variants``), under
    ``title`` and above ``verdict``."""
    lines = [f"{title}\n", f"| {variant_column} | MS Dice | MS lesion F1 | MS lesion recall | MS lesion precision | "
             "glioma Dice | glioma lesion F1 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {label} | {p['ms']['dice']} | {p['ms']['lesion_f1']} | {p['ms'].get('lesion_recall')} | "
              f"{p['ms'].get('lesion_precision')} | {p['glioma']['dice']} | {p['glioma']['lesion_f1']} |"
              for label, p in pooled]
    return "\n".join(lines) + f"\n\n{verdict}\n"


FIGURES = {"ms_dice": "MS Dice", "ms_lesion_f1": "MS lesion F1", "glioma_dice": "glioma Dice",
           "glioma_lesion_f1": "glioma lesion F1"}


def changes(base: dict, candidate: dict, gain: str, others: tuple[str, ...]) -> dict:
    """Pooled figures of ``candidate`` minus ``base`` (pooled entries of ``score_variants``), 4 decimals:
    ``<gain>_gain`` for the figure a rule asks to rise, ``<figure>_change`` for the ones it guards (``FIGURES`` keys,
    e.g. "ms_lesion_f1")."""
    def delta(figure: str) -> float:
        kind, metric = figure.split("_", 1)
        return round(candidate[kind][metric] - base[kind][metric], 4)

    return {f"{gain}_gain": delta(gain), **{f"{figure}_change": delta(figure) for figure in others}}


def verdict(rule: str, candidate: str, rule_result: dict) -> str:
    """One line: the rule, its candidate, each pooled figure's change against no change (keys ``<figure>_change`` or
    ``<figure>_gain``) and whether it is adopted."""
    changes = [f"{FIGURES[key.rsplit('_', 1)[0]]} {value:+}" for key, value in rule_result.items()
               if key.endswith(("_change", "_gain"))]
    return f"{rule}: candidate {candidate}: {', '.join(changes)}: {'adopt' if rule_result['adopt'] else 'do not adopt'}"


def publish(score_dir: str, stem: str, result: dict, text: str) -> dict:
    """Write ``result`` to SCORE_DIR/STEM.json and ``text`` to SCORE_DIR/STEM.md (atomically); returns ``result``."""
    write_json_atomic(os.path.join(score_dir, f"{stem}.json"), result)
    write_text_atomic(os.path.join(score_dir, f"{stem}.md"), text)
    return result
