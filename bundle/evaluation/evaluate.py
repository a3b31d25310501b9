"""Accuracy on labelled cases: ``python -m bundle evaluate --datalist FILE --output_dir DIR [--samples N] [--steps K]``.

Runs the inference config on the datalist's "testing" cases (each {"image", "label"}, lesion = label > 0), then
measures every case on the image's own grid (the label is resampled onto it by world coordinates, nearest
neighbour, so the two may differ in orientation):

* dice, hd95 (mm): ``monai.metrics.DiceMetric``, ``HausdorffDistanceMetric(percentile=95)``;
* lesion_f1: lesion-wise detection F1, lesions = 26-connected components, any overlap counts as found; beside it
  (not in the tables) lesion_recall (true lesions found) and lesion_precision (predicted lesions that hit one);
* avd_ml: |predicted - true lesion volume| in mL;
* ece: ``monai.metrics.CalibrationErrorMetric`` (20 bins) of the lesion probability inside the head
  (voxels above the image mean);
* from the report: the case score behind the review flag (``uncertainty_score``, by default 1 - the model's own
  expected Dice of its mask), the flag and the other case signals (``REPORT_SIGNALS``).

``failure_auroc`` is the ROC AUC (``monai.metrics.compute_roc_auc``) of uncertainty_score for detecting failures
(Dice < 0.5), null unless both failures and successes occur; ``aurc`` the area under its risk-coverage curve;
``unflagged_failures`` the cases with Dice < 0.3 that the review flag let through. Writes DIR/metrics.json,
DIR/metrics.md and overlay PNGs of the worst cases (DIR/overlays/: three planes, true contours green, predicted red,
uncertainty), and ``failures.json`` (cases skipped by the input checks; exit status 1 if any).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import load_decathlon_datalist
from monai.metrics import CalibrationErrorMetric, DiceMetric, HausdorffDistanceMetric, compute_roc_auc
from monai.transforms import LoadImage, ResampleToMatch
from scipy import ndimage

from bundle.inputs.data import case_name
from bundle.inputs.input_check import (
    InputError,
    check_output_dir,
    exit_on_input_error,
    finish_batch,
    reason,
    remove_if_empty,
    screen_datalist,
)
from bundle.outputs.overlay import save_review_png
from bundle.outputs.files import write_json_atomic

FAILURE_DICE = 0.5
MISSED_FAILURE_DICE = 0.3  # a case below this Dice must be flagged for review
REPORT_SIGNALS = ("review_required", "uncertainty_score", "estimated_dice", "sample_agreement",
                  "lesion_fraction_at_brain_edge", "brain_volume_ml", "mean_uncertainty_in_lesions")
METRICS = ("dice", "hd95", "lesion_f1", "avd_ml", "ece")
DETECTION = ("lesion_recall", "lesion_precision")  # averaged beside METRICS, not in the tables


def lesion_detection(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Lesion-wise detection: recall over true lesions hit, precision over predicted lesions that hit, and their F1
    (lesions = 26-connected components, any overlap counts). A ratio without lesions to count is None; with no
    lesion in either mask all three are 1."""
    structure = np.ones((3,) * pred.ndim)
    pred_labels, n_pred = ndimage.label(pred, structure=structure)
    true_labels, n_true = ndimage.label(truth, structure=structure)
    if n_pred == 0 and n_true == 0:
        return {"lesion_recall": 1.0, "lesion_precision": 1.0, "lesion_f1": 1.0}
    found = len(np.unique(true_labels[pred & (true_labels > 0)])) if n_true else 0
    correct = len(np.unique(pred_labels[truth & (pred_labels > 0)])) if n_pred else 0
    recall = found / n_true if n_true else None
    precision = correct / n_pred if n_pred else None
    f1 = 0.0 if not recall or not precision else 2 * recall * precision / (recall + precision)
    return {"lesion_recall": recall, "lesion_precision": precision, "lesion_f1": f1}


def lesion_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Lesion-wise detection F1 (``lesion_detection``)."""
    return lesion_detection(pred, truth)["lesion_f1"]


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def label_on_image_grid(label, image):
    """``label`` resampled (nearest neighbour, by world coordinates) onto ``image``'s grid when the grids differ."""
    same = label.shape == image.shape and torch.allclose(label.affine.double(), image.affine.double(), atol=1e-3)
    return label if same else ResampleToMatch(mode="nearest")(label, img_dst=image)


def load_case(case: dict, output_dir: str) -> tuple:
    """(image, label on the image grid, seg, probability, uncertainty) of a scored case, channel-first."""
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    image = loader(case["image"])
    stem = os.path.join(output_dir, case_name(case["image"]))
    outputs = (loader(f"{stem}_{kind}.nii.gz") for kind in ("seg", "prob", "uncertainty"))
    return (image, label_on_image_grid(loader(case["label"]), image), *outputs)


