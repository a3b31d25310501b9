"""Transforms that adapt the bundle's inference pipeline to MONAI Label 0.8.5 (added by ``label-serve`` only)."""

from __future__ import annotations

import torch
from monai.transforms import MapTransform


class StashKeyd(MapTransform):
    """Move ``keys`` to ``"_" + key`` (or back, with ``restore``).

    MONAI Label puts the string ``image_path`` into the data; MONAI >= 1.6 ``Spacingd`` treats every
    ``image_*`` entry as a metadata dict and fails on it. Hiding it during preprocessing and restoring it before
    MONAI Label's writer avoids that.
    """

    def __init__(self, keys, restore: bool = False) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.restore = restore

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d) if not self.restore else self.keys:
            source, target = ("_" + key, key) if self.restore else (key, "_" + key)
            if source in d:
                d[target] = d.pop(source)
        return d


class LesionMaskAsPredd(MapTransform):
    """``pred`` = the binary lesion mask without its channel axis (uint8), the label MONAI Label writes.

    The bundle's postprocessing keeps ``pred`` as two float channels (mean of the samples, uncertainty) and puts
    the thresholded mask in ``pred_lesion``.
    """

    def __init__(self, mask_key: str = "pred_lesion", pred_key: str = "pred") -> None:
        super().__init__([mask_key])
        self.mask_key, self.pred_key = mask_key, pred_key

    def __call__(self, data):
        d = dict(data)
        d[self.pred_key] = torch.as_tensor(d[self.mask_key] > 0.5).to(torch.uint8)[0]
        return d
