"""Scalp, skull and face of a real head around a skull-stripped training brain (training augmentation).

Real scans often arrive with the skull on, but the labelled training volumes are skull-stripped. This transform
takes the non-brain part of a real full-head scan (default: the Colin27 T1 ``ch2`` and its brain ``ch2bet`` from
Debian's ``mricron-data``), maps it onto the training volume by matching the two brains' bounding boxes (an axis-
aligned affine in RAS world space, as in :mod:`bundle.training.synthesis`) and writes it into the background:

    x'_v = x_v                  inside the target's brain B (its tissue, holes filled, dilated by 1 voxel)
    x'_v = g * h_v / h_wm       outside B, where h = the head scan outside its own brain, g ~ U(gain_range)

h_wm is the head scan's white-matter level (the median of its brain voxels above their mean). T1 and FLAIR agree on
what matters here: scalp fat bright, bone, CSF and air dark, muscle intermediate. The volume is first padded by
``margin`` voxels so the shell fits; the label is padded with zeros (no lesion outside the brain). Apply it before
intensity normalisation so that the scale is computed on the whole head, as at inference.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import BorderPad
from monai.utils import convert_to_dst_type
from scipy import ndimage

from bundle.training.paired_transform import RandImageLabeld
from bundle.training.synthesis import bounding_box_world, resample_by_brain_box

COLIN27_HEAD = "/usr/share/mricron/templates/ch2.nii.gz"
COLIN27_BRAIN = "/usr/share/mricron/templates/ch2bet.nii.gz"


def load_head_shell(head_path: str, brain_path: str) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(h / h_wm outside the brain and 0 inside, affine, brain box in world mm) of a full-head scan and its brain."""
    for path in (head_path, brain_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: head scan for the skull-on augmentation not found (Debian/Ubuntu: apt-get install "
                "mricron-data; or set head_shell_prob: 0)"
            )
    head_img = nib.load(head_path)
    head = np.asarray(head_img.dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(brain_path).dataobj) > 0
    if head.shape != brain.shape or not brain.any():
        raise ValueError(f"{brain_path}: brain mask is empty or not on the grid of {head_path}")
    tissue = head[brain]
    white_matter = float(np.median(tissue[tissue >= tissue.mean()]))
    shell = np.where(ndimage.binary_dilation(brain, iterations=2), 0.0, head / white_matter).astype(np.float32)
    return shell, head_img.affine, bounding_box_world(brain, head_img.affine)


def put_head_shell(
    img: np.ndarray, affine: np.ndarray, tissue: np.ndarray, shell: tuple, gain: float = 1.0
) -> np.ndarray:
    """``img`` (C, H, W, D) with the head shell of ``load_head_shell`` written outside its brain (formula above).

    ``tissue`` (H, W, D) marks the brain voxels of ``img``; its holes filled and dilated by 1 voxel it is B. The shell
    is mapped by matching brain bounding boxes and scaled by g = ``gain`` times the white-matter level of ``img``.
    """
    head, head_affine, source_box = shell
    brain = ndimage.binary_dilation(ndimage.binary_fill_holes(tissue), iterations=1)
    target_box = bounding_box_world(tissue, affine)
    moved = resample_by_brain_box(head, head_affine, source_box, target_box, affine, tissue.shape) * gain
    values = img[:, tissue]
    scale = float(np.median(values[values >= values.mean()]))  # the image's white-matter level, as h_wm
    return np.where(brain[None], img, scale * moved[None])


class RandHeadShelld(RandImageLabeld):
    """With probability ``prob``, put a real head's scalp and skull around the skull-stripped brain of (image, label).

    Args:
        keys: (image key, label key); image (C, H, W, D) FLAIR in RAS with air = 0, label (1, H, W, D).
        head: full-head scan (any grid).
        brain: its brain mask (nonzero = brain) on the same grid.
        gain_range: range of g, the shell intensity relative to the brain's white matter.
        margin: voxels of padding added on every side before the shell is written.
        tissue_threshold: voxels of the (normalised) image above this are the target's brain.
    """

    backend = [torch.Tensor.__name__]

    def __init__(
        self,
        keys: KeysCollection,
        head: str = COLIN27_HEAD,
        brain: str = COLIN27_BRAIN,
        prob: float = 0.5,
        gain_range: tuple[float, float] = (0.6, 1.3),
        margin: int = 12,
        tissue_threshold: float = 0.2,
    ) -> None:
        super().__init__(keys, prob)
        self.shell = load_head_shell(head, brain) if prob > 0 else None
        self.gain_range, self.tissue_threshold = gain_range, tissue_threshold
        self.pad = BorderPad(spatial_border=margin)

    def apply(self, d: dict, image_key, label_key) -> dict:
        image, label = self.pad(d[image_key]), self.pad(d[label_key])
        affine = np.asarray(image.affine, dtype=np.float64) if hasattr(image, "affine") else np.eye(4)
        img = torch.as_tensor(image).float().numpy()
        tissue = (img > self.tissue_threshold).any(0)
        if not tissue.any():
            return d
        out = put_head_shell(img, affine, tissue, self.shell, self.R.uniform(*self.gain_range))
        d[image_key] = convert_to_dst_type(out, dst=image, dtype=torch.float32)[0]
        d[label_key] = label
        return d
