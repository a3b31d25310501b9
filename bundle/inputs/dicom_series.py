"""DICOM series folders as inputs: one series per folder, evenly spaced slices, checked from the headers.

MONAI's ``PydicomReader`` (used by ``LoadImaged`` for a folder) builds the volume and its affine, converting
DICOM's LPS patient coordinates to RAS: ``x_RAS = diag(-1, -1, 1) x_LPS``. This module only refuses folders it
would read wrongly: several series mixed, slices missing or duplicated, frames of differing size or orientation.
A slice position is ``p_k = IPP_k . n`` with ``n = row direction x column direction`` (from ImageOrientationPatient);
the slices must be ``median(diff(sorted p))`` apart to within ``SPACING_TOLERANCE``.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

SPACING_TOLERANCE = 0.25  # fraction of the median slice spacing a gap may differ by


class DicomSeriesError(ValueError):
    """A DICOM folder that is not exactly one usable 3D series; ``str()`` names the folder and the problem."""


def is_dicom_file(path: str) -> bool:
    """True for a file with the DICOM preamble (``DICM`` at byte 128) or a ``.dcm`` name."""
    if path.lower().endswith(".dcm"):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def dicom_files(folder: str) -> list[str]:
    """The DICOM files directly inside ``folder``, sorted by name."""
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    return [p for p in paths if os.path.isfile(p) and is_dicom_file(p)]


def is_dicom_folder(path: str) -> bool:
    """True for a folder that directly holds DICOM files."""
    return os.path.isdir(path) and bool(dicom_files(path))


def _headers(folder: str) -> list[pydicom.Dataset]:
    files = dicom_files(folder)
    if not files:
        raise DicomSeriesError(f"{folder}: folder holds no DICOM files")
    headers = []
    for path in files:
        try:
            headers.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
            raise DicomSeriesError(f"{folder}: {os.path.basename(path)} is not a readable DICOM file ({exc})") from None
    return headers


def slice_positions(headers: list[pydicom.Dataset], folder: str = "") -> np.ndarray:
    """Position of each slice along the series normal (mm), in the order of ``headers``."""
    orientation = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    for h in headers:
        if not np.allclose(np.asarray(h.ImageOrientationPatient, dtype=float), orientation, atol=1e-3):
            raise DicomSeriesError(f"{folder}: slices have differing ImageOrientationPatient (tilted or mixed stacks)")
    return np.array([float(np.dot(np.asarray(h.ImagePositionPatient, dtype=float), normal)) for h in headers])


def check_dicom_series(folder: str, channels: int = 1, max_voxels: int | None = None) -> tuple[int, int, int]:
    """Raise ``DicomSeriesError`` unless ``folder`` is one evenly spaced 3D series; returns (rows, columns, slices).

    Headers are checked first (series, geometry, size), so pixel data are read only for a plausible series; then
    they are decoded, so a truncated file or a constant image is refused before any work.
    """
    headers = _headers(folder)
    series = sorted({str(getattr(h, "SeriesInstanceUID", "")) for h in headers})
    if len(series) > 1:
        raise DicomSeriesError(
            f"{folder}: {len(series)} DICOM series in one folder ({', '.join(s[-12:] for s in series)}); "
            "give each series its own folder"
        )
    if channels != 1:
        raise DicomSeriesError(f"{folder}: a DICOM series is one channel, the model takes {channels}")
    if any(int(getattr(h, "NumberOfFrames", 1) or 1) > 1 for h in headers):
        raise DicomSeriesError(f"{folder}: multi-frame (enhanced) DICOM is not supported; convert it to NIfTI")
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
        if any(tag not in h for h in headers):
            raise DicomSeriesError(f"{folder}: a slice lacks {tag}, the volume's geometry is undefined")
    sizes = {(int(h.Rows), int(h.Columns)) for h in headers}
    if len(sizes) > 1:
        raise DicomSeriesError(f"{folder}: slices of differing size {sorted(sizes)}")
    if len(headers) < 2:
        raise DicomSeriesError(f"{folder}: one slice is not a 3D volume")
    positions = np.sort(slice_positions(headers, folder))
    gaps = np.diff(positions)
    if np.any(gaps < 1e-3):
        where = positions[np.argmin(gaps)]
        raise DicomSeriesError(f"{folder}: two slices share the position {where:.2f} mm (duplicates)")
    spacing = float(np.median(gaps))
    off = np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing
    if np.any(off):
        k = int(np.argmax(off))
        raise DicomSeriesError(
            f"{folder}: missing slices: a gap of {gaps[k]:.2f} mm after the slice at {positions[k]:.2f} mm, "
            f"the others are {spacing:.2f} mm apart"
        )
    shape = (*sizes.pop(), len(headers))
    voxels = int(np.prod(shape))
    if max_voxels is not None and voxels > max_voxels:
        raise DicomSeriesError(f"{folder}: {voxels} voxels (shape {shape}) exceeds the limit of {max_voxels}")
    lo, hi = np.inf, -np.inf
    for path in dicom_files(folder):
        try:
            pixels = pydicom.dcmread(path).pixel_array
        except Exception as exc:  # pydicom's decoders raise many types for damaged pixel data
            raise DicomSeriesError(f"{folder}: {os.path.basename(path)} has unreadable pixel data ({exc})") from None
        lo, hi = min(lo, float(pixels.min())), max(hi, float(pixels.max()))
    if lo == hi:
        raise DicomSeriesError(f"{folder}: constant image (every voxel is {lo:g})")
    return shape


FLAIR_MIN_ECHO_TIME_MS = 50.0  # a FLAIR is T2-weighted (TE of tens to hundreds of ms); T1 and gradient echo: a few ms


def not_flair_reason(path: str) -> str:
    """``header_not_flair_reason`` of an input: a DICOM folder's first file, or a NIfTI file's BIDS JSON sidecar
    (``<name>.json`` beside ``<name>.nii[.gz]``, as dcm2niix writes it: times in seconds, ScanningSequence joined by
    "_"); "" for anything else."""
    if is_dicom_folder(path):
        return header_not_flair_reason(pydicom.dcmread(dicom_files(path)[0], stop_before_pixels=True))
    nifti = re.search(r"\.nii(\.gz)?$", path)
    sidecar = path[: nifti.start()] + ".json" if nifti else ""
    if not os.path.isfile(sidecar):
        return ""
    try:
        with open(sidecar) as f:
            bids = json.load(f)
    except (OSError, ValueError):
        bids = None
    if not isinstance(bids, dict):
        return ""  # an unreadable sidecar says nothing; the image itself was checked before any work
    header: dict = {}
    for key in ("EchoTime", "InversionTime"):  # seconds in BIDS, ms in DICOM
        if isinstance(bids.get(key), (int, float)):
            header[key] = bids[key] * 1000.0
    if isinstance(bids.get("ScanningSequence"), str):
        header["ScanningSequence"] = re.split(r"[_\\]", bids["ScanningSequence"])
    return header_not_flair_reason(header)


def bids_sidecar(header: pydicom.Dataset) -> dict:
    """The timing tags ``not_flair_reason`` reads, as the BIDS sidecar of a NIfTI written from the series (dcm2niix's
    convention: seconds, ScanningSequence joined by "_")."""
    times = ("EchoTime", "InversionTime")
    sidecar = {key: float(header.get(key)) / 1000.0 for key in times if header.get(key) is not None}
    sequence = header.get("ScanningSequence")
    if sequence is not None:
        sidecar["ScanningSequence"] = "_".join([sequence] if isinstance(sequence, str) else list(sequence))
    return sidecar


def header_not_flair_reason(header: pydicom.Dataset | dict) -> str:
    """Why an MR image header says its series is not a T2-FLAIR, or "" when it does not say so.

    A FLAIR is an inversion-recovery sequence with a long echo time. Said "not a FLAIR": EchoTime (0018,0081) below
    ``FLAIR_MIN_ECHO_TIME_MS``, or a ScanningSequence (0018,0020) without IR and no InversionTime (0018,0082).
    Missing tags (anonymised series) say nothing.
    """
    echo_time = header.get("EchoTime")
    if echo_time is not None and float(echo_time) < FLAIR_MIN_ECHO_TIME_MS:
        return f"EchoTime {float(echo_time):g} ms < {FLAIR_MIN_ECHO_TIME_MS:g} ms: T1 or gradient-echo weighting"
    sequence = header.get("ScanningSequence")  # one value (str) or several
    if sequence is not None and header.get("InversionTime") is None:
        values = [sequence] if isinstance(sequence, str) else list(sequence)
        if "IR" not in values:
            return f"no inversion recovery (ScanningSequence {'/'.join(values)}, no InversionTime)"
    return ""
