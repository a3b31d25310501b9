"""Scanner-independent FLAIR intensity scale: divide by the typical tissue intensity.

    x' = clip(x / s, 0, max_value),   T = {x_v : x_v > mean(x)}   (tissue: the volume mean separates it from air)
    s  = median(T)                                   (method "median")
    s  = argmax of the smoothed histogram of T       (method "mode": the peak of brain parenchyma)

so normal tissue maps to about 1 and FLAIR-hyperintense lesions to about 1.3-2 whatever the scanner's units; air
stays near 0. Each channel is scaled on its own. On skull-stripped FLAIR the two agree within 5 %; with skull, scalp,
muscle and CSF widen T, its median falls below the parenchyma (by 8-13 % on the two native open-MS scans) and
brain tissue would look lesion-bright after "median" scaling, while the histogram peak stays on the parenchyma.
"""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type

METHODS = ("median", "mode")


def check_method(method: str) -> str:
    """``method`` if it is one of ``METHODS``, else a ValueError."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def histogram_peak(values: torch.Tensor, bins: int = 300, sigma_bins: float = 3.0) -> torch.Tensor:
    """Centre of the highest bin of the Gaussian-smoothed histogram of ``values`` over [0, 3 * median]."""
    top = 3 * values.median()
    counts = torch.histc(values, bins=bins, min=0.0, max=float(top))
    radius = int(3 * sigma_bins)
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / sigma_bins) ** 2)
    smooth = torch.nn.functional.conv1d(counts[None, None], (kernel / kernel.sum())[None, None], padding=radius)[0, 0]
    return (smooth.argmax() + 0.5) * top / bins


def normalize_to_tissue(image: torch.Tensor, max_value: float = 5.0, method: str = "median") -> torch.Tensor:
    """Scale each channel of ``image`` (C, ...) so that its typical tissue intensity (``method``) is 1."""
    check_method(method)
    channels = []
    for channel in torch.as_tensor(image).float():
        channel = torch.nan_to_num(channel)
        tissue = channel[channel > channel.mean()]
        if not tissue.numel():
            scale = channel.abs().max()
        else:
            scale = histogram_peak(tissue) if method == "mode" else tissue.median()
        channels.append((channel / scale).clamp(0, max_value) if scale > 0 else torch.zeros_like(channel))
    return convert_to_dst_type(torch.stack(channels), dst=image, dtype=torch.float32)[0]


class NormalizeToTissued(MapTransform):
    """Dictionary version of :func:`normalize_to_tissue`."""

    def __init__(
        self, keys: KeysCollection, max_value: float = 5.0, method: str = "median", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.max_value, self.method = max_value, check_method(method)

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = normalize_to_tissue(d[key], self.max_value, self.method)
        return d
