"""Brain extraction by a trained network (deepbet), and the brain mask that bounds every lesion the bundle writes.

deepbet (Fisch et al., Computers in Biology and Medicine 2024; MIT; its two TorchScript networks ship inside the
PyPI wheel, so it runs offline) outlines the brain on the resampled RAS scan:

    M  = deepbet(x) > 0.5                         (largest connected part, holes filled)
    L  = median{x_v : v in M}                     (the parenchyma level)
    f  = |{v not in M : x_v > 0.1 L}| / |M|       (tissue outside the brain, relative to the brain)
    skull on  <=>  f > f_skull                    (f_skull = 0.2)
    x' = x on M and 0 elsewhere                   (skull on; a skull-stripped scan passes unchanged)
    B  = M (skull on),  fill_holes(x > 0) (skull off: the input's own brain)

Measured on ../shared: f = 0.68 and 0.76 on the two native skull-on FLAIRs (open_ms_data longitudinal_raw),
0.011-0.023 on the skull-stripped MNI, MSLesSeg, BraTS and MSD scans; deepbet takes 2-4 s per scan on 2 CPU cores.
B travels with the image through cropping and padding (key ``brain``) and :class:`MaskOutsideBraind` sets the
lesion probability and uncertainty to 0 outside it, so no lesion voxel is written outside the brain.
"""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type
from scipy import ndimage

STRIPPED_META_KEY = "skull_stripped_by_bundle"


@functools.lru_cache(maxsize=1)
def deepbet_model():
    """deepbet's ``BrainExtraction`` (GPU when there is one), loaded once per process."""
    from deepbet import BrainExtraction  # imported here: it loads pandas and its networks

    return BrainExtraction(no_gpu=not torch.cuda.is_available())


def deepbet_mask(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """M of the module docstring for a 3D ``volume`` on grid ``affine``; all False when deepbet finds no head."""
    image = nib.Nifti1Image(np.ascontiguousarray(volume, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    try:
        _, mask, _ = deepbet_model().run(image)
    except AssertionError:  # deepbet: "Not enough foreground to calculate bounding box"
        return np.zeros(volume.shape, bool)
    return np.asarray(mask.dataobj) > 0


def tissue_outside(volume: np.ndarray, mask: np.ndarray) -> float:
    """f of the module docstring: tissue (x > 0.1 L, L = median inside ``mask``) outside ``mask``, relative to it."""
    if not mask.any():
        return 0.0
    level = float(np.median(volume[mask]))
    return float(((volume > 0.1 * level) & ~mask).sum()) / float(mask.sum())


def own_brain(volume: np.ndarray) -> np.ndarray:
    """B of a scan without skull: its non-zero voxels, holes filled."""
    return ndimage.binary_fill_holes(volume > 0)


class BrainExtractiond(MapTransform):
    """Strip the skull where the first channel has one (all channels), and store the brain mask B under ``brain_key``.

    The image records whether it was stripped in ``meta["skull_stripped_by_bundle"]`` (the report shows it).

    Args:
        keys: image keys; images (C, H, W, D) MetaTensors with an affine.
        brain_key: where B goes (uint8 MetaTensor (1, H, W, D) on the image's grid).
        skull_fraction: f_skull of the module docstring.
        extract: False: never strip (B is the scan's own non-zero part), e.g. for scans known to be stripped.
    """

    def __init__(
        self,
        keys: KeysCollection,
        brain_key: str = "brain",
        skull_fraction: float = 0.2,
        extract: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.brain_key, self.skull_fraction, self.extract = brain_key, skull_fraction, extract

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            affine = np.asarray(image.affine, dtype=np.float64) if hasattr(image, "affine") else np.eye(4)
            voxels = torch.as_tensor(image).float().cpu().numpy()
            stripped = False
            if self.extract:
                mask = deepbet_mask(voxels[0], affine)
                stripped = tissue_outside(voxels[0], mask) > self.skull_fraction
            if stripped:
                d[key] = convert_to_dst_type(np.where(mask[None], voxels, 0.0), dst=image, dtype=torch.float32)[0]
            else:
                mask = own_brain(voxels[0])
            if isinstance(d[key], MetaTensor):
                d[key].meta[STRIPPED_META_KEY] = stripped  # read by the report
            brain = torch.as_tensor(mask[None].astype(np.uint8))
            d[self.brain_key] = MetaTensor(brain, affine=torch.as_tensor(affine)) if hasattr(image, "affine") else brain
        return d


class MaskOutsideBraind(MapTransform):
    """Set ``keys`` (C, H, W, D: lesion probability, uncertainty) to 0 where the brain mask ``brain_key`` is 0.

    Both on the same grid (the preprocessed one). Without a brain mask in the data the keys pass unchanged.
    """

    def __init__(self, keys: KeysCollection, brain_key: str = "brain", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.brain_key = brain_key

    def __call__(self, data):
        d = dict(data)
        if self.brain_key not in d:
            return d
        brain = torch.as_tensor(d[self.brain_key])
        for key in self.key_iterator(d):
            pred = d[key]
            if brain.shape[-3:] != pred.shape[-3:]:
                raise ValueError(f"brain mask {tuple(brain.shape)} and {key} {tuple(pred.shape)} are on other grids")
            d[key] = pred * (brain.reshape(brain.shape[-3:]) > 0).to(device=pred.device, dtype=pred.dtype)
        return d
