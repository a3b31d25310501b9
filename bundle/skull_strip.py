"""Keep the brain, drop scalp, skull and face when a FLAIR scan has them: a morphological brain mask.

The model was trained on skull-stripped scans. On a scan with the skull on it under-calls (the scalp changes what
the image encoder's normalisation sees) and the scalp can take over the intensity scale (docs/results.md, "Skull on,
with labels"). On FLAIR the brain parenchyma is the largest bright region, separated from the scalp by the dark
skull and CSF:

    L  = tissue level: L_0 = median{x > mean(x)},  L_{i+1} = median{x > L_i / 2}   (until it settles)
    C  = {x > t L}                                  (bright enough to be parenchyma or lesion; t = 0.5)
    E  = {v in C : dist(v, outside C) > r}          (erosion by r mm cuts the thin links to the scalp)
    B  = fill_holes({v : dist(v, K) <= r + m})      (K = the largest connected part of E, grown back by r plus a
                                                     margin of m mm; holes are the ventricles)
    f  = |{x > 0.1 L} outside B| / |B|              (tissue outside the brain, relative to the brain)
    x' = x on B and 0 elsewhere if f > f_skull, else x unchanged

Distances are in mm (Euclidean distance transform with the voxel spacing), so thick slices and any orientation are
handled alike. f is 0.5-1.1 on the scans with a skull measured (two native FLAIRs, labelled cases inside three real
heads) and below 0.05 on the skull-stripped scans of ../shared, so those (and every scan already skull-stripped)
pass unchanged (f_skull = 0.2). It fails safe: where B does not separate brain from scalp it holds the whole head,
f is small and the scan passes unchanged, as with ``skull_strip: false`` (seen with Colin27's T1 head as 5 mm
slices, whose top slabs blur brain and scalp together; and expected where tissue dimmer than half the parenchyma
outweighs the brain, so that L settles on it). Lesions count as brain (brighter than t L); one cut off from the
brain by more than r mm of dark tissue would be lost (none is in the shared data).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type
from scipy import ndimage

STRIPPED_META_KEY = "skull_stripped_by_bundle"


def tissue_level(volume: np.ndarray, iterations: int = 20) -> float:
    """L: the median of the voxels above half the previous level, from the median of those above the mean."""
    level = float(np.median(volume[volume > volume.mean()])) if volume.max() > volume.mean() else float(volume.max())
    for _ in range(iterations):
        above = volume[volume > level / 2]
        new = float(np.median(above)) if above.size else level
        if abs(new - level) <= 1e-3 * max(abs(level), 1e-12):
            return new
        level = new
    return level


def brain_mask(
    volume: np.ndarray,
    spacing,
    level: float | None = None,
    threshold: float = 0.5,
    erosion_mm: float = 4.0,
    margin_mm: float = 3.0,
) -> np.ndarray:
    """B of the module docstring for a 3D FLAIR ``volume`` with voxel ``spacing`` (mm); all False if no tissue."""
    spacing = tuple(float(s) for s in spacing)
    level = tissue_level(volume) if level is None else level
    candidate = volume > threshold * level
    if level <= 0 or not candidate.any():
        return np.zeros(volume.shape, bool)
    core = ndimage.distance_transform_edt(candidate, sampling=spacing) > erosion_mm
    if not core.any():  # thinner than 2 r everywhere: keep the candidate itself
        core = candidate
    labels, count = ndimage.label(core)
    largest = labels == 1 + int(np.argmax(ndimage.sum_labels(core, labels, range(1, count + 1))))
    grown = ndimage.distance_transform_edt(~largest, sampling=spacing) <= erosion_mm + margin_mm
    return ndimage.binary_fill_holes(grown)


def tissue_outside(volume: np.ndarray, mask: np.ndarray, level: float) -> float:
    """f of the module docstring: tissue (x > 0.1 L) outside ``mask`` as a fraction of the mask's volume."""
    return float(((volume > 0.1 * level) & ~mask).sum()) / max(int(mask.sum()), 1)


class SkullStripd(MapTransform):
    """Where the first channel has a skull (f > ``skull_fraction``), set every voxel outside B to 0 in all channels.

    A MetaTensor image records which it was in ``meta["skull_stripped_by_bundle"]`` (the report shows it).

    Args:
        keys: image keys; images (C, H, W, D) with an affine (MetaTensor) or 1 mm voxels.
        skull_fraction: f_skull of the module docstring.
        threshold, erosion_mm, margin_mm: as :func:`brain_mask`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        skull_fraction: float = 0.2,
        threshold: float = 0.5,
        erosion_mm: float = 4.0,
        margin_mm: float = 3.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.skull_fraction = skull_fraction
        self.threshold, self.erosion_mm, self.margin_mm = threshold, erosion_mm, margin_mm

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            affine = np.asarray(image.affine, dtype=np.float64) if hasattr(image, "affine") else np.eye(4)
            spacing = np.linalg.norm(affine[:3, :3], axis=0)
            voxels = torch.as_tensor(image).float().numpy()
            level = tissue_level(voxels[0])
            mask = brain_mask(voxels[0], spacing, level, self.threshold, self.erosion_mm, self.margin_mm)
            stripped = bool(mask.any() and tissue_outside(voxels[0], mask, level) > self.skull_fraction)
            if stripped:
                d[key] = convert_to_dst_type(np.where(mask[None], voxels, 0.0), dst=image, dtype=torch.float32)[0]
            if isinstance(d[key], MetaTensor):
                d[key].meta[STRIPPED_META_KEY] = stripped  # read by the report
        return d
