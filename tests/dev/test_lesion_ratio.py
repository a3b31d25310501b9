"""Lesion contrast (bundle.dev.lesion_ratio): the ratio on the tissue scale, its rank correlation with Dice."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.dev.lesion_ratio import lesion_ratio, lesion_ratios


def _phantom(ratio, shape=(24, 24, 16), seed=0):
    """Background 0, tissue about 100 (noisy), a lesion box at ``ratio`` times the tissue."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    image[2:-2, 2:-2, 2:-2] = 100 + rng.normal(0, 2, (shape[0] - 4, shape[1] - 4, shape[2] - 4))
    label = np.zeros(shape, np.uint8)
    label[8:14, 8:14, 6:10] = 1
    image[label > 0] = 100 * ratio
    return image, label


def test_ratio_is_the_lesion_median_over_the_parenchyma_peak():
    image, label = _phantom(1.4)
    as_meta = [MetaTensor(torch.from_numpy(a.astype(np.float32))[None]) for a in (image, label)]
    ratios = lesion_ratio(*as_meta)
    assert ratios["lesion_ratio"] == pytest.approx(1.4, abs=0.02)
    assert ratios["other_tissue"] == pytest.approx(1.0, abs=0.02)
    assert lesion_ratio(as_meta[0], as_meta[1] * 0)["lesion_ratio"] is None


def test_correlation_over_a_scored_folder(tmp_path):
    cases, scored = [], []
    for i, (ratio, dice) in enumerate(((1.2, 0.1), (1.5, 0.5), (2.0, 0.9), (1.8, 0.3))):
        image, label = _phantom(ratio, seed=i)
        name = f"case{i}"
        nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / f"{name}_label.nii.gz")
        kind = "ms" if i == 3 else "glioma"
        cases.append({"image": str(tmp_path / f"{name}.nii.gz"), "label": str(tmp_path / f"{name}_label.nii.gz"),
                      "patient": name, "kind": kind, "fold": 0})
        scored.append({"id": name, "kind": kind, "fold": 0, "dice": dice, "true_volume_ml": 0.144,
                       "predicted_volume_ml": 0.1})
    (tmp_path / "score").mkdir()
    (tmp_path / "folds.json").write_text(json.dumps({"cases": cases}))
    (tmp_path / "score" / "metrics.json").write_text(json.dumps({"iterations": 10, "cases": scored}))

    result = lesion_ratios(str(tmp_path / "score"), folds_file=str(tmp_path / "folds.json"))
    assert result["spearman_ratio_dice"] == {"ms": None, "glioma": 1.0}  # one MS case: no correlation
    ratios = [c["lesion_ratio"] for c in result["cases"]]
    np.testing.assert_allclose(ratios, [1.2, 1.5, 2.0, 1.8], atol=0.03)
    assert "| case0 | 1.2" in (tmp_path / "score" / "lesion_ratio.md").read_text()
