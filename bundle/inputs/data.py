"""Which inputs a run reads: a datalist (MSD-style JSON), a folder (NIfTI files and DICOM series), or the sample."""

from __future__ import annotations

import glob
import os

from monai.data import load_decathlon_datalist

from bundle.inputs.dicom_series import is_dicom_folder

NIFTI_PATTERNS = ("*.nii", "*.nii.gz")


def inference_datalist(dataset_dir: str = "", datalist: str = "", default_image: str = "") -> list[dict]:
    """``[{"image": path}, ...]`` from ``datalist`` (its "testing" list) or ``dataset_dir``, else ``default_image``.

    ``dataset_dir`` is a DICOM series folder, or a folder of NIfTI files and/or DICOM series folders (one series
    each). Relative paths in a datalist are taken relative to the datalist's folder.
    """
    if datalist:
        if not os.path.isfile(datalist):
            raise FileNotFoundError(f"{datalist}: datalist file not found")
        return load_decathlon_datalist(datalist, is_segmentation=False, data_list_key="testing")
    if dataset_dir:
        if not os.path.isdir(dataset_dir):
            raise FileNotFoundError(f"{dataset_dir}: dataset_dir is not a folder")
        if is_dicom_folder(dataset_dir):  # the folder is one DICOM series
            return [{"image": os.path.normpath(dataset_dir)}]
        files = sorted({f for pattern in NIFTI_PATTERNS for f in glob.glob(os.path.join(dataset_dir, pattern))})
        series = sorted(d for d in glob.glob(os.path.join(dataset_dir, "*")) if is_dicom_folder(d))
        if not files and not series:
            raise FileNotFoundError(
                f"{dataset_dir}: no NIfTI files (*.nii, *.nii.gz) and no DICOM series folders in this folder"
            )
        return [{"image": f} for f in files + series]
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


def case_name(path: str | list[str]) -> str:
    """Output name of an input: the file's name without ``.nii.gz`` / ``.nii``, a DICOM folder's name.

    For a list of modality images, the first one's.
    """
    if isinstance(path, (list, tuple)):
        path = path[0] if path else ""
    name = os.path.basename(os.path.normpath(str(path)))
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
