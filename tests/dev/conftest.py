"""Fixtures of the developer-command tests: a ``crossval score`` folder written from small arrays."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture
def scored_folder(tmp_path):
    """``make(cases, affine)`` -> (score dir, folds file): ``cases`` {name: (kind, predicted mask, label)}, each written
    as image (random), label, and the fold-0 outputs seg, prob, uncertainty and brain (all ones) of a score at 100
    iterations."""

    def make(cases: dict, affine=np.eye(4)):
        fold_dir = tmp_path / "score_100" / "fold_0"
        fold_dir.mkdir(parents=True)
        folds, scored = [], []
        for name, (kind, pred, label) in cases.items():
            image = np.random.default_rng(0).random(pred.shape).astype(np.float32)
            nib.save(nib.Nifti1Image(image, affine), tmp_path / f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), tmp_path / f"{name}_label.nii.gz")
            outputs = {"seg": pred.astype(np.uint8), "prob": pred.astype(np.float32),
                       "uncertainty": np.zeros(pred.shape, np.float32), "brain": np.ones(pred.shape, np.uint8)}
            for suffix, data in outputs.items():
                nib.save(nib.Nifti1Image(data, affine), fold_dir / f"{name}_{suffix}.nii.gz")
            folds.append({"image": str(tmp_path / f"{name}.nii.gz"), "label": str(tmp_path / f"{name}_label.nii.gz"),
                          "patient": name, "kind": kind, "fold": 0})
            scored.append({"id": name, "kind": kind, "fold": 0})
        (tmp_path / "folds.json").write_text(json.dumps({"cases": folds}))
        (tmp_path / "score_100" / "metrics.json").write_text(json.dumps({"iterations": 100, "cases": scored}))
        return str(tmp_path / "score_100"), str(tmp_path / "folds.json")

    return make
