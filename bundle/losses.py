"""Training loss of the discrepancy-conditioned denoiser.

    L = ||g_theta(x_t, t, f^I(x)) - target||^2 + lambda * ||f^I(x) - f^S(y)||^2 + mu * DiceLoss((x0_hat + 1) / 2, y)

(the squared terms are means over elements). The first is the usual diffusion regression (target per prediction type,
see ``bundle.prepare_batch``); the second is the discrepancy term of Fan et al. (arXiv 2405.04974) that pulls the
image features toward the features of the true mask. The optional third (mu = ``dice_weight``, default off) is a soft
Dice loss over the whole batch (``monai.losses.DiceLoss(batch=True)``) on the predicted clean mask, as in Diff-UNet
(Xing et al., MICCAI 2023): squared error alone lets the x0 prediction of a small, faint lesion drift toward the
background at high noise levels, so few of the N samples mark it. It needs x0-prediction (``prediction_type:
sample``), where the prediction is x0_hat and the target is x_0 = 2y - 1.
"""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch import nn


class DiscrepancyDiffusionLoss(nn.Module):
    """``loss((prediction, image_features, mask_features), target)``; ``discrepancy_weight`` is lambda,
    ``dice_weight`` is mu."""

    def __init__(self, discrepancy_weight: float = 0.1, dice_weight: float = 0.0) -> None:
        super().__init__()
        self.discrepancy_weight = discrepancy_weight
        self.dice_weight = dice_weight
        self.dice = DiceLoss(batch=True)

    def forward(self, output: tuple[torch.Tensor, torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        prediction, image_features, mask_features = output
        prediction, target = prediction.float(), target.float()
        loss = torch.mean((prediction - target) ** 2)
        if self.discrepancy_weight:
            loss = loss + self.discrepancy_weight * torch.mean((image_features.float() - mask_features.float()) ** 2)
        if self.dice_weight:
            if not bool(torch.all(target.abs() == 1)):
                raise ValueError(
                    "dice_weight needs x0-prediction (prediction_type: sample): the target must be the mask 2y - 1"
                )
            soft_mask = ((prediction + 1) / 2).clamp(0, 1)
            loss = loss + self.dice_weight * self.dice(soft_mask, (target + 1) / 2)
        return loss
