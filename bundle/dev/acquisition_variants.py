"""Labelled held-out cases as other scanners would give them: thick slices, a tilted grid, other units.

``python -m bundle.dev acquisition-variants --datalist configs/datalist_shared.json --key validation --output_dir DIR``
writes, for every labelled case of the datalist, new image files of the same anatomy in the same world space (each
modality of a multi-modal case alike), each with the case's label on the new grid (lesion = label > 0, resampled by
world coordinates, nearest neighbour, as ``python -m bundle evaluate`` would do), and ``DIR/datalist.json`` listing
them under "testing". Variants:

* ``thick_axial_5mm``: the scan as 5 mm axial slices. Along the voxel axis closest to superior-inferior, n voxels of
  spacing s become m = round(n s / 5) slabs, each the mean of the voxels it covers, weighted by overlap (a box slice
  profile); new voxel j's centre lies at old continuous index (j + 1/2) n / m - 1/2, so the affine keeps world space.
* ``oblique_lps``: the scan resampled (trilinear, MONAI ``ResampleToMatch``) onto a grid of the same voxel size whose
  axes are tilted by 15 degrees about the left-right axis and stored in LPS voxel order, large enough to hold the
  whole original field of view.
* ``int16_scaled``: intensities x 7.3 stored as int16 (another scanner's units); voxels unchanged.
* ``vertex_bias_field``: voxels x b, a coil field that brightens the top of the head as in the skull-on scan
  patient12 (its tissue peak rises from mid-brain to the vertex by about 30 %): with z the world superior coordinate
  of a voxel and [z_low, z_high] that of the tissue (voxels above the volume mean), z_mid their middle,
  b = gain ^ (max(0, z - z_mid) / (z_high - z_mid))^2, gain = 1.3. Grid and label unchanged.
* ``skull_on`` and ``skull_on_thick_5mm``: the scan padded by 20 mm on every side with the scalp, skull and face of
  a real head written around its brain (:func:`bundle.training.head_shell.put_head_shell`, g = 1; the brain is the voxels
  above 0.2 x the scan's white-matter level), the second then re-sliced as ``thick_axial_5mm``: a skull-stripped
  labelled case as a scan with the skull on would give it. The head is ``--head`` with its brain mask ``--brain``
  (default Colin27, the head of the training augmentation; docs/results.md uses a real skull-on FLAIR of ../shared
  with a brain mask made by registration). Not in the default set.
* ``shifted_half_voxel``: resampled (trilinear) onto the same grid moved by half a voxel along every axis: the
  interpolation blur of ``oblique_lps`` without its tilt, to tell the two apart. Not in the default set.

The shipped model was trained with thick-slice, left-right/anterior-posterior flip and intensity augmentation, but
no head tilt (``rotate_prob`` in configs/train.yaml is off); these variants measure what is left of its accuracy when
the held-out scans themselves arrive that way.
"""

from __future__ import annotations

import math
import os

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor, load_decathlon_datalist
from monai.transforms import LoadImage, ResampleToMatch

from bundle.evaluation.evaluate import label_on_image_grid
from bundle.inputs.data import case_name
from bundle.inputs.input_check import grid_corners
from bundle.outputs.files import write_json_atomic
from bundle.training.head_shell import COLIN27_BRAIN, COLIN27_HEAD, load_head_shell, put_head_shell

VARIANTS = ("thick_axial_5mm", "oblique_lps", "int16_scaled", "vertex_bias_field")
SKULL_VARIANTS = ("skull_on", "skull_on_thick_5mm")
CONTROLS = ("shifted_half_voxel",)
KNOWN = VARIANTS + SKULL_VARIANTS + CONTROLS
SLICE_MM = 5.0
TILT_DEGREES = 15.0
INT16_SCALE = 7.3
VERTEX_GAIN = 1.3
SKULL_MARGIN_MM = 20.0
BRAIN_FRACTION = 0.2  # brain = voxels above this fraction of the white-matter level (skull-stripped input)


