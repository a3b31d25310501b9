"""Confident lesions only (bundle.dev.confident_lesions): the hysteresis filter, rules 14 and 15, a scored folder."""

import os

import numpy as np
import pytest

from bundle.dev.confident_lesions import choose, compare_speed, confident_lesions, keep_confident_lesions


def _truth(shape=(24, 24, 12)):
    mask = np.zeros(shape, np.float32)
    mask[4:10, 4:10, 2:6] = 1  # the one real lesion
    return mask


def _prediction():
    """The real lesion, sure at its centre (p 0.95), and three specks: one whose peak is 0.75, one at 0.55 and one
    made of two voxels touching at a corner (26-connected) whose peak 0.85 lies in the other voxel."""
    mask, prob = _truth(), _truth() * 0.6
    prob[6, 6, 3] = 0.95
    mask[15, 15, 8], prob[15, 15, 8] = 1, 0.75
    mask[20, 3, 3], prob[20, 3, 3] = 1, 0.55
    mask[18, 18, 9] = mask[19, 19, 10] = 1
    prob[18, 18, 9], prob[19, 19, 10] = 0.6, 0.85
    return mask, prob


def test_keeps_the_lesions_whose_largest_probability_reaches_q():
    mask, prob = _prediction()
    np.testing.assert_array_equal(keep_confident_lesions(mask, prob, 0.5), mask > 0)
    kept = keep_confident_lesions(mask, prob, 0.7)
    assert kept[15, 15, 8] and not kept[20, 3, 3]
    assert kept[18, 18, 9] and kept[19, 19, 10]  # one component: its peak counts for both voxels
    np.testing.assert_array_equal(keep_confident_lesions(mask, prob, 0.9), _truth() > 0)
    assert not keep_confident_lesions(mask, prob, 0.96).any()
    assert not keep_confident_lesions(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), 0.7).any()


def _pooled(glioma_f1, ms_f1=0.4, ms_dice=0.5, glioma_dice=0.8):
    return {"ms": {"dice": ms_dice, "lesion_f1": ms_f1}, "glioma": {"dice": glioma_dice, "lesion_f1": glioma_f1}}


def test_rule_14_prefers_the_lower_q_within_the_tie_and_guards_ms():
    pooled = {0: _pooled(0.20), 0.6: _pooled(0.30), 0.7: _pooled(0.304), 0.8: _pooled(0.25)}
    assert choose(pooled) == {"candidate_peak": 0.6, "glioma_lesion_f1_gain": 0.1, "ms_lesion_f1_change": 0.0,
                              "ms_dice_change": 0.0, "glioma_dice_change": 0.0, "adopt": True}
    pooled[0.6] = _pooled(0.30, ms_f1=0.39)  # MS lesion F1 0.01 lower: rejected
    assert choose(pooled)["adopt"] is False
    assert choose({0: _pooled(0.20), 0.6: _pooled(0.21)})["adopt"] is False  # gains less than 0.02


def _flag(flagged, cases=30):
    return {"chosen": "estimated_dice", "cases": cases,
            "candidates": {"estimated_dice": {"coverage": 1 - flagged / cases}}}


def test_rule_15_uses_rule_12_terms_at_the_chosen_q():
    default = {"pooled": {0.7: _pooled(0.30)}, "flag": {0.7: _flag(4)}}
    close = {"pooled": {0.7: _pooled(0.285, ms_dice=0.492)}, "flag": {0.7: _flag(7)}}
    assert compare_speed(default, close, 0.7)["adopt"] is True
    for worse in ({"pooled": {0.7: _pooled(0.275)}, "flag": {0.7: _flag(4)}},  # glioma lesion F1 -0.025
                  {"pooled": {0.7: _pooled(0.30, glioma_dice=0.785)}, "flag": {0.7: _flag(4)}},  # Dice -0.015
                  {"pooled": {0.7: _pooled(0.30)}, "flag": {0.7: _flag(8)}}):  # 4 more flagged
        assert compare_speed(default, worse, 0.7)["adopt"] is False


def test_scores_a_crossval_folder_and_its_speed_candidate(scored_folder, tmp_path):
    mask, prob = _prediction()
    score_dir, folds_file = scored_folder({"ms_case": ("ms", _truth(), _truth()),
                                           "glioma_case": ("glioma", mask, _truth(), prob)})
    result = confident_lesions(score_dir, candidate_dir=score_dir, peaks="[0.7, 0.9]", folds_file=folds_file)
    glioma = {q: p["glioma"] for q, p in result["default"]["pooled"].items()}
    assert glioma[0.0]["lesion_f1"] == pytest.approx(2 * 0.25 / 1.25, abs=1e-4)  # 1 of 4 predicted lesions is real
    assert glioma[0.7]["lesion_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert glioma[0.9]["lesion_f1"] == 1.0 and glioma[0.9]["dice"] == 1.0
    assert result["default"]["pooled"][0.9]["ms"]["dice"] == 1.0  # p = 1 in the MS case's mask: nothing removed
    case = next(c for c in result["default"]["cases"] if c["id"] == "glioma_case")
    # recomputed on the filtered mask: 2 sum_M p / (|M| + sum p), the specks' probability still counted in sum p
    assert case["0.9"]["estimated_dice"] == pytest.approx(2 * 86.75 / (144 + 89.5), abs=1e-4)
    assert result["rule_14"]["candidate_peak"] == 0.9 and result["rule_14"]["adopt"] is True
    assert result["rule_15"]["glioma_lesion_f1_change"] == 0.0 and result["rule_15"]["adopt"] is True  # itself
    assert os.path.isfile(os.path.join(score_dir, "confident_lesions.md"))
