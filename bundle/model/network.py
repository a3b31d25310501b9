"""Discrepancy-conditioned denoiser for lesion masks (Fan, Cai, Niranjan, arXiv 2405.04974).

Three parts, all 2D (axial slices; the image condition carries neighbouring slices as channels):

* ``image_encoder`` f^I(x): MRI slice stack -> feature map F_I (``feature_channels`` x H x W).
* ``mask_encoder`` f^S(y): lesion mask -> feature map F_S of the same shape. Training only.
* ``denoiser`` eps_theta([x_t, F_I], t): MONAI ``DiffusionModelUNet`` whose input is the noisy mask x_t
  concatenated with F_I.

Training adds the discrepancy loss ``lambda * ||f^I(x) - f^S(y)||^2`` (see ``bundle.training.losses``) so the image
features are pulled toward a representation of the true mask. At inference f^I runs once per slice stack and its
features are reused for every DDIM step and every sample (``encode_image`` then repeated ``denoise``).

Optional coarse head (``coarse_head``): a 1 x 1 convolution on F_I giving a deterministic lesion logit per pixel,
``coarse_logits(F_I)``, trained with a Dice + cross-entropy term; the sampler can then run the diffusion only where
that coarse map has candidates (``bundle.model.inferer.DiffusionEnsembleInferer``, ``roi_threshold``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.nets import DiffusionModelUNet, UNet
from torch import nn


def _encoder(in_channels: int, out_channels: int, channels: Sequence[int], norm: str = "instance") -> nn.Module:
    """A small full-resolution MONAI U-Net used for both f^I and f^S (same shape so features are comparable)."""
    return UNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
        norm=norm,
    )


class DiscrepancyDiffusionSegNet(nn.Module):
    """Conditional denoiser with image encoder f^I and training-only mask encoder f^S.

    Args:
        image_channels: MRI modalities per slice (default 1: FLAIR).
        context_slices: slices on each side of the target slice given as extra condition channels (r);
            the image encoder sees ``image_channels * (2r + 1)`` channels.
        feature_channels: channels of F_I and F_S.
        encoder_channels: channels per level of the encoders' U-Net.
        denoiser_channels: channels per level of the ``DiffusionModelUNet``.
        attention_levels: self-attention per denoiser level (costly at high resolution).
        num_res_blocks: residual blocks per denoiser level.
        norm_num_groups: group-norm groups of the denoiser.
        encoder_norm: normalisation of the encoders' U-Net ("instance", as the shipped weights, or "batch", which
            fixed the deterministic baseline: docs/results.md).
        coarse_head: add the coarse head (module docstring).
    """

    def __init__(
        self,
        image_channels: int = 1,
        context_slices: int = 1,
        feature_channels: int = 16,
        encoder_channels: Sequence[int] = (16, 32, 64),
        denoiser_channels: Sequence[int] = (32, 64, 64),
        attention_levels: Sequence[bool] = (False, False, False),
        num_res_blocks: int = 1,
        norm_num_groups: int = 16,
        encoder_norm: str = "instance",
        coarse_head: bool = False,
    ) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.context_slices = context_slices
        self.feature_channels = feature_channels
        self.image_encoder = _encoder(
            image_channels * (2 * context_slices + 1), feature_channels, encoder_channels, encoder_norm
        )
        self.mask_encoder = _encoder(1, feature_channels, encoder_channels, encoder_norm)
        self.denoiser = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=1 + feature_channels,
            out_channels=1,
            channels=tuple(denoiser_channels),
            attention_levels=tuple(attention_levels),
            num_res_blocks=num_res_blocks,
            norm_num_groups=norm_num_groups,
            num_head_channels=denoiser_channels[-1] // 4,
        )
        self.coarse_head = nn.Conv2d(feature_channels, 1, kernel_size=1) if coarse_head else None

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """F_I = f^I(x); ``image`` is (B, image_channels * (2r + 1), H, W)."""
        return self.image_encoder(image)

    def coarse_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Deterministic lesion logits (B, 1, H, W) of the coarse head from F_I; needs ``coarse_head``."""
        if self.coarse_head is None:
            raise ValueError("this network has no coarse head (coarse_head: false)")
        return self.coarse_head(features)

    def encode_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """F_S = f^S(y); ``mask`` is (B, 1, H, W) in [-1, 1]."""
        return self.mask_encoder(mask)

    def denoise(self, x_t: torch.Tensor, timesteps: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Model output (noise, x_0 or v, per the scheduler's prediction type) for x_t given cached F_I."""
        return self.denoiser(torch.cat([x_t, features], dim=1), timesteps)

    def forward(
        self, x_t: torch.Tensor, timesteps: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None = None
    ):
        """One denoising call ``denoise(x_t, t, f^I(image))``.

        With ``mask`` (training) returns ``(prediction, F_I, F_S)`` so the loss can add the discrepancy term, and with
        a coarse head ``(prediction, F_I, F_S, coarse logits)``.
        """
        features = self.encode_image(image)
        prediction = self.denoise(x_t, timesteps, features)
        if mask is None:
            return prediction
        if self.coarse_head is None:
            return prediction, features, self.encode_mask(mask)
        return prediction, features, self.encode_mask(mask), self.coarse_logits(features)