def superior_axis(affine: np.ndarray) -> int:
    """The voxel axis whose direction is closest to world superior-inferior (RAS z)."""
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return int(np.argmax(np.abs(directions[2])))


def thick_slices(image: np.ndarray, affine: np.ndarray, axis: int, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """(slab means, affine) of a 3D ``image`` re-sliced into ``thickness`` mm slabs along voxel ``axis``."""
    n = image.shape[axis]
    spacing = float(np.linalg.norm(affine[:3, axis]))
    m = max(1, int(round(n * spacing / thickness)))
    edges = np.arange(n + 1)[None, :]  # voxel i covers [i, i + 1) in index units, slab j covers [j n / m, (j + 1) n / m)
    start, stop = np.arange(m)[:, None] * n / m, np.arange(1, m + 1)[:, None] * n / m
    weights = np.clip(np.minimum(edges[:, 1:], stop) - np.maximum(edges[:, :-1], start), 0, None) * m / n
    slabs = np.moveaxis(np.tensordot(weights, np.moveaxis(image, axis, 0), axes=1), 0, axis).astype(np.float32)
    scale = np.eye(4)
    scale[axis, axis] = n / m
    scale[axis, 3] = 0.5 * n / m - 0.5
    return slabs, affine @ scale


def vertex_field(voxels: np.ndarray, affine: np.ndarray, gain: float = VERTEX_GAIN) -> np.ndarray:
    """The multiplicative field b of the ``vertex_bias_field`` variant (1 below mid-brain, ``gain`` at the top)."""
    z = np.tensordot(affine[2, :3], np.indices(voxels.shape, dtype=np.float64), axes=1) + affine[2, 3]
    above = voxels > voxels.mean()
    tissue = z[above] if above.any() else z  # a constant volume is all tissue
    mid, top = (tissue.min() + tissue.max()) / 2, tissue.max()
    return gain ** (np.clip(z - mid, 0, None) / max(top - mid, 1e-6)) ** 2


def with_skull(voxels: np.ndarray, affine: np.ndarray, shell: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(voxels, affine) of a skull-stripped 3D scan padded by ``SKULL_MARGIN_MM`` with a head shell around its brain.

    ``shell`` is ``bundle.training.head_shell.load_head_shell(head, brain)``; world space is kept (the affine moves its origin
    by the padding).
    """
    pad = np.ceil(SKULL_MARGIN_MM / np.linalg.norm(affine[:3, :3], axis=0)).astype(int)
    padded = np.pad(voxels.astype(np.float32), [(p, p) for p in pad])
    new_affine = affine.copy()
    new_affine[:3, 3] -= affine[:3, :3] @ pad
    positive = padded[padded > 0]
    if positive.size == 0:
        raise ValueError("no positive voxels: nothing to put a skull around")
    white_matter = float(np.median(positive[positive >= positive.mean()]))
    tissue = padded > BRAIN_FRACTION * white_matter
    return put_head_shell(padded[None], new_affine, tissue, shell)[0].astype(np.float32), new_affine


def tilted_grid(affine: np.ndarray, shape: tuple[int, ...], degrees: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """(affine, shape) of a grid with ``affine``'s voxel sizes, axes tilted by ``degrees`` about world x, LPS order.

    The grid covers the world bounding box of the original field of view.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    a = math.radians(degrees)
    tilt = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    directions = tilt @ np.diag([-1.0, -1.0, 1.0])  # voxel axes: towards left, posterior, superior (tilted)
    along = grid_corners(affine, shape).T @ directions  # corner coordinates along the new axes (mm)
    low, high = along.min(axis=0), along.max(axis=0)
    new_shape = tuple(int(math.ceil((hi - lo) / s)) for lo, hi, s in zip(low, high, spacing))
    new = np.eye(4)
    new[:3, :3] = directions * spacing
    new[:3, 3] = directions @ (low + spacing / 2)
    return new, new_shape


def empty_grid(affine: np.ndarray, shape: tuple[int, ...]) -> MetaTensor:
    """A channel-first zero volume on grid (``affine``, ``shape``): the target of ``ResampleToMatch``."""
    return MetaTensor(torch.zeros((1, *shape)), affine=torch.as_tensor(affine))


def variant(name: str, image: MetaTensor, shell: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(voxels, affine) of acquisition variant ``name`` of a channel-first 3D ``image`` (``shell``: skull variants)."""
    affine = np.asarray(image.affine, dtype=np.float64)
    voxels = np.asarray(image[0], dtype=np.float32)
    if name in SKULL_VARIANTS:
        if shell is None:
            raise ValueError(f"acquisition variant {name!r} needs a head shell (bundle.training.head_shell.load_head_shell)")
        voxels, affine = with_skull(voxels, affine, shell)
        if name == "skull_on":
            return voxels, affine
        return thick_slices(voxels, affine, superior_axis(affine), SLICE_MM)
    if name == "thick_axial_5mm":
        return thick_slices(voxels, affine, superior_axis(affine), SLICE_MM)
    if name == "vertex_bias_field":
        return (voxels * vertex_field(voxels, affine)).astype(np.float32), affine
    if name == "int16_scaled":
        return np.clip(np.round(voxels * INT16_SCALE), -32768, 32767).astype(np.int16), affine
    if name == "oblique_lps":
        new_affine, shape = tilted_grid(affine, voxels.shape, TILT_DEGREES)
    elif name == "shifted_half_voxel":
        new_affine, shape = affine.copy(), voxels.shape
        new_affine[:3, 3] += affine[:3, :3] @ np.full(3, 0.5)
    else:
        raise ValueError(f"unknown acquisition variant {name!r}; choose from {KNOWN}")
    moved = ResampleToMatch(mode="bilinear", padding_mode="zeros")(image.float(), img_dst=empty_grid(new_affine, shape))
    return np.asarray(moved[0], dtype=np.float32), new_affine


def acquisition_variants(
    datalist: str,
    output_dir: str,
    key: str = "validation",
    variants: tuple[str, ...] | list[str] = VARIANTS,
    head: str = COLIN27_HEAD,
    brain: str = COLIN27_BRAIN,
) -> list[dict]:
    """Write every variant of every labelled case of ``datalist[key]`` and ``output_dir/datalist.json``.

    ``head`` and ``brain`` (a full-head scan and its brain mask) are read only for the skull variants.
    """
    for name in variants:
        if name not in KNOWN:  # before any file is written
            raise ValueError(f"unknown acquisition variant {name!r}; choose from {KNOWN}")
    if not os.path.isfile(datalist):
        raise FileNotFoundError(f"{datalist}: datalist not found")
    shell = load_head_shell(head, brain) if set(variants) & set(SKULL_VARIANTS) else None
    cases = load_decathlon_datalist(datalist, data_list_key=key)
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for case in cases:
        modalities = case["image"] if isinstance(case["image"], (list, tuple)) else [case["image"]]
        images = [loader(p) for p in modalities]
        label = loader(case["label"])
        for name in variants:
            paths = []
            for source, image in zip(modalities, images):
                voxels, affine = variant(name, image, shell)
                paths.append(os.path.abspath(os.path.join(output_dir, f"{case_name(source)}_{name}.nii.gz")))
                nib.save(nib.Nifti1Image(voxels, affine), paths[-1])
            entry = paths if isinstance(case["image"], (list, tuple)) else paths[0]
            moved = label_on_image_grid(label, empty_grid(affine, voxels.shape))
            label_path = paths[0].replace(".nii.gz", "_label.nii.gz")
            nib.save(nib.Nifti1Image(np.asarray(moved[0] > 0, np.uint8), affine), label_path)
            written.append({"image": entry, "label": label_path, "variant": name})
    write_json_atomic(os.path.join(output_dir, "datalist.json"), {"testing": written})
    return written
