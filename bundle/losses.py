"""Training loss of the discrepancy-conditioned denoiser.

    L = ||g_theta(x_t, t, f^I(x)) - target||^2 + lambda * ||f^I(x) - f^S(y)||^2

(both terms are means over elements). The first is the usual diffusion regression (target per prediction type,
see ``bundle.prepare_batch``); the second is the discrepancy term of Fan et al. (arXiv 2405.04974) that pulls the
image features toward the features of the true mask.
"""

from __future__ import annotations

import torch
from torch import nn


class DiscrepancyDiffusionLoss(nn.Module):
    """``loss((prediction, image_features, mask_features), target)``; ``discrepancy_weight`` is lambda."""

    def __init__(self, discrepancy_weight: float = 0.1) -> None:
        super().__init__()
        self.discrepancy_weight = discrepancy_weight

    def forward(self, output: tuple[torch.Tensor, torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        prediction, image_features, mask_features = output
        loss = torch.mean((prediction.float() - target.float()) ** 2)
        if self.discrepancy_weight:
            loss = loss + self.discrepancy_weight * torch.mean((image_features.float() - mask_features.float()) ** 2)
        return loss
