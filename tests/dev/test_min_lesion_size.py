"""Minimum lesion size (bundle.dev.min_lesion_size): sizes in mm³ on the case's own grid, the rule, a scored folder."""

import os

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.dev.min_lesion_size import choose, min_lesion_size, remove_small_lesions

SPACING = (1.0, 1.0, 3.0)  # one voxel = 3 mm³


def _mask(shape=(24, 24, 12)):
    mask = np.zeros(shape, np.float32)
    mask[4:10, 4:10, 2:6] = 1  # a lesion of 144 voxels = 432 mm³
    return mask


def _specks(mask):
    out = mask.copy()
    out[15, 15, 8] = out[20, 3, 3] = 1  # two lone voxels of 3 mm³
    out[18:20, 18, 9] = 1  # two voxels = 6 mm³
    out[16, 16, 9] = 1  # touches (15, 15, 8) only at a corner: 26-connected to it, 6 mm³ together
    return out


def test_remove_small_lesions_measures_mm3_on_the_grid():
    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    seg = MetaTensor(torch.from_numpy(_specks(_mask()))[None], affine=affine)
    assert remove_small_lesions(seg, 0) is seg
    kept_4 = remove_small_lesions(seg, 4)[0].numpy()  # only the 3 mm³ voxel goes
    assert kept_4.sum() == _mask().sum() + 4 and kept_4[20, 3, 3] == 0 and kept_4[16, 16, 9] == 1
    kept_7 = remove_small_lesions(seg, 7)[0].numpy()
    np.testing.assert_array_equal(kept_7, _mask())


def _pooled(ms_f1, ms_dice=0.5, glioma_dice=0.8):
    return {"ms": {"dice": ms_dice, "lesion_f1": ms_f1}, "glioma": {"dice": glioma_dice, "lesion_f1": 0.2}}


def test_rule_prefers_the_smaller_size_within_the_tie_and_checks_dice():
    pooled = {0: _pooled(0.30), 5: _pooled(0.40), 10: _pooled(0.404), 20: _pooled(0.35)}
    assert choose(pooled) == {"candidate_mm3": 5, "ms_lesion_f1_gain": 0.1, "ms_dice_change": 0.0,
                              "glioma_dice_change": 0.0, "adopt": True}
    pooled[5] = _pooled(0.40, glioma_dice=0.79)  # glioma Dice 0.01 lower: rejected
    assert choose(pooled)["adopt"] is False
    assert choose({0: _pooled(0.30), 5: _pooled(0.31)})["adopt"] is False  # gains less than 0.02


def test_scores_a_crossval_folder(scored_folder):
    score_dir, folds_file = scored_folder({"ms_case": ("ms", _specks(_mask()), _mask()),
                                           "glioma_case": ("glioma", _mask(), _mask())}, np.diag([*SPACING, 1.0]))
    result = min_lesion_size(score_dir, sizes="[4, 7]", folds_file=folds_file)
    ms = {v: p["ms"] for v, p in result["pooled"].items()}
    assert ms[0.0]["lesion_f1"] == pytest.approx(2 * 0.25 / 1.25, abs=1e-4)  # 1 of 4 predicted lesions is real
    assert ms[4.0]["lesion_f1"] == pytest.approx(2 * (1 / 3) / (4 / 3), abs=1e-4)
    assert ms[4.0]["lesion_recall"] == 1.0 and ms[4.0]["lesion_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert ms[7.0]["lesion_f1"] == 1.0 and ms[7.0]["dice"] == 1.0
    assert result["pooled"][7.0]["glioma"]["dice"] == 1.0
    assert result["rule"]["candidate_mm3"] == 7.0 and result["rule"]["adopt"] is True
    assert os.path.isfile(os.path.join(score_dir, "min_lesion_size.md"))
