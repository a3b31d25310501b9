"""How much of what the model marks on a skull-on scan lies outside the brain (there, every marked voxel is wrong).

    python docs/analysis/marked_outside_brain.py SEG BRAIN [SEG BRAIN ...]

SEG is an inference output (``*_seg.nii.gz``), BRAIN a brain mask on the same grid (for the two skull-on scans of
../shared: docs/analysis/brain_mask_by_registration.py). Prints the marked volume inside the brain mask, within 3 mm
outside it (where a registered mask may simply be off), and beyond 3 mm (scalp, skull, face: false positives).
"""

from __future__ import annotations

import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def marked_by_region(seg_path: str, brain_path: str) -> dict:
    seg_img, brain_img = nib.load(seg_path), nib.load(brain_path)
    if seg_img.shape[:3] != brain_img.shape[:3] or not np.allclose(seg_img.affine, brain_img.affine, atol=1e-3):
        raise ValueError(f"{seg_path} and {brain_path} are not on the same grid")
    marked = np.asarray(seg_img.dataobj).reshape(seg_img.shape[:3]) > 0
    brain = np.asarray(brain_img.dataobj) > 0
    spacing = np.linalg.norm(seg_img.affine[:3, :3], axis=0)
    distance_mm = ndimage.distance_transform_edt(~brain, sampling=spacing)  # 0 inside the brain
    ml = float(np.prod(spacing)) / 1000
    return {
        "inside_brain_ml": round(float((marked & brain).sum()) * ml, 2),
        "within_3mm_outside_ml": round(float((marked & ~brain & (distance_mm <= 3)).sum()) * ml, 2),
        "beyond_3mm_outside_ml": round(float((marked & (distance_mm > 3)).sum()) * ml, 2),
    }


if __name__ == "__main__":
    pairs = sys.argv[1:]
    if not pairs or len(pairs) % 2:
        sys.exit(__doc__)
    for seg, brain in zip(pairs[::2], pairs[1::2]):
        print(seg, marked_by_region(seg, brain))
