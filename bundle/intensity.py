"""Scanner-independent FLAIR intensity scale: divide by the median tissue intensity.

    x' = clip(x / median{x_v : x_v > mean(x)}, 0, max_value)

The volume mean separates tissue from air on skull-stripped and skull-on MRI alike, so normal tissue maps to about 1
and FLAIR-hyperintense lesions to about 1.3-2 whatever the scanner's units; air stays near 0. Each channel is
scaled on its own.
"""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type


def normalize_to_tissue(image: torch.Tensor, max_value: float = 5.0) -> torch.Tensor:
    """Scale each channel of ``image`` (C, ...) so that its median tissue intensity is 1."""
    channels = []
    for channel in torch.as_tensor(image).float():
        channel = torch.nan_to_num(channel)
        tissue = channel[channel > channel.mean()]
        scale = tissue.median() if tissue.numel() else channel.abs().max()
        channels.append((channel / scale).clamp(0, max_value) if scale > 0 else torch.zeros_like(channel))
    return convert_to_dst_type(torch.stack(channels), dst=image, dtype=torch.float32)[0]


class NormalizeToTissued(MapTransform):
    """Dictionary version of :func:`normalize_to_tissue`."""

    def __init__(self, keys: KeysCollection, max_value: float = 5.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.max_value = max_value

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = normalize_to_tissue(d[key], self.max_value)
        return d
