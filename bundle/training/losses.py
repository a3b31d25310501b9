"""Training loss of the discrepancy-conditioned denoiser.

    L = ||g_theta(x_t, t, f^I(x)) - target||^2 + lambda * ||f^I(x) - f^S(y)||^2 + mu * DiceLoss((x0_hat + 1) / 2, y)
        + nu * DiceCELoss(h(f^I(x)), y)

(the squared terms are means over elements). The first is the usual diffusion regression (target per prediction type,
see ``bundle.training.prepare_batch``); the second is the discrepancy term of Fan et al. (arXiv 2405.04974) that pulls the
image features toward the features of the true mask. The optional third (mu = ``dice_weight``, default off) is a soft
Dice loss over the whole batch (``monai.losses.DiceLoss(batch=True)``) on the predicted clean mask, as in Diff-UNet
(Xing et al., MICCAI 2023): squared error alone lets the x0 prediction of a small, faint lesion drift toward the
background at high noise levels, so few of the N samples mark it. It needs x0-prediction (``prediction_type:
sample``), where the prediction is x0_hat and the target is x_0 = 2y - 1. The fourth (nu = ``coarse_weight``) trains
the network's optional coarse head h (``bundle.model.network``) with MONAI's ``DiceCELoss`` (sigmoid, Dice over the whole
batch); it needs x0-prediction too, for y.
"""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss
from torch import nn


class DiscrepancyDiffusionLoss(nn.Module):
    """``loss((prediction, image_features, mask_features[, coarse_logits]), target)``; ``discrepancy_weight`` is
    lambda, ``dice_weight`` is mu, ``coarse_weight`` nu (used when the output carries coarse logits)."""

    def __init__(self, discrepancy_weight: float = 0.1, dice_weight: float = 0.0, coarse_weight: float = 1.0) -> None:
        super().__init__()
        self.discrepancy_weight = discrepancy_weight
        self.dice_weight = dice_weight
        self.coarse_weight = coarse_weight
        self.dice = DiceLoss(batch=True)
        self.dice_ce = DiceCELoss(sigmoid=True, batch=True)

    @staticmethod
    def _mask(target: torch.Tensor, term: str) -> torch.Tensor:
        """y = (target + 1) / 2 from the x0 target 2y - 1; a ValueError for other prediction types."""
        if not bool(torch.all(target.abs() == 1)):
            raise ValueError(
                f"{term} needs x0-prediction (prediction_type: sample): the target must be the mask 2y - 1"
            )
        return (target + 1) / 2

    def forward(self, output: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
        prediction, image_features, mask_features = output[:3]
        prediction, target = prediction.float(), target.float()
        loss = torch.mean((prediction - target) ** 2)
        if self.discrepancy_weight:
            loss = loss + self.discrepancy_weight * torch.mean((image_features.float() - mask_features.float()) ** 2)
        if self.dice_weight:
            soft_mask = ((prediction + 1) / 2).clamp(0, 1)
            loss = loss + self.dice_weight * self.dice(soft_mask, self._mask(target, "dice_weight"))
        if len(output) > 3 and self.coarse_weight:
            loss = loss + self.coarse_weight * self.dice_ce(output[3].float(), self._mask(target, "the coarse head"))
        return loss
