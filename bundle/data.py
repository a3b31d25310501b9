"""Which files a run reads: a datalist (MSD-style JSON), every NIfTI file in a folder, or the shipped sample."""

from __future__ import annotations

import glob
import os

from monai.data import load_decathlon_datalist

NIFTI_PATTERNS = ("*.nii", "*.nii.gz")


def inference_datalist(dataset_dir: str = "", datalist: str = "", default_image: str = "") -> list[dict]:
    """``[{"image": path}, ...]`` from ``datalist`` (its "testing" list) or ``dataset_dir``, else ``default_image``.

    Relative paths in a datalist are taken relative to the datalist's folder.
    """
    if datalist:
        if not os.path.isfile(datalist):
            raise FileNotFoundError(f"{datalist}: datalist file not found")
        return load_decathlon_datalist(datalist, is_segmentation=False, data_list_key="testing")
    if dataset_dir:
        if not os.path.isdir(dataset_dir):
            raise FileNotFoundError(f"{dataset_dir}: dataset_dir is not a folder")
        files = sorted({f for pattern in NIFTI_PATTERNS for f in glob.glob(os.path.join(dataset_dir, pattern))})
        if not files:
            raise FileNotFoundError(f"{dataset_dir}: no NIfTI files (*.nii, *.nii.gz) in this folder")
        return [{"image": f} for f in files]
    if not os.path.isfile(default_image):
        raise FileNotFoundError(f"{default_image}: the bundle's sample case is missing")
    return [{"image": default_image}]


def training_datalist(datalist: str, key: str, base_dir: str | None = None) -> list[dict]:
    """``[{"image", "label"}, ...]`` from the ``key`` list ("training"/"validation") of an MSD-style datalist.

    Relative paths are taken relative to ``base_dir`` (default: the datalist's folder).
    """
    if not os.path.isfile(datalist):
        raise FileNotFoundError(f"{datalist}: datalist file not found (pass --datalist FILE)")
    return load_decathlon_datalist(datalist, is_segmentation=True, data_list_key=key, base_dir=base_dir)


def pending_cases(cases: list[dict], output_dir: str, skip_existing: bool) -> list[dict]:
    """``cases`` without those whose report is already in ``output_dir`` (when ``skip_existing``)."""
    if not skip_existing:
        return cases
    done = lambda c: os.path.exists(os.path.join(output_dir, f"{case_name(c.get('image', ''))}_report.json"))
    return [c for c in cases if not done(c)]


def case_name(path: str) -> str:
    """Output name of an input file: its name without ``.nii.gz`` / ``.nii``."""
    name = os.path.basename(str(path))
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
