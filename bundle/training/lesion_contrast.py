"""Faint-lesion augmentation: pull the labelled lesions' hyperintensity toward normal tissue.

Most training gliomas are bright (median lesion-to-tissue FLAIR ratio 1.45-2.5 after ``NormalizeToTissued``); small
gliomas and MS lesions are often faint (1.26-1.32). ``RandLesionContrastd`` makes a labelled lesion look faint:

    x' = x - s (1 - a) max(x - w, 0),   a = (r - w) / (m - w),   r ~ U(ratio_range)

s = 1 on the label, falling off outside it as the Gaussian-blurred label (soft edges), w = normal-tissue level
(1 after ``NormalizeToTissued``), m = median image intensity inside the label. Afterwards the lesion's median is
about r. Only hyperintensity is lowered (voxels at or below w, e.g. a necrotic core, stay); the label is unchanged.
Nothing happens when the label is empty or the lesion is already at or below r.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import KeysCollection
from monai.utils import convert_to_dst_type
from scipy import ndimage

from bundle.training.paired_transform import RandImageLabeld


class RandLesionContrastd(RandImageLabeld):
    """Lower the contrast of the labelled lesion in (image, label) with probability ``prob``.

    Args:
        keys: (image key, label key); image (C, H, W, D) normalised FLAIR, label (1, H, W, D), lesion = label > 0.
        ratio_range: target median lesion-to-normal-tissue ratio r.
        tissue_level: normal-tissue intensity w.
        blur_sigma: Gaussian blur (voxels) of the label for the soft edge of the change outside it.
    """

    backend = [torch.Tensor.__name__]

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.5,
        ratio_range: tuple[float, float] = (1.15, 1.45),
        tissue_level: float = 1.0,
        blur_sigma: float = 1.0,
    ) -> None:
        super().__init__(keys, prob)
        if not tissue_level < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f"need tissue_level < ratio_range[0] <= ratio_range[1], got {tissue_level}, {ratio_range}")
        self.ratio_range, self.tissue_level, self.blur_sigma = ratio_range, tissue_level, blur_sigma

    def apply(self, d: dict, image_key, label_key) -> dict:
        image = d[image_key]
        img = torch.as_tensor(image).float().numpy()
        lesion = torch.as_tensor(d[label_key]).numpy()[0] > 0
        ratio = self.R.uniform(*self.ratio_range)
        if not lesion.any():
            return d
        w = self.tissue_level
        median = float(np.median(img[0][lesion]))
        if median <= ratio:
            return d
        keep = (ratio - w) / (median - w)
        soft = lesion.astype(np.float32)
        if self.blur_sigma > 0:
            soft = np.maximum(soft, ndimage.gaussian_filter(soft, self.blur_sigma))
        out = img - (soft * (1 - keep))[None] * np.maximum(img - w, 0)
        d[image_key] = convert_to_dst_type(out, dst=image, dtype=torch.float32)[0]
        return d
