"""Known answers of the training loss (bundle/training/losses.py) and its wiring in configs/train.yaml."""

from __future__ import annotations

import pytest
import torch
from conftest import BUNDLE_ROOT
from monai.bundle import ConfigParser

from bundle.training.losses import DiscrepancyDiffusionLoss


def lesion_target(lesion_voxels: int = 16) -> torch.Tensor:
    """x_0 = 2y - 1 for a batch of two 8 x 8 slices; ``lesion_voxels`` of the first slice are lesion."""
    y = torch.zeros(2, 1, 8, 8)
    y.view(-1)[:lesion_voxels] = 1
    return y * 2 - 1


def features(value: float) -> torch.Tensor:
    return torch.full((2, 4, 4, 4), value)


def test_squared_error_and_discrepancy_terms():
    target = lesion_target()
    loss = DiscrepancyDiffusionLoss(discrepancy_weight=0.5)
    # perfect prediction: only the discrepancy term, lambda * c^2
    assert loss((target, features(1.0), features(0.0)), target).item() == pytest.approx(0.5)
    # everything predicted as background: 16 of 128 elements off by 2 -> mean squared error 4 * 16 / 128
    background = -torch.ones_like(target)
    assert loss((background, features(0.0), features(0.0)), target).item() == pytest.approx(0.5)


def test_dice_term_is_zero_for_the_true_mask_and_one_when_the_lesion_is_missed():
    target = lesion_target()
    loss = DiscrepancyDiffusionLoss(discrepancy_weight=0.0, dice_weight=2.0)
    assert loss((target, features(0.0), features(0.0)), target).item() == pytest.approx(0.0, abs=1e-4)
    background = -torch.ones_like(target)
    assert loss((background, features(0.0), features(0.0)), target).item() == pytest.approx(0.5 + 2.0, abs=1e-4)


def test_dice_term_pulls_an_under_called_lesion_up_more_than_squared_error_alone():
    target = lesion_target(lesion_voxels=4)  # a small lesion: 4 of 128 voxels
    under_called = torch.where(target > 0, -0.2, -1.0).requires_grad_(True)
    grads = {}
    for mu in (0.0, 1.0):
        under_called.grad = None
        DiscrepancyDiffusionLoss(discrepancy_weight=0.0, dice_weight=mu)(
            (under_called, features(0.0), features(0.0)), target
        ).backward()
        grads[mu] = under_called.grad[target > 0].mean().item()
    assert grads[0.0] < 0 and grads[1.0] < grads[0.0]  # descent raises x0_hat on the lesion, faster with Dice


def test_dice_term_refuses_targets_that_are_not_masks():
    noise_target = torch.randn(2, 1, 8, 8)  # epsilon-prediction target
    with pytest.raises(ValueError, match="prediction_type: sample"):
        DiscrepancyDiffusionLoss(dice_weight=1.0)((noise_target, features(0.0), features(0.0)), noise_target)


def test_training_config_passes_both_weights_to_the_loss():
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "train.yaml"))
    assert parser.get_parsed_content("loss").dice_weight == 0.0  # the base recipe is squared error + discrepancy
    parser["dice_weight"] = 1.5
    parser["discrepancy_weight"] = 0.2
    built = parser.get_parsed_content("loss", lazy=False)
    assert (built.dice_weight, built.discrepancy_weight) == (1.5, 0.2)


def test_coarse_head_term_is_dice_ce_on_the_mask():
    from monai.losses import DiceCELoss

    torch.manual_seed(0)
    mask = (torch.rand(4, 1, 8, 8) > 0.7).float()
    target = 2 * mask - 1
    prediction, features = torch.randn(4, 1, 8, 8), torch.randn(4, 2, 8, 8)
    logits = torch.randn(4, 1, 8, 8)
    base = DiscrepancyDiffusionLoss(discrepancy_weight=0.1)((prediction, features, features), target)
    full = DiscrepancyDiffusionLoss(discrepancy_weight=0.1, coarse_weight=0.5)(
        (prediction, features, features, logits), target)
    expected = base + 0.5 * DiceCELoss(sigmoid=True, batch=True)(logits, mask)
    assert full.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="x0-prediction"):
        DiscrepancyDiffusionLoss()((prediction, features, features, logits), torch.randn(4, 1, 8, 8))


def test_network_with_a_coarse_head_returns_its_logits_in_training():
    from bundle.model.network import DiscrepancyDiffusionSegNet

    net = DiscrepancyDiffusionSegNet(coarse_head=True, encoder_channels=(8, 16), denoiser_channels=(8, 16),
                                     attention_levels=(False, False), norm_num_groups=8, feature_channels=4)
    image, x_t = torch.randn(2, 3, 16, 16), torch.randn(2, 1, 16, 16)
    out = net(x_t, torch.tensor([3, 5]), image, mask=torch.ones(2, 1, 16, 16))
    assert len(out) == 4 and out[3].shape == (2, 1, 16, 16)
    plain = DiscrepancyDiffusionSegNet(encoder_channels=(8, 16), denoiser_channels=(8, 16),
                                       attention_levels=(False, False), norm_num_groups=8, feature_channels=4)
    assert len(plain(x_t, torch.tensor([3, 5]), image, mask=torch.ones(2, 1, 16, 16))) == 3
    with pytest.raises(ValueError, match="no coarse head"):
        plain.coarse_logits(torch.randn(1, 4, 16, 16))
