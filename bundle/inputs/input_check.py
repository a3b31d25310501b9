"""Checks every input before any work, so a batch goes on past bad cases and each failure is one clear line.

``screen_datalist`` splits a datalist into cases that can be processed and failures ``{"path", "error"}``; the
inference config runs only the former, writes ``failures.json`` into the output folder and exits with status 1 at
the end if anything failed (``finish_batch``).
"""

from __future__ import annotations

import gzip
import os
import zlib

import nibabel as nib
import numpy as np

from bundle.inputs.dicom_series import DicomSeriesError, check_dicom_series, is_dicom_folder
from bundle.outputs.cohort import write_cohort_tables
from bundle.outputs.files import write_json_atomic

MAX_VOXELS = 1024**3 // 2  # 0.5 G voxels: 2 GiB as float32 before any resampling
# magnitude MRI is >= 0; interpolation ringing leaves a few negative voxels (<= 0.5 % of the non-zero voxels of the
# registered MNI scans in ../shared), a z-scored scan about half
MAX_NEGATIVE_FRACTION = 0.1


def reason(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception from a library."""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


class InputError(ValueError):
    """A problem with one input file; ``str()`` is one line naming the file and the problem."""


def check_image(
    path: str, channels: int = 1, max_voxels: int = MAX_VOXELS, allow_constant: bool = False
) -> tuple[int, ...]:
    """Raise ``InputError`` if ``path`` is not a usable ``channels``-channel 3D image; returns its spatial shape.

    ``path`` is a NIfTI file or a DICOM series folder; ``allow_constant`` accepts constant images (empty masks) and
    skips the magnitude check (more than ``MAX_NEGATIVE_FRACTION`` of the non-zero voxels negative is refused).
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.isdir(path):
        if not is_dicom_folder(path):
            raise InputError(f"{path}: folder without DICOM files, expected a NIfTI file or a DICOM series folder")
        try:
            return check_dicom_series(path, channels, max_voxels)
        except DicomSeriesError as exc:
            raise InputError(str(exc)) from None
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file")
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises many types for files that are not images
        raise InputError(f"{path}: not a readable NIfTI image ({reason(exc)})") from None
    shape = tuple(int(s) for s in image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 3 or min(shape[:3]) < 2:
        raise InputError(f"{path}: image of shape {tuple(image.shape)} is not a 3D volume")
    found = shape[3] if len(shape) == 4 else 1
    if len(shape) > 4 or found != channels:
        raise InputError(
            f"{path}: image of shape {tuple(image.shape)} has {found if len(shape) <= 4 else 'several'} "
            f"channels/volumes, the model takes {channels}"
        )
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > max_voxels:
        raise InputError(f"{path}: {voxels} voxels (shape {tuple(image.shape)}) exceeds the limit of {max_voxels}")
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise InputError(f"{path}: truncated or corrupt image data ({reason(exc)})") from None
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(f"{path}: {bad} NaN/Inf voxels")
    if not allow_constant and data.size:  # images only: masks may be constant and have no magnitude scale
        if float(data.max()) == float(data.min()):
            raise InputError(f"{path}: constant image (every voxel is {float(data.min()):g})")
        negative = float((data[data != 0] < 0).mean())  # not constant, so some voxel is non-zero
        if negative > MAX_NEGATIVE_FRACTION:
            raise InputError(
                f"{path}: {100 * negative:.0f} % of the non-zero voxels are negative (minimum {float(data.min()):g}): "
                "intensities look normalised (e.g. z-scored); the model needs magnitude images as the scanner writes "
                "them"
            )
    if not np.isfinite(np.linalg.det(image.affine[:3, :3])) or abs(np.linalg.det(image.affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: degenerate affine (voxel-to-world matrix has no inverse)")
    return shape[:3]


def grid_corners(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World coordinates (3, 8) of the outer voxel edges of a 3D grid: ``affine @ (i, j, k, 1)`` for
    ``i in {-0.5, n_i - 0.5}`` etc."""
    edges = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in shape[:3]], indexing="ij")).reshape(3, -1)
    return affine[:3, :3] @ edges + affine[:3, 3:]


def world_box(path: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], float]:
    """(lower corner, upper corner, shape, largest voxel size) of what ``path`` covers in RAS world mm
    (the box of ``grid_corners``)."""
    if os.path.isdir(path):  # DICOM series: MONAI's reader gives the RAS affine
        from monai.transforms import LoadImage

        image = LoadImage(image_only=True, ensure_channel_first=True)(path)
        affine, shape = image.affine.double().numpy(), tuple(int(s) for s in image.shape[1:4])
    else:
        image = nib.load(path)
        affine, shape = image.affine, tuple(int(s) for s in image.shape[:3])
    corners = grid_corners(affine, shape)
    voxel = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).max())
    return corners.min(axis=1), corners.max(axis=1), shape, voxel


def check_same_world(image: str, other: str, what: str = "label") -> None:
    """Raise ``InputError`` unless ``other`` covers the world space of ``image`` to within one (largest) voxel.

    Orientation and spacing may differ: the bounding boxes of the two grids in world mm are compared.
    """
    lo_a, hi_a, shape_a, voxel_a = world_box(image)
    lo_b, hi_b, shape_b, voxel_b = world_box(other)
    gap = float(max(np.abs(lo_a - lo_b).max(), np.abs(hi_a - hi_b).max()))
    if gap > max(voxel_a, voxel_b):
        raise InputError(
            f"{other}: {what} of shape {shape_b} does not cover the same world space as the image {image} "
            f"(shape {shape_a}): the bounding boxes differ by {gap:.1f} mm"
        )


def image_paths(case: dict) -> list[str]:
    """The image path(s) of a datalist entry: one FLAIR path, or a list of modality paths in channel order."""
    image = case.get("image") if isinstance(case, dict) else None
    paths = [image] if isinstance(image, str) else image
    if not isinstance(paths, (list, tuple)) or not paths or not all(isinstance(p, str) for p in paths):
        raise InputError(f"datalist entry {case!r} has no 'image' path (or list of paths)")
    return list(paths)


def check_case(case: dict, channels: int = 1, max_voxels: int = MAX_VOXELS, labelled: bool = False) -> None:
    """Raise ``InputError`` for a datalist entry that cannot be processed (or scored, when ``labelled``)."""
    paths = image_paths(case)
    if len(paths) == 1:
        check_image(paths[0], channels, max_voxels)
    elif len(paths) != channels:
        raise InputError(f"{paths[0]}: {len(paths)} images listed for one case, the model takes {channels} channels")
    else:
        for path in paths:
            check_image(path, 1, max_voxels)
        for path in paths[1:]:
            check_same_world(paths[0], path, what="channel image")
    if labelled:
        label = case.get("label")
        if not isinstance(label, str):
            raise InputError(f"{paths[0]}: datalist entry has no 'label' path")
        check_image(label, 1, max_voxels, allow_constant=True)
        check_same_world(paths[0], label)


def screen_datalist(
    cases: list[dict], channels: int = 1, max_voxels: int = MAX_VOXELS, labelled: bool = False
) -> tuple[list, list]:
    """(cases that pass ``check_case``, failures as ``{"path", "error"}``)."""
    good, failures = [], []
    for case in cases:
        try:
            check_case(case, channels, max_voxels, labelled)
            good.append(case)
        except InputError as exc:
            image = case.get("image") if isinstance(case, dict) else None
            path = image[0] if isinstance(image, (list, tuple)) and image else image
            failures.append({"path": str(path), "error": str(exc)})
    return good, failures


def check_output_dir(output_dir: str) -> str:
    """Create ``output_dir`` if needed and make sure files can be written there; raise ``InputError`` if not."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as exc:
        raise InputError(f"{output_dir}: output folder is not writable ({exc.strerror or exc})") from None
    return output_dir


def exit_on_input_error(func, *args, debug: bool = False):
    """``func(*args)``; an ``InputError``/``FileNotFoundError`` ends the run with its one line (traceback if ``debug``)."""
    try:
        return func(*args)
    except (InputError, FileNotFoundError) as exc:
        if debug:
            raise
        raise SystemExit(f"error: {exc}") from None


def remove_if_empty(folder: str) -> None:
    """Remove ``folder`` if it exists and is empty (the staging folder after a complete run)."""
    if folder and os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def finish_batch(output_dir: str, failures: list[dict], processed: int, staging_dir: str = "") -> None:
    """Write ``failures.json`` (always, possibly empty) and the cohort tables, drop an empty staging folder, exit 1
    if any case failed."""
    os.makedirs(output_dir, exist_ok=True)
    remove_if_empty(staging_dir)
    write_json_atomic(os.path.join(output_dir, "failures.json"), failures)
    write_cohort_tables(output_dir)
    if failures:
        lines = "\n".join(f"  {f['error']}" for f in failures)
        raise SystemExit(f"{len(failures)} of {len(failures) + processed} cases failed (see failures.json):\n{lines}")
