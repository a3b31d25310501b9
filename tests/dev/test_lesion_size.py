"""Lesion detection by size (bundle.dev.lesion_size): components, volumes, hits and the pooled bins."""

import json

import nibabel as nib
import numpy as np
import pytest

from bundle.dev.lesion_size import lesion_sizes, lesions_by_size, size_bin


def _masks(shape=(30, 30, 12)):
    """Truth: a 2-voxel lesion (missed) and a 4x4x4 lesion (found); prediction: part of the big lesion and a false
    3x3x3 lesion."""
    truth, pred = np.zeros(shape, bool), np.zeros(shape, bool)
    truth[2, 2, 2:4] = True
    truth[10:14, 10:14, 4:8] = True
    pred[11:13, 11:13, 5:7] = True
    pred[20:23, 20:23, 2:5] = True
    return pred, truth


def test_components_are_sized_and_matched_by_any_overlap():
    pred, truth = _masks()
    found = lesions_by_size(pred, truth, voxel_mm3=2.0)
    assert sorted(found["true"]) == [(4.0, False), (128.0, True)]
    assert sorted(found["predicted"]) == [(16.0, True), (54.0, False)]
    assert lesions_by_size(pred * False, truth, 1.0)["predicted"] == []


def test_bins():
    assert [size_bin(v) for v in (0.5, 30.0, 99.9, 300.0, 5000.0)] == ["0-30", "30-100", "30-100", "300-1000", ">=1000"]
    with pytest.raises(ValueError):
        size_bin(-1.0)


def test_pooled_over_a_scored_folder(tmp_path):
    pred, truth = _masks()
    affine = np.diag([2.0, 1.0, 1.0, 1.0])  # 2 mm³ voxels
    cases, scored = [], []
    for i, kind in enumerate(("ms", "ms", "glioma")):
        name = f"case{i}"
        (tmp_path / "score" / "fold_0").mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(truth.astype(np.uint8), affine), tmp_path / f"{name}_label.nii.gz")
        nib.save(nib.Nifti1Image(truth.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(pred.astype(np.uint8), affine), tmp_path / "score" / "fold_0" / f"{name}_seg.nii.gz")
        cases.append({"image": str(tmp_path / f"{name}.nii.gz"), "label": str(tmp_path / f"{name}_label.nii.gz"),
                      "patient": name, "kind": kind, "fold": 0})
        scored.append({"id": name, "kind": kind, "fold": 0})
    (tmp_path / "folds.json").write_text(json.dumps({"cases": cases}))
    (tmp_path / "score" / "metrics.json").write_text(json.dumps({"iterations": 10, "cases": scored}))

    result = lesion_sizes(str(tmp_path / "score"), folds_file=str(tmp_path / "folds.json"))
    ms = result["pooled"]["ms"]
    assert ms["0-30"] == {"true": 2, "found": 0, "recall": 0.0, "predicted": 2, "correct": 2, "precision": 1.0}
    assert ms["100-300"]["recall"] == 1.0 and ms["100-300"]["predicted"] == 0 and ms["100-300"]["precision"] is None
    assert ms["30-100"]["precision"] == 0.0  # the false 54 mm³ lesion, twice
    assert result["pooled"]["glioma"]["100-300"]["true"] == 1
    assert "| 0-30 | 2 | 0 | 0.0 | 2 | 2 | 1.0 |" in (tmp_path / "score" / "lesion_size.md").read_text()
