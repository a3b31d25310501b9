"""Lesion-balanced patch centres: every lesion counts alike, whatever its size (docs/results.md, rule 17).

``RandCropByPosNegLabeld`` centres a positive patch on a lesion voxel drawn uniformly from the label's voxels, so a
lesion is chosen in proportion to its volume: a 10 mL glioma about a thousand times more often than a 10 mm³ MS
lesion. ``LesionBalancedIndicesd`` gives it the voxels to draw from instead: each lesion (26-connected component of
the label) contributes the same number M of entries,

    its voxels repeated in turn up to M          (a lesion smaller than M voxels)
    M of its voxels at an even stride             (a larger one)

so each lesion is the centre of a positive patch with probability 1 / K (K lesions), and the negative patches are
drawn from the tissue (image > image_threshold) outside every lesion, as ``RandCropByPosNegLabeld`` draws them
itself. Its ``pos``/``neg`` ratio and its moving of centres near the border into the volume are unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import MapTransform
from scipy import ndimage

FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def lesion_balanced_indices(label: np.ndarray, image: np.ndarray, per_lesion: int = 1000,
                            image_threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(foreground, background) flat voxel indices of a 3D ``label`` (lesion = label > 0) and ``image``, as in the
    module docstring: ``per_lesion`` entries per lesion, then the tissue outside the lesions."""
    lesion = np.asarray(label) > 0
    labels, count = ndimage.label(lesion, structure=FULL_CONNECTIVITY)
    background = np.flatnonzero((np.asarray(image) > image_threshold) & ~lesion)
    if not count:
        return np.zeros(0, dtype=np.int64), background
    voxels = np.flatnonzero(lesion)  # only the lesion voxels are sorted by lesion, not the whole volume
    component = labels.ravel()[voxels]
    by_lesion = np.argsort(component, kind="stable")
    order = voxels[by_lesion]
    starts = np.searchsorted(component[by_lesion], np.arange(1, count + 2))
    foreground = []
    for k in range(count):
        voxels = order[starts[k] : starts[k + 1]]
        if len(voxels) <= per_lesion:
            foreground.append(np.resize(voxels, per_lesion))
        else:
            foreground.append(voxels[np.linspace(0, len(voxels) - 1, per_lesion).astype(np.int64)])
    return np.concatenate(foreground), background


class LesionBalancedIndicesd(MapTransform):
    """Adds ``fg_key`` and ``bg_key``: the indices of the module docstring from ``label_key`` and the first channel of
    ``image_key``, for ``RandCropByPosNegLabeld(fg_indices_key=fg_key, bg_indices_key=bg_key)``."""

    def __init__(self, label_key: str = "label", image_key: str = "image", fg_key: str = "fg_indices",
                 bg_key: str = "bg_indices", per_lesion: int = 1000, image_threshold: float = 0.2) -> None:
        super().__init__([label_key, image_key])
        if per_lesion < 1:
            raise ValueError(f"per_lesion must be >= 1, got {per_lesion}")
        self.label_key, self.image_key, self.fg_key, self.bg_key = label_key, image_key, fg_key, bg_key
        self.per_lesion, self.image_threshold = per_lesion, image_threshold

    def __call__(self, data):
        d = dict(data)
        label = torch.as_tensor(d[self.label_key])[0].detach().cpu().numpy()
        image = torch.as_tensor(d[self.image_key])[0].detach().cpu().numpy()
        d[self.fg_key], d[self.bg_key] = lesion_balanced_indices(label, image, self.per_lesion, self.image_threshold)
        return d
