"""DDIM scheduler whose update uses the actual previous timestep of the inference schedule.

MONAI 1.6.1's ``DDIMScheduler.set_timesteps(K)`` spaces timesteps with ``linspace(T - 1, 0, K)`` (T=1000, K=10:
999, 888, ..., 111, 0) but ``step()`` assumes the previous timestep is ``t - T // K`` (999 -> 899). The update then
uses the wrong alpha-bar and the chain never lands on t = 0. This subclass takes the previous timestep from the
schedule itself and implements the DDIM update (Song et al. 2021, eq. 12 and 16):

    x0_hat  = (x_t - sqrt(1 - a_t) * eps_hat) / sqrt(a_t)               (prediction_type="epsilon")
    sigma_t = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)
    x_prev  = sqrt(a_prev) * x0_hat + sqrt(1 - a_prev - sigma_t^2) * eps_hat + sigma_t * z,   z ~ N(0, I)

where a_t is the cumulative product of alphas (alpha-bar) at t and a_prev the one at the previous scheduled
timestep (``final_alpha_cumprod`` after the last step). For ``prediction_type="sample"`` the network gives x0_hat
and eps_hat = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t); for ``"v_prediction"`` x0_hat = sqrt(a_t) x_t - sqrt(1 - a_t) v
and eps_hat = sqrt(a_t) v + sqrt(1 - a_t) x_t. With ``clip_sample`` x0_hat is clamped to [-1, 1] and eps_hat is
re-derived from the clamped x0_hat, so x_prev stays on the DDIM path through the clamped estimate.
"""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDIMScheduler as MonaiDDIMScheduler
from monai.networks.schedulers.ddim import DDIMPredictionType


class DDIMScheduler(MonaiDDIMScheduler):
    """MONAI ``DDIMScheduler`` with a schedule-consistent ``step`` (same constructor arguments)."""

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """MONAI's schedule, plus the map from each timestep to the next one (read once, not at every step)."""
        super().set_timesteps(num_inference_steps, device)
        schedule = [int(t) for t in self.timesteps.tolist()]
        self._previous = dict(zip(schedule, schedule[1:] + [-1]))

    def previous_timestep(self, timestep: int) -> int:
        """The scheduled timestep after ``timestep`` in the reverse chain, or -1 after the last one."""
        if timestep not in self._previous:
            raise ValueError(f"timestep {timestep} is not in the inference schedule {list(self._previous)}")
        return self._previous[timestep]

    def alpha_bar(self, timestep: int) -> torch.Tensor:
        """Cumulative alpha product at ``timestep`` (``final_alpha_cumprod`` for -1)."""
        return self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod

    def predict_x0_and_eps(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) from the network output, for the configured prediction type."""
        a_t = self.alpha_bar(timestep)
        if self.prediction_type == DDIMPredictionType.EPSILON:
            return (sample - (1 - a_t) ** 0.5 * model_output) / a_t**0.5, model_output
        if self.prediction_type == DDIMPredictionType.SAMPLE:
            return model_output, (sample - a_t**0.5 * model_output) / (1 - a_t) ** 0.5
        return a_t**0.5 * sample - (1 - a_t) ** 0.5 * model_output, a_t**0.5 * model_output + (1 - a_t) ** 0.5 * sample

    def step(  # type: ignore[override]
        self,
        model_output: torch.Tensor,
        timestep: int,
        sample: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update x_t -> x_prev; returns (x_prev, x0_hat)."""
        timestep = int(timestep)
        prev = self.previous_timestep(timestep)
        a_t, a_prev = self.alpha_bar(timestep), self.alpha_bar(prev)
        x0_hat, eps_hat = self.predict_x0_and_eps(model_output, timestep, sample)
        if self.clip_sample:
            x0_hat = torch.clamp(x0_hat, self.clip_sample_values[0], self.clip_sample_values[1])
            eps_hat = (sample - a_t**0.5 * x0_hat) / (1 - a_t) ** 0.5
        sigma = eta * ((1 - a_prev) / (1 - a_t)) ** 0.5 * (1 - a_t / a_prev) ** 0.5
        x_prev = a_prev**0.5 * x0_hat + (1 - a_prev - sigma**2).clamp(min=0) ** 0.5 * eps_hat
        if eta > 0:
            noise = torch.randn(sample.shape, dtype=sample.dtype, generator=generator, device=sample.device)
            x_prev = x_prev + sigma * noise
        return x_prev, x0_hat
