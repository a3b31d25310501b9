"""Lesion detection by lesion size: ``python -m bundle.dev lesion-size --score_dir runs/cv/score_4000``.

Lesion F1 counts every lesion once, whatever its size, and MS scans hold many small lesions. For every labelled case
of a ``crossval score`` folder, on the input grid: the true lesions (26-connected components of the label, as
``bundle.evaluation.evaluate.lesion_detection`` counts them) by volume, each found or not (any overlap with the saved
mask), and the predicted lesions by volume, each true or false (any overlap with the label). Pooled per kind and size
bin (mm³; ``BINS``): lesions found of true lesions (recall) and true of predicted lesions (precision). Printed and
written to SCORE_DIR/lesion_size.json and .md: which lesions the model misses and which it invents.
"""

from __future__ import annotations

import os

import numpy as np
from monai.transforms import LoadImage
from scipy import ndimage

from bundle.dev.saved_masks import publish, scored_cases
from bundle.evaluation.crossval import FOLDS_FILE, KINDS
from bundle.evaluation.evaluate import label_on_image_grid

BINS = (0.0, 30.0, 100.0, 300.0, 1000.0, float("inf"))  # lesion volume bin edges, mm³


def lesions_by_size(pred: np.ndarray, truth: np.ndarray, voxel_mm3: float) -> dict:
    """{"true": [(volume mm³, found)], "predicted": [(volume mm³, true)]}: every 26-connected component of ``truth``
    and ``pred`` (boolean arrays on one grid) with its volume and whether it overlaps the other mask."""
    structure = np.ones((3,) * pred.ndim)
    out = {}
    for name, mask, other in (("true", truth, pred), ("predicted", pred, truth)):
        labels, n = ndimage.label(mask, structure=structure)
        if n == 0:
            out[name] = []
            continue
        index = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(mask, labels, index) * voxel_mm3
        hits = ndimage.maximum(other, labels, index) > 0
        out[name] = [(round(float(s), 1), bool(h)) for s, h in zip(sizes, hits)]
    return out


def bin_names() -> list[str]:
    """The labels of ``BINS``: "0-30", "30-100", ..., ">=1000"."""
    return [f">={low:g}" if high == float("inf") else f"{low:g}-{high:g}" for low, high in zip(BINS[:-1], BINS[1:])]


def size_bin(volume_mm3: float) -> str:
    """The ``BINS`` label of a volume, e.g. "30-100" or ">=1000"."""
    for name, low, high in zip(bin_names(), BINS[:-1], BINS[1:]):
        if low <= volume_mm3 < high:
            return name
    raise ValueError(f"negative lesion volume {volume_mm3}")


def pooled_by_size(cases: list[dict]) -> dict:
    """{kind: {bin: {"true", "found", "recall", "predicted", "correct", "precision"}}} over ``cases`` (rows with "kind",
    "true" and "predicted" lists of ``lesions_by_size``)."""
    bins = bin_names()
    pooled = {}
    for kind in KINDS:
        rows = [c for c in cases if c["kind"] == kind]
        table = {}
        for b in bins:
            true = [hit for c in rows for size, hit in c["true"] if size_bin(size) == b]
            pred = [hit for c in rows for size, hit in c["predicted"] if size_bin(size) == b]
            table[b] = {"true": len(true), "found": int(sum(true)),
                        "recall": round(sum(true) / len(true), 3) if true else None,
                        "predicted": len(pred), "correct": int(sum(pred)),
                        "precision": round(sum(pred) / len(pred), 3) if pred else None}
        pooled[kind] = table
    return pooled


def lesion_sizes(score_dir: str, folds_file: str = FOLDS_FILE) -> dict:
    """Lesions by size of the cases of ``score_dir`` (module docstring); the content of SCORE_DIR/lesion_size.json."""
    scored, source = scored_cases(score_dir, folds_file)
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    cases = []
    for case in scored["cases"]:
        seg = loader(os.path.join(score_dir, f"fold_{case['fold']}", f"{case['id']}_seg.nii.gz"))
        label = label_on_image_grid(loader(source[case["id"]]["label"]), seg)
        voxel_mm3 = abs(float(np.linalg.det(seg.affine[:3, :3].double().numpy())))
        found = lesions_by_size(seg[0].numpy() > 0, label[0].numpy() > 0, voxel_mm3)
        cases.append({"id": case["id"], "kind": case["kind"], "fold": case["fold"], **found})
    result = {"score_dir": os.path.abspath(score_dir), "iterations": scored["iterations"], "bins_mm3": list(BINS[:-1]),
              "pooled": pooled_by_size(cases), "cases": cases}
    return publish(score_dir, "lesion_size", result, markdown(result))


def markdown(result: dict) -> str:
    """Per kind: true lesions found and predicted lesions that are true, by size bin."""
    lines = [f"Lesion detection by lesion volume at {result['iterations']} iterations (pooled out-of-fold cases)\n"]
    for kind, table in result["pooled"].items():
        lines += [f"\n{kind}\n", "| volume (mm³) | true lesions | found | recall | predicted lesions | true | precision |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {b} | {r['true']} | {r['found']} | {r['recall']} | {r['predicted']} | {r['correct']} | "
                  f"{r['precision']} |" for b, r in table.items()]
    return "\n".join(lines) + "\n"


def lesion_sizes_command(score_dir: str, folds_file: str = FOLDS_FILE) -> None:
    """Command line: ``lesion_sizes``, printing the Markdown instead of the returned dictionary."""
    print(markdown(lesion_sizes(score_dir, folds_file)), end="")
