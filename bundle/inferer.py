"""Whole-volume DDIM ensemble inference: ``inferer(inputs, network)`` -> (lesion probability, uncertainty).

For each axial slice with tissue, f^I encodes the slice stack once; N noisy masks x_T ~ N(0, I) then run K DDIM
steps together (a batch of slices x N samples) reusing the cached features. Each final estimate x0_n in [-1, 1] is
mapped to a soft mask s_n = (x0_n + 1) / 2 and the slice's outputs are

    p     = mean_n s_n                 (lesion probability; the mask is p > 0.5)
    sigma = sqrt(mean_n (s_n - p)^2)   (uncertainty: spread of the N samples, 0 when they agree, at most 0.5)

Slices without tissue get p = sigma = 0 and cost nothing.
"""

from __future__ import annotations

import torch
from monai.inferers import Inferer
from monai.utils import convert_to_dst_type

from bundle.scheduler import DDIMScheduler
from bundle.slices import slice_stacks


class DiffusionEnsembleInferer(Inferer):
    """Sample N lesion masks per volume with K DDIM steps and return their mean and spread.

    Args:
        scheduler: the (stride-correct) DDIM scheduler the network was trained with.
        num_samples: N, masks sampled per slice, batched together.
        num_inference_steps: K, DDIM steps.
        eta: DDIM stochasticity (0 = deterministic given x_T).
        seed: seed of x_T (and of the step noise when eta > 0); outputs are reproducible for fixed settings.
        context_slices: neighbouring slices on each side given to f^I (must match the network).
        slice_batch_size: slices denoised together (memory = slice_batch_size * N masks).
        tissue_threshold: normalised intensity above which a voxel counts as tissue.
        min_tissue_fraction: slices with a smaller tissue fraction are skipped.
    """

    def __init__(
        self,
        scheduler: DDIMScheduler,
        num_samples: int = 8,
        num_inference_steps: int = 10,
        eta: float = 0.0,
        seed: int = 0,
        context_slices: int = 1,
        slice_batch_size: int = 16,
        tissue_threshold: float = 0.2,
        min_tissue_fraction: float = 0.005,
    ) -> None:
        super().__init__()
        if num_samples < 1 or num_inference_steps < 1:
            raise ValueError(f"num_samples ({num_samples}) and num_inference_steps ({num_inference_steps}) must be >= 1")
        self.scheduler = scheduler
        self.num_samples = num_samples
        self.num_inference_steps = num_inference_steps
        self.eta = eta
        self.seed = seed
        self.context_slices = context_slices
        self.slice_batch_size = slice_batch_size
        self.tissue_threshold = tissue_threshold
        self.min_tissue_fraction = min_tissue_fraction

    def tissue_slices(self, volume: torch.Tensor) -> torch.Tensor:
        """Indices of axial slices of ``volume`` (C, H, W, D) that contain tissue."""
        fraction = (volume[0] > self.tissue_threshold).float().mean(dim=(0, 1))
        return torch.nonzero(fraction >= self.min_tissue_fraction).flatten()

    @torch.no_grad()
    def sample_slices(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        """DDIM-sample N masks for each slice stack (S, C', H, W); returns soft masks (S, N, H, W)."""
        n, (s, _, h, w) = self.num_samples, stacks.shape
        x = torch.randn((s * n, 1, h, w), generator=generator, device=stacks.device, dtype=stacks.dtype)
        features = network.encode_image(stacks).repeat_interleave(n, dim=0)  # f^I once, reused for all steps
        x0 = x
        for t in self.scheduler.timesteps:
            timesteps = torch.full((s * n,), int(t), device=stacks.device, dtype=torch.long)
            output = network.denoise(x, timesteps, features)
            x, x0 = self.scheduler.step(output, int(t), x, eta=self.eta, generator=generator)
        return ((x0.float() + 1) / 2).clamp(0, 1).reshape(s, n, h, w)

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args, **kwargs) -> torch.Tensor:
        """``inputs`` (B, C, H, W, D) -> (B, 2, H, W, D): channel 0 lesion probability, channel 1 uncertainty.

        A MetaTensor input gives a MetaTensor output with the same metadata, so ``Invertd`` can map it back.
        """
        if inputs.ndim != 5:
            raise ValueError(f"expected a batch of 3D volumes (B, C, H, W, D), got shape {tuple(inputs.shape)}")
        images = torch.as_tensor(inputs).float()
        self.scheduler.set_timesteps(self.num_inference_steps, device=images.device)
        b, _, h, w, d = images.shape
        output = torch.zeros((b, 2, h, w, d), device=images.device)
        for i in range(b):
            generator = torch.Generator(device=images.device).manual_seed(self.seed)
            slices = self.tissue_slices(images[i])
            for start in range(0, len(slices), self.slice_batch_size):
                chunk = slices[start : start + self.slice_batch_size]
                soft = self.sample_slices(slice_stacks(images[i], chunk, self.context_slices), network, generator)
                output[i, 0, :, :, chunk] = soft.mean(dim=1).permute(1, 2, 0)
                output[i, 1, :, :, chunk] = soft.std(dim=1, unbiased=False).permute(1, 2, 0)
        return convert_to_dst_type(output, dst=inputs, dtype=torch.float32)[0]  # keeps MetaTensor geometry for Invertd
