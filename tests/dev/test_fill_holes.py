"""Hole filling (bundle.dev.fill_holes): 3D against per-slice holes, the brain cut, the rule, a scored folder."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.dev.fill_holes import choose, fill_holes, fill_lesion_holes


def _shell(shape=(20, 20, 12)):
    """A closed box shell (a core enclosed in 3D) and a tube open at both ends (holes only slice by slice)."""
    label = np.zeros(shape, np.float32)
    label[2:9, 2:9, 2:9] = 1  # closed shell around the core [3:8, 3:8, 3:8]
    label[12:19, 12:19, 2:9] = 1  # tube around [13:18, 13:18, all slices]: open at both ends
    seg = label.copy()
    seg[3:8, 3:8, 3:8] = 0
    seg[13:18, 13:18, 2:9] = 0
    return seg, label


def _meta(array):
    return MetaTensor(torch.from_numpy(array)[None], affine=torch.eye(4, dtype=torch.float64))


def test_3d_fills_only_enclosed_holes_and_2d_every_slice():
    seg, label = _shell()
    unchanged = _meta(seg)
    assert fill_lesion_holes(unchanged, "none") is unchanged
    filled_3d = fill_lesion_holes(_meta(seg), "3d")[0].numpy()
    assert filled_3d[3:8, 3:8, 3:8].all() and not filled_3d[13:18, 13:18, 2:9].any()
    filled_2d = fill_lesion_holes(_meta(seg), "2d")[0].numpy()
    np.testing.assert_array_equal(filled_2d, label)  # both cores: every slice of them is enclosed in plane
    assert filled_2d.sum() > filled_3d.sum() > seg.sum()
    with pytest.raises(ValueError, match="mode"):
        fill_lesion_holes(_meta(seg), "4d")


def test_filled_voxels_stay_inside_the_brain():
    seg, _ = _shell()
    brain = np.ones_like(seg)
    brain[:, :, 5:] = 0  # the brain ends half way through the shell
    filled = fill_lesion_holes(_meta(seg), "3d", _meta(brain))[0].numpy()
    assert filled[..., 5:].sum() == 0 and filled[3:8, 3:8, 3:5].all()


def _pooled(glioma_dice, ms_dice=0.5, ms_f1=0.3, glioma_f1=0.2):
    return {"ms": {"dice": ms_dice, "lesion_f1": ms_f1}, "glioma": {"dice": glioma_dice, "lesion_f1": glioma_f1}}


def test_rule_prefers_3d_within_the_tie_and_checks_the_other_figures():
    pooled = {"none": _pooled(0.75), "3d": _pooled(0.77), "2d": _pooled(0.771)}
    assert choose(pooled) == {"candidate": "3d", "glioma_dice_gain": 0.02, "ms_dice_change": 0.0,
                              "ms_lesion_f1_change": 0.0, "glioma_lesion_f1_change": 0.0, "adopt": True}
    pooled["2d"] = _pooled(0.80, ms_f1=0.29)
    assert choose(pooled)["candidate"] == "2d" and choose(pooled)["adopt"] is False  # MS F1 0.01 lower
    assert choose({"none": _pooled(0.75), "3d": _pooled(0.755), "2d": _pooled(0.70)})["adopt"] is False


def test_scores_a_crossval_folder(scored_folder):
    seg, label = _shell()
    score_dir, folds_file = scored_folder({"ms_case": ("ms", seg, label), "glioma_case": ("glioma", seg, label)})
    result = fill_holes(score_dir, folds_file=folds_file)
    assert result["pooled"]["2d"]["glioma"]["dice"] == 1.0
    assert result["pooled"]["none"]["glioma"]["dice"] < result["pooled"]["3d"]["glioma"]["dice"] < 1.0
    assert result["rule"]["candidate"] == "2d" and result["rule"]["adopt"] is True
    with open(f"{score_dir}/fill_holes.md") as f:
        text = f.read()
    assert text.count("| 3d |") == 1 and "Rule 8: candidate 2d: glioma Dice +" in text and text.endswith(": adopt\n")