def mask_metrics(seg, label) -> dict:
    """Dice, lesion detection (``lesion_detection``), absolute volume difference and both volumes (mL) of a
    channel-first mask against its label, MetaTensors on the same grid."""
    truth, pred = (label > 0).float()[None], (seg > 0).float()[None]
    voxel_ml = abs(float(np.linalg.det(seg.affine[:3, :3].double().numpy()))) / 1000
    detection = lesion_detection(pred[0, 0].numpy() > 0, truth[0, 0].numpy() > 0)
    return {
        "dice": _finite(DiceMetric(include_background=True, ignore_empty=False)(pred, truth).item()),
        **{key: _finite(value) for key, value in detection.items()},
        "avd_ml": _finite(abs(float(pred.sum() - truth.sum())) * voxel_ml),
        "true_volume_ml": _finite(float(truth.sum()) * voxel_ml),
        "predicted_volume_ml": _finite(float(pred.sum()) * voxel_ml),
    }


def case_metrics(image, label, seg, prob, uncertainty) -> dict:
    """Metrics of one case; all inputs are channel-first MetaTensors on the image grid."""
    truth, pred = (label > 0).float()[None], (seg > 0).float()[None]
    spacing = np.sqrt((image.affine[:3, :3].double().numpy() ** 2).sum(axis=0))
    hd95 = HausdorffDistanceMetric(include_background=True, percentile=95)(pred, truth, spacing=spacing.tolist()).item()
    head = image[0] > image[0].mean()
    ece = CalibrationErrorMetric(num_bins=20)(prob[0][head].reshape(1, 1, -1), truth[0, 0][head].reshape(1, 1, -1))
    return {**mask_metrics(seg, label), "hd95": _finite(hd95), "ece": _finite(ece.item())}


def read_config(bundle_root: str, config_file: str | list[str]) -> ConfigParser:
    """The inference config: one path or a list merged in order (relative paths relative to ``bundle_root``)."""
    files = [config_file] if isinstance(config_file, str) else list(config_file)
    parser = ConfigParser()
    parser.read_config([f if os.path.isabs(f) else os.path.join(bundle_root, f) for f in files])
    return parser


def set_weights(parser: ConfigParser, ckpt: str = "") -> None:
    """Point the inference config at the weights in ``ckpt`` (a path; relative to the working directory); "": the
    config's own."""
    if ckpt:
        parser["ckpt_path"] = os.path.abspath(ckpt)


def run_inference(
    parser: ConfigParser, bundle_root: str, cases: list[dict], output_dir: str, samples: int, steps: int,
    ckpt: str = "",
) -> None:
    """The inference config ``parser`` on ``cases``, also saving the lesion probability (``<case>_prob.nii.gz``).

    ``ckpt``: other weights (``set_weights``).
    """
    parser.update({"bundle_root": bundle_root, "output_dir": output_dir, "num_samples": samples, "num_steps": steps})
    set_weights(parser, ckpt)
    parser["datalist_files"] = [{"image": c["image"]} for c in cases]
    transforms = parser["postprocessing"]["transforms"]
    save_seg = next(t for t in transforms if t["_target_"] == "SaveImaged" and t["keys"] == "pred_lesion")
    save_prob = dict(save_seg, output_postfix="prob", output_dtype="$numpy.float32")
    binarise = next(i for i, t in enumerate(transforms) if t["_target_"] == "AsDiscreted")
    transforms.insert(binarise, save_prob)  # save the probability before it is thresholded
    parser.get_parsed_content("initialize")
    parser.get_parsed_content("evaluator").run()
    remove_if_empty(parser.get_parsed_content("staging_dir"))


def aurc(scores, dice) -> float | None:
    """Area under the risk-coverage curve: cases kept from the lowest case score up; at coverage k/n the risk is the
    mean 1 - Dice of the k kept cases; AURC is the mean over k = 1..n (lower is better; ties in order of input)."""
    if not len(scores):
        return None
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
    risk = 1.0 - np.asarray(dice, dtype=np.float64)[order]
    return float(np.mean(np.cumsum(risk) / np.arange(1, len(risk) + 1)))


def summarise(cases: list[dict]) -> dict:
    """Means over cases (ignoring nulls), the failure AUROC and AURC of the case score, and how many cases with
    Dice < ``MISSED_FAILURE_DICE`` were not flagged for review."""
    mean = {}
    for key in (*METRICS, *DETECTION):
        values = [c[key] for c in cases if c.get(key) is not None]
        mean[key] = round(float(np.mean(values)), 4) if values else None
    failures = [c["dice"] is not None and c["dice"] < FAILURE_DICE for c in cases]
    scores = [c["uncertainty_score"] or 0.0 for c in cases]
    auroc = None
    if 0 < sum(failures) < len(failures):
        auroc = round(float(compute_roc_auc(torch.tensor(scores), torch.tensor(failures, dtype=torch.float))), 4)
    mean["failure_auroc"] = auroc
    scored = [c for c in cases if c["dice"] is not None]
    curve = aurc([c["uncertainty_score"] or 0.0 for c in scored], [c["dice"] for c in scored])
    mean["aurc"] = None if curve is None else round(curve, 4)
    mean["unflagged_failures"] = sum(
        1 for c in scored if c["dice"] < MISSED_FAILURE_DICE and not c.get("review_required", False)
    )
    return mean


