"""Acquisition-resolution augmentation: make the working grid look like a thick-slice scan.

Real scans arrive with slices 0.7-5 mm thick along any axis; after resampling to the working grid a thick-slice
scan is blurred along that axis. ``RandThickSliced`` picks an axis (``axis_probs``) and a slice thickness
t ~ U(thickness_range) mm, averages the image over slabs of t mm along the axis ('area' downsampling) and
interpolates back (linear), so the image looks as if acquired with t mm slices. Labels are left as they are: the
target stays the fine-grid lesion.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type


class RandThickSliced(RandomizableTransform, MapTransform):
    """Simulate a thick-slice acquisition on channel-first 3D images (C, H, W, D) with an affine."""

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.3,
        thickness_range: tuple[float, float] = (3.0, 5.0),
        axis_probs: Sequence[float] = (0.15, 0.15, 0.7),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.thickness_range = thickness_range
        self.axis_probs = np.asarray(axis_probs, dtype=np.float64) / np.sum(axis_probs)

    def __call__(self, data):
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        axis = int(self.R.choice(3, p=self.axis_probs))
        thickness = self.R.uniform(*self.thickness_range)
        for key in self.key_iterator(d):
            image = d[key]
            spacing = float(np.linalg.norm(np.asarray(image.affine, dtype=np.float64)[:3, axis]))
            factor = thickness / spacing
            if factor <= 1.0:
                continue
            size = list(image.shape[1:])
            coarse = list(size)
            coarse[axis] = max(1, int(round(size[axis] / factor)))
            x = torch.as_tensor(image).float()[None]
            x = F.interpolate(F.interpolate(x, size=coarse, mode="area"), size=size, mode="trilinear", align_corners=False)
            d[key] = convert_to_dst_type(x[0], dst=image)[0]
        return d
