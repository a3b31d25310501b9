"""Diffusion prepare-batch for ``SupervisedTrainer``: turns (image, mask) into a denoising example.

For a mask y in {0, 1} the clean sample is x_0 = 2y - 1. With t ~ U{0, ..., T-1} and eps ~ N(0, I),

    x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps          (a_t = alpha-bar at t, ``scheduler.add_noise``)

and the regression target is eps, x_0 or v = sqrt(a_t) eps - sqrt(1 - a_t) x_0 (``scheduler.get_velocity``)
for prediction types "epsilon", "sample" and "v_prediction". The network is called as
``network(x_t, timesteps=t, image=x, mask=x_0)`` (see ``bundle.model.network.DiscrepancyDiffusionSegNet.forward``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys

from bundle.model.scheduler import DDIMScheduler


class DiscrepancyDiffusionPrepareBatch(PrepareBatch):
    """Returns ``(x_t, target, (), {"timesteps": t, "image": x, "mask": x_0})`` for ``SupervisedTrainer``."""

    def __init__(self, scheduler: DDIMScheduler) -> None:
        self.scheduler = scheduler

    def target(self, x_0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Regression target for the scheduler's prediction type."""
        kind = self.scheduler.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "sample":
            return x_0
        return self.scheduler.get_velocity(x_0, noise, timesteps)

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ):
        image = torch.as_tensor(batchdata[CommonKeys.IMAGE]).to(device=device, non_blocking=non_blocking).float()
        mask = torch.as_tensor(batchdata[CommonKeys.LABEL]).to(device=device, non_blocking=non_blocking).float()
        x_0 = (mask > 0).float() * 2 - 1
        noise = torch.randn_like(x_0)
        timesteps = torch.randint(0, self.scheduler.num_train_timesteps, (x_0.shape[0],), device=x_0.device).long()
        x_t = self.scheduler.add_noise(original_samples=x_0, noise=noise, timesteps=timesteps)
        return x_t, self.target(x_0, noise, timesteps), (), {"timesteps": timesteps, "image": image, "mask": x_0}
