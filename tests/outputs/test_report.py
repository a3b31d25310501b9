"""Lesion statistics and the review rule on masks whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from bundle.outputs.report import (
    case_score,
    edge_fraction,
    lesion_summary,
    review_decision,
    sample_agreement,
    tissue_extent_mm,
)


def test_two_lesions_volumes_centroids_and_uncertainty():
    mask = np.zeros((20, 20, 10), dtype=np.uint8)
    mask[2:4, 2:4, 2:4] = 1  # 8 voxels, centroid (2.5, 2.5, 2.5)
    mask[10:15, 10:12, 5:6] = 1  # 10 voxels, centroid (12, 10.5, 5)
    uncertainty = np.zeros(mask.shape, dtype=np.float32)
    uncertainty[10:15, 10:12, 5:6] = 0.3
    affine = np.diag([2.0, 2.0, 4.0, 1.0])  # 16 mm^3 voxels
    affine[:3, 3] = [-10, 5, 0]
    s = lesion_summary(mask, uncertainty, affine)
    assert s["lesion_count"] == 2
    assert s["lesion_volume_ml"] == pytest.approx(18 * 16 / 1000)
    big, small = s["lesions"]  # sorted by volume
    assert big["volume_ml"] == pytest.approx(0.16) and small["volume_ml"] == pytest.approx(0.128)
    assert big["centroid_mm"] == pytest.approx([12 * 2 - 10, 10.5 * 2 + 5, 20])
    assert small["centroid_mm"] == pytest.approx([2.5 * 2 - 10, 2.5 * 2 + 5, 10])
    assert big["mean_uncertainty"] == pytest.approx(0.3) and small["mean_uncertainty"] == 0
    assert s["mean_uncertainty_in_lesions"] == pytest.approx(0.3 * 10 / 18, abs=1e-4)


def test_diagonal_neighbours_are_one_lesion_and_empty_mask_is_zero():
    mask = np.zeros((5, 5, 5))
    mask[1, 1, 1] = mask[2, 2, 2] = 1
    assert lesion_summary(mask, np.zeros_like(mask), np.eye(4))["lesion_count"] == 1
    empty = lesion_summary(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), np.eye(4))
    assert empty["lesion_count"] == 0 and empty["lesion_volume_ml"] == 0 and empty["mean_uncertainty_in_lesions"] == 0


@pytest.mark.parametrize(
    "lesion_u, score, extent, flagged",
    [
        (0.1, 0.07, [140, 180, 120], False),  # estimated Dice 0.93: the samples agree (a large glioma)
        (0.1, 0.45, [140, 180, 120], True),  # estimated Dice 0.55: much of the mask is disputed
        (0.3, 0.07, [140, 180, 120], True),  # the marked lesions themselves are uncertain
        (0.1, None, [140, 180, 120], False),  # no probability given: the score is left out of the rule
        (0.1, 0.07, [40, 60, 120], True),  # a small phantom or a knee, not a head
        (0.1, 0.07, [400, 380, 600], True),  # a whole body
    ],
)
def test_review_rule(lesion_u, score, extent, flagged):
    decision, rule = review_decision({"mean_uncertainty_in_lesions": lesion_u}, score, extent, 0.25, 0.4)
    assert decision is flagged
    assert rule.startswith("case score > 0.4 or mean_uncertainty_in_lesions > 0.25 or lesion volume outside")
    assert f"{extent[0]:g} x {extent[1]:g} mm" in rule and ("n/a" if score is None else f"{score:.4f}") in rule


def test_review_rule_flags_a_series_whose_headers_say_it_is_not_a_flair():
    calm = {"mean_uncertainty_in_lesions": 0.1}
    decision, rule = review_decision(calm, 0.07, [140, 180, 120], 0.25, 0.4, "EchoTime 2.46 ms < 50 ms: T1")
    assert decision is True and rule.endswith("EchoTime 2.46 ms < 50 ms: T1)")
    assert review_decision(calm, 0.07, [140, 180, 120], 0.25, 0.4, "")[0] is False


def test_tissue_extent_in_mm():
    from monai.data import MetaTensor

    image = torch.zeros(1, 50, 40, 30)
    image[0, 10:30, 5:25, 3:8] = 1.0
    affine = torch.diag(torch.tensor([1.5, 2.0, 3.0, 1.0]))
    assert tissue_extent_mm(MetaTensor(image, affine=affine)) == [30.0, 40.0, 15.0]


def test_estimated_dice_by_hand():
    from bundle.outputs.report import case_uncertainty_score, estimated_dice

    probability = np.zeros((4, 4, 4), np.float32)
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[0, 0, :] = 1
    probability[0, 0, :] = 0.75  # the 4 mask voxels, each lesion with probability 0.75
    probability[1, 0, :] = 0.25  # 4 voxels outside the mask that might be lesion too
    assert estimated_dice(probability, mask) == pytest.approx(2 * 3.0 / (4 + 4))
    assert case_uncertainty_score(probability, mask) == pytest.approx(0.25)
    assert estimated_dice(mask.astype(np.float32), mask) == 1.0  # the samples agree exactly
    assert estimated_dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))) == 1.0  # nothing, and sure of it
    assert estimated_dice(np.full((2, 2, 2), 0.2), np.zeros((2, 2, 2))) == 0.0  # empty mask, lesion possible


def test_estimated_dice_is_the_mean_dice_against_truths_drawn_from_the_probability():
    """If the truth were drawn voxel by voxel from p, the mean Dice of the mask would be the estimate."""
    from bundle.outputs.report import estimated_dice

    rng = np.random.default_rng(0)
    probability = np.clip(rng.normal(0.5, 0.35, (20, 20, 20)), 0, 1) * (rng.random((20, 20, 20)) < 0.3)
    mask = probability > 0.5
    draws = rng.random((200, *probability.shape)) < probability
    dice = 2 * (draws & mask).sum(axis=(1, 2, 3)) / (draws.sum(axis=(1, 2, 3)) + mask.sum())
    assert estimated_dice(probability, mask) == pytest.approx(dice.mean(), abs=0.005)
    assert 0.5 < dice.mean() < 0.95  # a case where the estimate is informative, not trivially 0 or 1


def test_report_gives_the_case_score_from_the_probability(tmp_path):
    import json

    from monai.data import MetaTensor

    from bundle.outputs.report import LesionReportd

    probability = torch.zeros(1, 8, 8, 8)
    probability[0, 2:4, 2:4, 2:4] = 0.75  # 8 mask voxels, each lesion with probability 0.75
    uncertainty = torch.where(probability > 0, 0.25, 0.05)
    image = MetaTensor(torch.ones(1, 8, 8, 8), affine=torch.eye(4), meta={"filename_or_obj": "case_flair.nii.gz"})
    data = {"image": image, "pred": MetaTensor((probability > 0.5).float(), affine=torch.eye(4)),
            "uncertainty": MetaTensor(uncertainty, affine=torch.eye(4)), "prob": MetaTensor(probability, affine=torch.eye(4))}
    LesionReportd(output_dir=str(tmp_path), probability_key="prob")(data)
    report = json.loads((tmp_path / "case_flair_report.json").read_text())
    assert report["estimated_dice"] == pytest.approx(2 * 6 / (8 + 6), abs=1e-4)
    assert report["uncertainty_score"] == pytest.approx(1 - report["estimated_dice"])
    assert report["lesion_volume_ml"] == pytest.approx(0.008)
    LesionReportd(output_dir=str(tmp_path))(data)  # without a probability there is no score
    assert json.loads((tmp_path / "case_flair_report.json").read_text())["uncertainty_score"] is None


def test_sample_agreement_is_the_pooled_pairwise_dice_of_the_samples():
    """From p and sigma alone, equal to the ratio of sums over all sample pairs computed from the samples."""
    rng = np.random.default_rng(3)
    for n in (2, 5, 8):
        samples = (rng.uniform(size=(n, 9, 8, 7)) < rng.uniform(0.05, 0.6, size=(1, 9, 8, 7))).astype(np.float64)
        samples[:, :2] = rng.uniform(size=(n, 2, 8, 7))  # some soft values too
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        expected = sum(2 * (samples[i] * samples[j]).sum() for i, j in pairs) / sum(
            samples[i].sum() + samples[j].sum() for i, j in pairs)
        p, sigma = samples.mean(0), samples.std(0)
        assert sample_agreement(p, sigma, n) == pytest.approx(expected, rel=1e-9)
    same = np.zeros((4, 4, 4))
    same[1:3, 1:3, 1:3] = 1
    assert sample_agreement(same, np.zeros_like(same), 8) == pytest.approx(1.0)  # all samples the same mask
    half = np.full((4, 4, 4), 0.5)  # two samples that never overlap
    assert sample_agreement(half, half, 2) == pytest.approx(0.0)
    assert sample_agreement(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)), 8) == 1.0
    assert sample_agreement(same, same * 0, 1) is None


def test_edge_fraction_counts_lesion_voxels_at_the_brain_outline():
    brain = np.zeros((40, 40, 40), bool)
    brain[5:35, 5:35, 5:35] = True
    rim = brain & ~ndimage.binary_erosion(brain, iterations=2)  # 2 voxels (2 mm) deep
    deep = np.zeros_like(brain)
    deep[18:22, 18:22, 18:22] = True
    assert edge_fraction(rim, brain, (1, 1, 1)) == 1.0
    assert edge_fraction(deep, brain, (1, 1, 1)) == 0.0
    assert edge_fraction(rim | deep, brain, (1, 1, 1)) == pytest.approx(rim.sum() / (rim.sum() + deep.sum()))
    assert edge_fraction(deep, brain, (0.1, 0.1, 0.1)) == 1.0  # in mm: with 0.1 mm voxels the cube is 1.3 mm deep
    assert edge_fraction(np.zeros_like(brain), brain, (1, 1, 1)) == 0.0


def test_case_score_kinds():
    assert case_score(0.8, 0.6, 0.1, "estimated_dice") == pytest.approx(0.2)
    assert case_score(0.8, 0.6, 0.1, "sample_agreement") == pytest.approx(0.4)
    assert case_score(0.8, 0.6, 0.1, "combined") == pytest.approx(0.4)
    assert case_score(0.8, 0.9, 0.7, "combined") == pytest.approx(0.7)  # a mask along the brain's outline
    assert case_score(0.8, 0.9, None, "combined") == pytest.approx(0.2)
    assert case_score(None, 0.9, 0.1, "estimated_dice") is None
    with pytest.raises(ValueError, match="case_score"):
        case_score(0.8, 0.9, 0.1, "entropy")


@pytest.mark.parametrize("load, brain, flagged", [
    (10.0, 1400.0, False), (0.2, 1400.0, True), (450.0, 1400.0, True), (10.0, 500.0, True), (10.0, 3000.0, True),
    (10.0, None, False),
])
def test_review_rule_flags_implausible_lesion_load_and_brain_volume(load, brain, flagged):
    calm = {"mean_uncertainty_in_lesions": 0.05, "lesion_volume_ml": load}
    decision, rule = review_decision(calm, 0.05, [140, 180, 120], 0.25, 0.4, "", (0.5, 300.0), brain, (800.0, 2400.0))
    assert decision is flagged
    assert "lesion volume outside [0.5, 300] mL" in rule and f"{load:g} mL" in rule
