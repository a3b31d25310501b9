"""MS-like lesions synthesised on real anatomy from real lesion masks (training augmentation).

A real consensus MS lesion mask (MNI space) is mapped onto the target brain by matching the two brains' bounding
boxes (an axis-aligned affine in RAS world space), blurred for partial volume and written into the FLAIR as

    x' = (1 - s) x + s (r * w + n),    s = soft lesion mask in [0, 1], r ~ U(ratio_range), n ~ N(0, noise_std^2)

where w is the normal-tissue level of the intensity-normalised image (1 after ``NormalizeToTissued``; measured
lesion-to-white-matter FLAIR ratio on the labelled MS case: 1.34-1.40). Voxels near existing labelled lesions or
outside tissue get no synthetic lesion; the label becomes label | (s > 0.5). Use only on anatomy whose lesions are
all labelled.
"""

from __future__ import annotations

from typing import Sequence

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.utils import convert_to_dst_type
from scipy import ndimage

from bundle.training.paired_transform import RandImageLabeld


def bounding_box_world(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max world (mm) coordinates of the voxels of ``mask``."""
    idx = np.argwhere(mask)
    corners = np.stack([idx.min(0), idx.max(0)]).astype(np.float64)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    return world.min(0), world.max(0)


def resample_by_brain_box(
    source: np.ndarray,
    source_affine: np.ndarray,
    source_box: tuple[np.ndarray, np.ndarray],
    target_box: tuple[np.ndarray, np.ndarray],
    target_affine: np.ndarray,
    target_shape: tuple[int, ...],
) -> np.ndarray:
    """``source`` on the target grid (trilinear), mapping the source brain box onto the target brain box.

    world_s = lo_s + (world_t - lo_t) / scale,   scale = (hi_t - lo_t) / (hi_s - lo_s)   (per axis, RAS mm)
    """
    (lo_s, hi_s), (lo_t, hi_t) = source_box, target_box
    scale = (hi_t - lo_t) / np.maximum(hi_s - lo_s, 1e-3)
    world_t2s = np.eye(4)
    world_t2s[:3, :3] = np.diag(1 / scale)
    world_t2s[:3, 3] = lo_s - lo_t / scale
    vox = np.linalg.inv(source_affine) @ world_t2s @ target_affine  # target voxel -> source voxel
    return ndimage.affine_transform(source, vox[:3, :3], vox[:3, 3], output_shape=target_shape, order=1)


class SynthesizeLesionsd(RandImageLabeld):
    """Insert one real MS lesion pattern into (image, label) with probability ``prob``.

    Args:
        keys: (image key, label key); image (C, H, W, D) normalised FLAIR in RAS, label (1, H, W, D).
        lesion_masks: paths of real lesion masks (any grid; their nonzero voxels are lesions).
        brain_mask: path of a brain mask (or image whose nonzero voxels are brain) on the lesion masks' grid.
        ratio_range: lesion-to-normal-tissue intensity ratio r.
        blur_sigma: Gaussian blur (voxels) of the inserted mask, for partial-volume edges.
        noise_std: intensity noise inside the lesion.
        exclusion_margin: voxels around existing labels that get no synthetic lesion.
        tissue_threshold: voxels of the image below this get no synthetic lesion.
    """

    backend = [torch.Tensor.__name__]

    def __init__(
        self,
        keys: KeysCollection,
        lesion_masks: Sequence[str],
        brain_mask: str,
        prob: float = 0.5,
        ratio_range: tuple[float, float] = (1.25, 1.7),
        blur_sigma: float = 0.7,
        noise_std: float = 0.04,
        exclusion_margin: int = 3,
        tissue_threshold: float = 0.5,
    ) -> None:
        super().__init__(keys, prob)
        if prob > 0 and not lesion_masks:
            raise ValueError("lesion_masks is empty: give real lesion mask files, or prob=0 to switch synthesis off")
        self.masks = [self._load(path) for path in lesion_masks] if prob > 0 else []
        if prob > 0:
            brain = nib.load(brain_mask)
            self.source_box = bounding_box_world(np.asarray(brain.dataobj) > 0, brain.affine)
        self.ratio_range, self.blur_sigma, self.noise_std = ratio_range, blur_sigma, noise_std
        self.exclusion_margin, self.tissue_threshold = exclusion_margin, tissue_threshold

    @staticmethod
    def _load(path: str) -> tuple[np.ndarray, np.ndarray]:
        img = nib.load(path)
        return (np.asarray(img.dataobj) > 0).astype(np.float32), img.affine

    def lesion_on_target(self, mask: np.ndarray, mask_affine: np.ndarray, target, affine: np.ndarray) -> np.ndarray:
        """Soft lesion mask on the target grid: source brain box -> target brain box, trilinear, blurred."""
        target_box = bounding_box_world(target > self.tissue_threshold, affine)
        soft = resample_by_brain_box(mask, mask_affine, self.source_box, target_box, affine, target.shape)
        return ndimage.gaussian_filter(soft, self.blur_sigma) if self.blur_sigma > 0 else soft

    def apply(self, d: dict, image_key, label_key) -> dict:
        image, label = d[image_key], d[label_key]
        affine = np.asarray(image.affine, dtype=np.float64) if hasattr(image, "affine") else np.eye(4)
        img = torch.as_tensor(image).float().numpy()
        lab = torch.as_tensor(label).numpy() > 0
        mask, mask_affine = self.masks[self.R.randint(len(self.masks))]
        soft = self.lesion_on_target(mask, mask_affine, img[0], affine)
        allowed = (img[0] > self.tissue_threshold) & ~ndimage.binary_dilation(lab[0], iterations=self.exclusion_margin)
        soft = np.where(soft > 0.02, np.clip(soft, 0, 1), 0) * allowed  # drop invisible blur tails
        ratio = self.R.uniform(*self.ratio_range)
        lesion = ratio + self.noise_std * self.R.standard_normal(soft.shape)
        out = (1 - soft)[None] * img + (soft * lesion)[None]
        new_label = lab | (soft > 0.5)[None]
        d[image_key] = convert_to_dst_type(out, dst=image, dtype=torch.float32)[0]
        d[label_key] = convert_to_dst_type(new_label, dst=label, dtype=torch.float32)[0]
        return d
