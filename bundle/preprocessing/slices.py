"""2.5D slicing: an axial slice plus its neighbours, with the neighbours folded into channels.

A volume (C, H, W, D) gives, for slice z, the stack x[:, :, :, z - r : z + r + 1] reshaped channel-major to
(C * (2r + 1), H, W); slices beyond the volume repeat the edge slice. Training crops and inference use this one
ordering so the image encoder always sees the same channel layout.
"""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform


def stack_to_channels(stack: torch.Tensor) -> torch.Tensor:
    """(C, H, W, S) slab -> (C * S, H, W), channel-major."""
    c, h, w, s = stack.shape
    return stack.permute(0, 3, 1, 2).reshape(c * s, h, w)


def slice_stacks(volume: torch.Tensor, slices: torch.Tensor, context_slices: int) -> torch.Tensor:
    """Stacks for the axial ``slices`` of ``volume`` (C, H, W, D) -> (len(slices), C * (2r + 1), H, W)."""
    depth = volume.shape[-1]
    offsets = torch.arange(-context_slices, context_slices + 1, device=slices.device)
    index = (slices[:, None] + offsets[None, :]).clamp(0, depth - 1)  # (S, 2r+1), edge slices repeat
    slabs = volume[..., index]  # (C, H, W, S, 2r+1)
    c, h, w, s, k = slabs.shape
    return slabs.permute(3, 0, 4, 1, 2).reshape(s, c * k, h, w)


def tissue_slices(volume: torch.Tensor, threshold: float = 0.2, min_fraction: float = 0.005) -> torch.Tensor:
    """Indices of axial slices of ``volume`` (C, H, W, D) where at least ``min_fraction`` of channel 0 > ``threshold``."""
    fraction = (volume[0] > threshold).float().mean(dim=(0, 1))
    return torch.nonzero(fraction >= min_fraction).flatten()


class SlabToSliced(MapTransform):
    """Training crop (C, H, W, 2r+1) -> 2D sample: image stack (C * (2r+1), H, W), label centre slice (1, H, W)."""

    def __init__(self, image_keys: KeysCollection = "image", label_keys: KeysCollection = "label") -> None:
        self.image_keys = [image_keys] if isinstance(image_keys, str) else list(image_keys)
        self.label_keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
        super().__init__(keys=self.image_keys + self.label_keys)

    def __call__(self, data):
        d = dict(data)
        for key in self.image_keys:
            d[key] = stack_to_channels(d[key])
        for key in self.label_keys:
            label = d[key]
            d[key] = label[..., label.shape[-1] // 2]
        return d
