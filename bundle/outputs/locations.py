"""Lesion locations as radiologists report MS lesions (McDonald 2017; Thompson et al., Lancet Neurol 2018):
infratentorial (brainstem, cerebellum), periventricular (touching a lateral ventricle), juxtacortical (touching or
in the cortex) and deep white matter (the rest), taken in that order.

Regions come from an atlas in MNI152 2009a space (``atlas/``, made by bundle/dev/scripts/make_location_atlas.py
from the templates in nilearn's wheel): the template T1 brain is registered to the case's preprocessed FLAIR
(SimpleITK, affine, Mattes mutual information on a regular grid, one thread: deterministic), the regions follow
(nearest neighbour), and the lateral ventricles are then fitted to the case: its dark (CSF) voxels,

    V = connected parts of {v : 0 < x(v) < 0.75} within 6 mm of the template ventricles that touch them

(x normalised to the parenchyma level). On the input grid, for each lesion L (its voxels) with d in mm:

    infratentorial     if more than half of L lies in the infratentorial region
    periventricular    elif min_{v in L} d(v, V) <= 3 mm
    juxtacortical      elif min_{v in L} d(v, cortex) <= 2 mm
    deep_white_matter  otherwise
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage

ATLAS_DIR = os.path.join(os.path.dirname(__file__), "atlas")
TEMPLATE = os.path.join(ATLAS_DIR, "mni152_t1_brain_2mm.nii.gz")
REGIONS = os.path.join(ATLAS_DIR, "mni152_locations_2mm.nii.gz")
VENTRICLES, CORTEX, INFRATENTORIAL = 1, 2, 3
LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter")
PERIVENTRICULAR_MM, JUXTACORTICAL_MM, VENTRICLE_SEARCH_MM, CSF_LEVEL = 3.0, 2.0, 6.0, 0.75
_LPS = np.diag([-1.0, -1.0, 1.0])


def to_sitk(array: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of ``array`` (x, y, z voxel order) on the NIfTI (RAS) grid ``affine`` (ITK works in LPS)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (_LPS @ affine[:3, :3] / spacing).flatten()])
    image.SetOrigin([float(v) for v in _LPS @ affine[:3, 3]])
    return image


def from_sitk(image) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def register_template(fixed):
    """Affine transform from the case's physical space (``fixed``) to the MNI template's, by mutual information."""
    import SimpleITK as sitk

    moving = sitk.ReadImage(TEMPLATE, sitk.sitkFloat32)
    fixed = sitk.Cast(fixed, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetNumberOfThreads(1)
    method.SetMetricAsMattesMutualInformation(32)
    method.SetMetricSamplingStrategy(method.REGULAR)
    method.SetMetricSamplingPercentage(0.25, seed=1)  # the default seed is the wall clock: the same case, other regions
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-3, 100, gradientMagnitudeTolerance=1e-6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moving)


def case_regions(image: np.ndarray, affine: np.ndarray, target_affine: np.ndarray, target_shape) -> np.ndarray:
    """The atlas regions on the grid (``target_affine``, ``target_shape``) of the case whose preprocessed FLAIR
    ``image`` (x, y, z; parenchyma about 1, 0 outside the head) lies on ``affine``; ventricles fitted to the case."""
    import SimpleITK as sitk

    fixed = to_sitk(image.astype(np.float32), affine)
    transform = register_template(fixed)
    regions = from_sitk(sitk.Resample(sitk.ReadImage(REGIONS), fixed, transform, sitk.sitkNearestNeighbor, 0))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    template_ventricles = regions == VENTRICLES
    if template_ventricles.any():
        near = ndimage.distance_transform_edt(~template_ventricles, sampling=spacing) <= VENTRICLE_SEARCH_MM
        dark, _ = ndimage.label((image > 0) & (image < CSF_LEVEL) & near)
        touching = np.unique(dark[template_ventricles & (dark > 0)])
        ventricles = np.isin(dark, touching[touching > 0]) | template_ventricles
        regions = np.where(ventricles & (regions != INFRATENTORIAL), VENTRICLES, regions).astype(np.uint8)
    on_case = to_sitk(regions.astype(np.uint8), affine)
    reference = to_sitk(np.zeros(tuple(target_shape), np.uint8), target_affine)
    return from_sitk(sitk.Resample(on_case, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0))


def lesion_locations(labels: np.ndarray, count: int, regions: np.ndarray, spacing) -> list[str]:
    """The location (module docstring) of lesions 1..``count`` of the label image ``labels`` on the grid of
    ``regions`` with voxel ``spacing`` (mm).

    Distances are only compared with the periventricular and juxtacortical limits, so each lesion's are measured
    inside its bounding box grown by more than the larger limit: a ventricle or cortex voxel outside that box is
    farther than the limit, so the decision is the one a whole-volume distance map would give, at a fraction of its
    cost on a fine grid."""
    spacing = np.asarray(spacing, dtype=np.float64)
    grow = np.ceil(max(PERIVENTRICULAR_MM, JUXTACORTICAL_MM) / spacing).astype(int) + 1
    found = []
    for index, box in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        near = tuple(slice(max(b.start - g, 0), min(b.stop + g, n)) for b, g, n in zip(box, grow, labels.shape))
        voxels, around = labels[near] == index, regions[near]

        def closest(region: int) -> float:
            inside = around == region
            if not inside.any():
                return np.inf
            return float(ndimage.distance_transform_edt(~inside, sampling=spacing)[voxels].min())

        if (around[voxels] == INFRATENTORIAL).mean() > 0.5:
            found.append("infratentorial")
        elif closest(VENTRICLES) <= PERIVENTRICULAR_MM:
            found.append("periventricular")
        elif closest(CORTEX) <= JUXTACORTICAL_MM:
            found.append("juxtacortical")
        else:
            found.append("deep_white_matter")
    return found