def markdown_table(result: dict) -> str:
    """metrics.json as a Markdown table (cases, then the mean)."""
    cols = ["dice", "hd95", "lesion_f1", "avd_ml", "ece", "uncertainty_score", "review_required"]
    lines = ["| case | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for c in result["cases"]:
        lines.append(f"| {c['id']} | " + " | ".join(str(c.get(k)) for k in cols) + " |")
    mean = result["mean"]
    lines.append("| **mean** | " + " | ".join(str(mean.get(k, "")) for k in cols[:5]) + " | | |")
    lines.append(f"\nfailure AUROC (Dice < {FAILURE_DICE}): {mean['failure_auroc']}; AURC: {mean['aurc']}; "
                 f"cases with Dice < {MISSED_FAILURE_DICE} not flagged: {mean['unflagged_failures']}")
    return "\n".join(lines) + "\n"


def evaluate(
    datalist: str,
    output_dir: str,
    samples: int = 0,
    steps: int = 0,
    bundle_root: str = ".",
    worst: int = 3,
    config_file: str | list[str] = "configs/inference.yaml",
    ckpt: str = "",
    key: str = "testing",
    debug: bool = False,
) -> dict:
    """Segment and score every case of the ``key`` list of ``datalist``; returns the metrics.json content.

    ``--config_file "['configs/inference.yaml','configs/baseline_inference.yaml']"`` scores the baseline,
    ``--ckpt FILE`` other weights (e.g. a cross-validation fold's), ``--key validation`` another list of the datalist,
    ``--debug`` the traceback of a datalist error instead of one line. ``samples``/``steps`` 0: the config's N and K.
    """
    bundle_root = os.path.abspath(bundle_root)
    parser = read_config(bundle_root, config_file)
    samples, steps = samples or parser["num_samples"], steps or parser["num_steps"]
    cases = exit_on_input_error(labelled_datalist, datalist, key, debug=debug)
    exit_on_input_error(check_output_dir, output_dir, debug=debug)
    cases, failures = screen_datalist(cases, parser["image_channels"], labelled=True)
    for failure in failures:
        print(f"skipped: {failure['error']}")
    if cases:
        run_inference(parser, bundle_root, cases, output_dir, samples, steps, ckpt)
    results = []
    for case in cases:
        image, label, seg, prob, unc = load_case(case, output_dir)
        with open(os.path.join(output_dir, f"{case_name(case['image'])}_report.json")) as f:
            report = json.load(f)
        metrics = case_metrics(image, label, seg, prob, unc)
        results.append({"id": case_name(case["image"]), **metrics, **{k: report.get(k) for k in REPORT_SIGNALS}})
    settings = {"samples": samples, "steps": steps, "config_file": config_file, "ckpt": ckpt or "config default",
                "datalist": os.path.abspath(datalist), "key": key}
    result = {"mean": summarise(results), "cases": results, "settings": settings}
    write_json_atomic(os.path.join(output_dir, "metrics.json"), result)
    with open(os.path.join(output_dir, "metrics.md"), "w") as f:
        f.write(markdown_table(result))
    order = sorted(range(len(results)), key=lambda i: results[i]["dice"] if results[i]["dice"] is not None else -1)
    os.makedirs(os.path.join(output_dir, "overlays"), exist_ok=True)
    for i in order[:worst]:
        image, label, seg, _, unc = load_case(cases[i], output_dir)
        save_review_png(image[0].numpy(), image.affine.double().numpy(), seg[0].numpy() > 0, unc[0].numpy(),
                        os.path.join(output_dir, "overlays", f"{results[i]['id']}.png"),
                        title=f"{results[i]['id']} Dice {results[i]['dice']}", truth=label[0].numpy() > 0)
    finish_batch(output_dir, failures, len(cases))  # failures.json; exits 1 if a case was skipped
    return result


def labelled_datalist(datalist: str, key: str) -> list[dict]:
    """The ``key`` list of an MSD-style datalist; a missing file or list is an ``InputError``."""
    if not os.path.isfile(datalist):
        raise InputError(f"{datalist}: datalist file not found")
    try:
        return load_decathlon_datalist(datalist, is_segmentation=True, data_list_key=key)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{datalist}: not a datalist with a {key!r} list ({reason(exc)})") from None
