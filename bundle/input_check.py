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

from bundle.report import write_json_atomic

MAX_VOXELS = 1024**3 // 2  # 0.5 G voxels: 2 GiB as float32 before any resampling


def reason(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception from a library."""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


class InputError(ValueError):
    """A problem with one input file; ``str()`` is one line naming the file and the problem."""


def check_image(path: str, channels: int = 1, max_voxels: int = MAX_VOXELS) -> tuple[int, ...]:
    """Raise ``InputError`` if ``path`` is not a usable ``channels``-channel 3D image; returns its spatial shape."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected a NIfTI file")
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
    if data.size and float(data.max()) == float(data.min()):
        raise InputError(f"{path}: constant image (every voxel is {float(data.min()):g})")
    if not np.isfinite(np.linalg.det(image.affine[:3, :3])) or abs(np.linalg.det(image.affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: degenerate affine (voxel-to-world matrix has no inverse)")
    return shape[:3]


def screen_datalist(cases: list[dict], channels: int = 1, max_voxels: int = MAX_VOXELS) -> tuple[list, list]:
    """(cases that pass ``check_image``, failures as ``{"path", "error"}``)."""
    good, failures = [], []
    for case in cases:
        path = case.get("image") if isinstance(case, dict) else None
        if not isinstance(path, str):
            failures.append({"path": str(path), "error": f"datalist entry {case!r} has no 'image' path"})
            continue
        try:
            check_image(path, channels, max_voxels)
            good.append(case)
        except InputError as exc:
            failures.append({"path": path, "error": str(exc)})
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


def finish_batch(output_dir: str, failures: list[dict], processed: int, staging_dir: str = "") -> None:
    """Write ``failures.json`` (always, possibly empty), drop an empty staging folder, exit 1 if any case failed."""
    os.makedirs(output_dir, exist_ok=True)
    if staging_dir and os.path.isdir(staging_dir) and not os.listdir(staging_dir):
        os.rmdir(staging_dir)
    write_json_atomic(os.path.join(output_dir, "failures.json"), failures)
    if failures:
        lines = "\n".join(f"  {f['error']}" for f in failures)
        raise SystemExit(f"{len(failures)} of {len(failures) + processed} cases failed (see failures.json):\n{lines}")
