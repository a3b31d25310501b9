"""Brain masks for the two skull-on MS scans of ../shared (no brain mask ships with them).

An affine (12 parameters) registration of the Colin27 head (T1, ``ch2`` of Debian's mricron-data) to each FLAIR by
Mattes mutual information (SimpleITK, multi-resolution, moments initialisation), then Colin27's brain (``ch2bet``)
resampled onto the FLAIR grid (linear, > 0.5). The masks serve two measurements of docs/results.md, section
"Skull on, with labels": the scalp and skull of a real FLAIR head for the ``skull_on`` acquisition variants
(``python -m bundle acquisition-variants --head FLAIR --brain MASK``), and how much of what the model marks on the
skull-on scans lies outside the brain. An overlay PNG per scan shows the mask's outline on three slices.

    python docs/analysis/brain_mask_by_registration.py --output_dir runs/skullon/masks

Needs SimpleITK (a bundle dependency, for N4) and mricron-data (apt-get install mricron-data).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "open_ms_data", "longitudinal_raw")
SCANS = ("patient01_study1_FLAIR.nii.gz", "patient12_study1_FLAIR.nii.gz")
COLIN_HEAD = "/usr/share/mricron/templates/ch2.nii.gz"
COLIN_BRAIN = "/usr/share/mricron/templates/ch2bet.nii.gz"


def register_affine(fixed: sitk.Image, moving: sitk.Image) -> sitk.Transform:
    """Affine transform mapping fixed-image points to moving-image points (Mattes MI, 3 resolution levels)."""
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, seed=0)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=300)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    transform = reg.Execute(fixed, moving)
    print(f"  metric {reg.GetMetricValue():.4f} after {reg.GetOptimizerIteration()} iterations "
          f"({reg.GetOptimizerStopConditionDescription()})")
    return transform


def overlay(flair: np.ndarray, mask: np.ndarray, path: str) -> None:
    """Three axial slices (voxel axis 2) of the FLAIR side by side, the mask's outline in yellow."""
    panels = []
    top = np.percentile(flair, 99.5)
    for frac in (0.3, 0.55, 0.8):
        k = int(frac * (flair.shape[2] - 1))
        gray = (np.clip(flair[:, :, k] / top, 0, 1) * 255).astype(np.uint8).T
        rgb = np.repeat(gray[..., None], 3, axis=-1)
        m = mask[:, :, k].T > 0
        rgb[m & ~ndimage.binary_erosion(m)] = (255, 255, 0)
        panels.append(rgb)
    Image.fromarray(np.concatenate(panels, axis=1)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="runs/skullon/masks")
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    head = sitk.ReadImage(COLIN_HEAD, sitk.sitkFloat32)
    brain = sitk.ReadImage(COLIN_BRAIN, sitk.sitkFloat32)
    brain = sitk.Cast(brain > 0, sitk.sitkFloat32)
    for name in SCANS:
        path = os.path.abspath(os.path.join(SHARED, name))
        print(name)
        flair = sitk.ReadImage(path, sitk.sitkFloat32)
        transform = register_affine(flair, head)
        warped = sitk.Resample(brain, flair, transform, sitk.sitkLinear, 0.0)
        mask = sitk.Cast(warped > 0.5, sitk.sitkUInt8)
        out = os.path.join(args.output_dir, name.replace("_FLAIR.nii.gz", "_brain.nii.gz"))
        sitk.WriteImage(mask, out)
        voxels = sitk.GetArrayFromImage(flair).transpose(2, 1, 0)  # back to nibabel's (i, j, k) order
        m = sitk.GetArrayFromImage(mask).transpose(2, 1, 0)
        spacing = np.prod(flair.GetSpacing())
        print(f"  brain {m.sum() * spacing / 1000:.0f} mL -> {out}")
        overlay(voxels, m, out.replace(".nii.gz", ".png"))


if __name__ == "__main__":
    main()
