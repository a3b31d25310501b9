"""``python -m bundle evaluate``: metric definitions on known masks, and a real labelled case end to end."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import BUNDLE_ROOT, GLIOMA, SHARED_DATA, require_shared, run_bundle

from bundle.evaluation.evaluate import aurc, lesion_detection, lesion_f1, summarise


def test_lesion_f1_counts_any_overlap_as_found():
    truth = np.zeros((20, 20, 20), bool)
    truth[1:3, 1:3, 1:3] = truth[10:12, 10:12, 10:12] = True  # two true lesions
    pred = np.zeros_like(truth)
    pred[2, 2, 2] = True  # hits lesion 1 with one voxel
    pred[17:19, 17:19, 17:19] = True  # a false positive
    assert lesion_f1(pred, truth) == pytest.approx(0.5)  # recall 1/2, precision 1/2
    assert lesion_f1(truth, truth) == 1.0
    assert lesion_f1(np.zeros_like(truth), truth) == 0.0
    assert lesion_f1(np.zeros_like(truth), np.zeros_like(truth)) == 1.0


def test_lesion_detection_splits_recall_and_precision():
    truth = np.zeros((20, 20, 20), bool)
    truth[1:3, 1:3, 1:3] = truth[10:12, 10:12, 10:12] = truth[15, 2, 2] = True  # three true lesions
    pred = np.zeros_like(truth)
    pred[2, 2, 2] = True  # finds lesion 1
    pred[17:19, 17:19, 17:19] = pred[5, 15, 5] = True  # two false positives
    assert lesion_detection(pred, truth) == pytest.approx(
        {"lesion_recall": 1 / 3, "lesion_precision": 1 / 3, "lesion_f1": 1 / 3})
    pred[10, 10, 10] = pred[11, 11, 11] = True  # two predicted lesions (26-connected: one) on lesion 2
    assert lesion_detection(pred, truth)["lesion_recall"] == pytest.approx(2 / 3)
    assert lesion_detection(pred, truth)["lesion_precision"] == pytest.approx(2 / 4)
    empty = np.zeros_like(truth)
    assert lesion_detection(empty, truth) == {"lesion_recall": 0.0, "lesion_precision": None, "lesion_f1": 0.0}
    assert lesion_detection(pred, empty) == {"lesion_recall": None, "lesion_precision": 0.0, "lesion_f1": 0.0}


def test_failure_auroc_needs_both_outcomes():
    base = {"hd95": 1.0, "lesion_f1": 1.0, "avd_ml": 0.0, "ece": 0.1}
    cases = [dict(base, dice=d, uncertainty_score=u) for d, u in [(0.9, 0.01), (0.8, 0.02), (0.3, 0.2), (0.1, 0.1)]]
    assert summarise(cases)["failure_auroc"] == 1.0  # every failure is more uncertain than every success
    assert summarise(cases[:2])["failure_auroc"] is None
    assert summarise(cases)["dice"] == pytest.approx(0.525)


def test_aurc_and_unflagged_failures():
    # risk = 1 - Dice; kept from the lowest score up: the perfect order keeps the good cases first
    assert aurc([0.1, 0.2, 0.3], [1.0, 0.5, 0.0]) == pytest.approx((0 + 0.25 + 0.5) / 3)
    assert aurc([0.3, 0.2, 0.1], [1.0, 0.5, 0.0]) == pytest.approx((1 + 0.75 + 0.5) / 3)  # the worst order
    base = {"hd95": 1.0, "lesion_f1": 1.0, "avd_ml": 0.0, "ece": 0.1, "uncertainty_score": 0.1}
    cases = [dict(base, dice=0.2, review_required=True), dict(base, dice=0.25, review_required=False),
             dict(base, dice=0.9, review_required=False)]
    assert summarise(cases)["unflagged_failures"] == 1


def test_evaluate_real_case_with_label_in_another_orientation(tmp_path):
    require_shared(GLIOMA)
    image = GLIOMA / "BRATS_472_flair.nii.gz"
    label = nib.load(GLIOMA / "BRATS_472_label.nii.gz")
    lps = label.as_reoriented(np.array([[0, -1], [1, -1], [2, 1]]))  # same world space, LPS voxel order
    nib.save(lps, tmp_path / "label_lps.nii.gz")
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"testing": [{"image": str(image), "label": "label_lps.nii.gz"}]}))
    out = tmp_path / "eval"
    run_bundle("bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(out), "--samples", "2", "--steps", "2")
    result = json.loads((out / "metrics.json").read_text())
    assert set(result["mean"]) == {"dice", "hd95", "lesion_f1", "avd_ml", "ece", "lesion_recall", "lesion_precision",
                                   "failure_auroc", "aurc", "unflagged_failures"}
    (case,) = result["cases"]
    assert case["id"] == "BRATS_472_flair"
    seg = np.asarray(nib.load(out / "BRATS_472_flair_seg.nii.gz").dataobj) > 0
    truth = np.asarray(label.dataobj) > 0  # original orientation: the reoriented label must give the same Dice
    assert case["dice"] == pytest.approx(2 * (seg & truth).sum() / (seg.sum() + truth.sum()), abs=1e-3)
    assert case["true_volume_ml"] == pytest.approx(truth.sum() * np.prod(label.header.get_zooms()) / 1000, rel=1e-3)
    assert 0 <= case["ece"] <= 1 and isinstance(case["review_required"], bool)
    assert (out / "metrics.md").read_text().startswith("| case |")
    assert not (out / ".partial").exists()  # staging folder cleaned up
    assert (out / "overlays" / "BRATS_472_flair.png").stat().st_size > 1000


def test_baseline_trains_and_is_scored_by_the_same_command(tmp_path):
    require_shared(GLIOMA)
    case = lambda i: {"image": str(GLIOMA / f"BRATS_{i}_flair.nii.gz"), "label": str(GLIOMA / f"BRATS_{i}_label.nii.gz")}
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"training": [case(460), case(461)], "validation": [case(472)], "testing": [case(472)]}))
    run_bundle(
        "monai.bundle", "run", "--config_file", "['configs/train.yaml','configs/baseline_train.yaml']",
        "--datalist", str(datalist), "--output_dir", str(tmp_path / "run"), "--ckpt_dir", str(tmp_path / "run"),
        "--max_epochs", "1", "--epoch_length", "2", "--patch_size", "32", "--num_workers", "0",
        "--synthesis_prob", "0", "--val_interval", "1",
    )
    assert (tmp_path / "run" / "baseline.pt").exists()
    run_bundle(
        "bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(tmp_path / "eval"),
        "--config_file", "['configs/inference.yaml','configs/baseline_inference.yaml']",
        "--ckpt", str(tmp_path / "run" / "baseline.pt"),
    )
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["settings"]["ckpt"].endswith("baseline.pt") and result["cases"][0]["id"] == "BRATS_472_flair"
    unc = nib.load(tmp_path / "eval" / "BRATS_472_flair_uncertainty.nii.gz").get_fdata()
    assert not unc.any()  # a deterministic model has no sample spread


def test_two_channel_model_trains_and_is_scored_on_image_lists(tmp_path):
    """Multi-modal by config: image_channels 2, datalist images as [FLAIR, T2] lists, end to end (train, evaluate)."""
    ms = SHARED_DATA / "open_ms_data" / "cross_sectional_mni"
    require_shared(ms / "patient26_FLAIR.nii.gz", ms / "patient26_T2.nii.gz")
    case = {"image": [str(ms / "patient26_FLAIR.nii.gz"), str(ms / "patient26_T2.nii.gz")],
            "label": str(ms / "patient26_lesion_mask.nii.gz")}
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"training": [case], "validation": [case], "testing": [case]}))
    run_bundle(
        "monai.bundle", "run", "--config_file", "configs/train.yaml", "--image_channels", "2",
        "--datalist", str(datalist), "--output_dir", str(tmp_path / "run"), "--ckpt_dir", str(tmp_path / "run"),
        "--max_epochs", "1", "--epoch_length", "2", "--patch_size", "32", "--num_workers", "0",
        "--synthesis_prob", "0", "--val_interval", "1", "--val_num_samples", "1", "--val_num_steps", "1",
    )
    weights = tmp_path / "run" / "model.pt"
    first_conv = next(v for k, v in torch.load(weights, weights_only=True).items() if k.startswith("image_encoder"))
    assert first_conv.shape[1] == 2 * 3  # 2 modalities x (2r + 1) slices
    (tmp_path / "two_channels.yaml").write_text("image_channels: 2\n")
    out = tmp_path / "eval"
    run_bundle(
        "bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(out), "--samples", "2", "--steps", "1",
        "--config_file", f"['configs/inference.yaml','{tmp_path / 'two_channels.yaml'}']", "--ckpt", str(weights),
    )
    (result,) = json.loads((out / "metrics.json").read_text())["cases"]
    assert result["id"] == "patient26_FLAIR" and 0 <= result["dice"] <= 1
    seg = nib.load(out / "patient26_FLAIR_seg.nii.gz")
    assert seg.shape == (182, 218, 182)  # one mask on the grid of the first modality
    # the same datalist scored by the 1-channel shipped model is refused with a reason, not mis-run
    proc = run_bundle("bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(tmp_path / "eval1"),
                      check=False)
    assert proc.returncode == 1 and "2 images listed for one case, the model takes 1 channels" in proc.stdout



def test_other_weights_replace_the_config_s():
    """``--ckpt`` points the config at those weights (made absolute); without it the config's own stay."""
    from bundle.evaluation.evaluate import read_config, set_weights

    shipped = read_config(str(BUNDLE_ROOT), "configs/inference.yaml")["ckpt_path"]

    def path(ckpt=""):
        parser = read_config(str(BUNDLE_ROOT), "configs/inference.yaml")
        set_weights(parser, ckpt)
        return parser["ckpt_path"]

    assert path() == shipped and "models/model.pt" in shipped
    assert path("a.pt") == os.path.abspath("a.pt")
