"""Shared fixtures: paths to the bundle, the shared real data (tests needing it skip when absent), CLI runner."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor

BUNDLE_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LESION_BUNDLE_SHARED", BUNDLE_ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
SAMPLE = BUNDLE_ROOT / "docs" / "sample" / "BRATS_474_flair.nii.gz"
SAMPLE_LABEL = SHARED_DATA / "msd_brain_tumour_flair128" / "BRATS_474_label.nii.gz"
GLIOMA = SHARED_DATA / "msd_brain_tumour_flair128"
RAW_MS = SHARED_DATA / "open_ms_data" / "longitudinal_raw"
DICOM_SERIES = SHARED_DATA / "dicom" / "t1_sag_hfs"


def require_shared(*paths: Path) -> None:
    """Skip the calling test, with the reason, when the shared real data it needs is missing."""
    for path in paths:
        if not path.exists():
            pytest.skip(f"needs the shared real MRI data: {path} is absent (expected ../shared beside the bundle)")


def require_colin27() -> tuple[str, str]:
    """(head, brain) of Colin27 from Debian's mricron-data; skip the calling test, with the reason, when absent."""
    from bundle.training.head_shell import COLIN27_BRAIN, COLIN27_HEAD

    for path in (COLIN27_HEAD, COLIN27_BRAIN):
        if not os.path.isfile(path):
            pytest.skip(f"needs the Colin27 head of Debian's mricron-data: {path} is absent")
    return COLIN27_HEAD, COLIN27_BRAIN


def phantom_head_files(folder: Path) -> tuple[str, str]:
    """A 48^3 1 mm full head written to ``folder``: brain sphere (r 12 mm, white matter 100) inside a scalp
    (r 12-22 mm, fat 150); returns the paths of the scan and of its brain mask."""
    import nibabel as nib

    radius = np.sqrt(((np.indices((48, 48, 48)) - 24) ** 2).sum(0))
    scan = np.where(radius < 12, 100.0, np.where(radius < 22, 150.0, 0.0)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, 3] = -24
    nib.save(nib.Nifti1Image(scan, affine), folder / "head.nii.gz")
    nib.save(nib.Nifti1Image((radius < 12).astype(np.uint8), affine), folder / "brain.nii.gz")
    return str(folder / "head.nii.gz"), str(folder / "brain.nii.gz")


def inference_preprocessing(**overrides):
    """The ``preprocessing`` Compose of configs/inference.yaml, with config keys overridden (e.g. mirror=False)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(BUNDLE_ROOT)
    for key, value in overrides.items():
        parser[key] = value
    return parser.get_parsed_content("preprocessing")


def run_bundle(*args: str, cwd: Path = BUNDLE_ROOT, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` like a user would; with ``check``, fail the test with its output if it exits non-zero."""
    env = dict(os.environ, PYTHONPATH=str(BUNDLE_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        pytest.fail(f"`python -m {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def dicom_world_samples(folder, every: int = 37):
    """(RAS world point, pixel value) of every ``every``-th pixel, computed from the DICOM tags alone.

    ``p_LPS = IPP + c * dc * X + r * dr * Y`` (X, Y = ImageOrientationPatient row/column directions,
    (dr, dc) = PixelSpacing); RAS = diag(-1, -1, 1) LPS.
    """
    points, values = [], []
    for path in sorted(glob.glob(f"{folder}/*.dcm")):
        ds = pydicom.dcmread(path)
        x, y = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        r, c = np.unravel_index(np.arange(0, ds.Rows * ds.Columns, every), (ds.Rows, ds.Columns))
        lps = np.asarray(ds.ImagePositionPatient, float) + np.outer(c * dc, x) + np.outer(r * dr, y)
        points.append(lps * [-1, -1, 1])
        values.append(ds.pixel_array[r, c])
    return np.concatenate(points), np.concatenate(values)


def sphere_phantom(radius_voxels: float, lesion: tuple[slice, ...] | None = None) -> dict:
    """A 20^3 volume of 2 mm voxels centred on world 0: a tissue sphere (1.0) and, optionally, a labelled lesion box.

    Returns {"image", "label"} as (1, 20, 20, 20) MetaTensors in RAS, for the training transforms' phantom tests.
    """
    image = (np.sqrt(((np.indices((20, 20, 20)) - 10) ** 2).sum(0)) < radius_voxels).astype(np.float32)
    label = np.zeros_like(image)
    if lesion is not None:
        label[lesion] = 1
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    affine[:3, 3] = -20
    return {"image": MetaTensor(image[None], affine=affine), "label": MetaTensor(label[None], affine=affine)}


@pytest.fixture
def scored_folder(tmp_path):
    """``make(cases, affine)`` -> (score dir, folds file): ``cases`` {name: (kind, predicted mask, label[, lesion
    probability])}, each written as image (random), label, and the fold-0 outputs seg, prob (the mask where not
    given), uncertainty (zeros) and brain (all ones) of a score at 100 iterations."""

    def make(cases: dict, affine=np.eye(4)):
        fold_dir = tmp_path / "score_100" / "fold_0"
        fold_dir.mkdir(parents=True)
        folds, scored = [], []
        for name, (kind, pred, label, *prob) in cases.items():
            image = np.random.default_rng(0).random(pred.shape).astype(np.float32)
            nib.save(nib.Nifti1Image(image, affine), tmp_path / f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), tmp_path / f"{name}_label.nii.gz")
            outputs = {"seg": pred.astype(np.uint8), "prob": (prob[0] if prob else pred).astype(np.float32),
                       "uncertainty": np.zeros(pred.shape, np.float32), "brain": np.ones(pred.shape, np.uint8)}
            for suffix, data in outputs.items():
                nib.save(nib.Nifti1Image(data, affine), fold_dir / f"{name}_{suffix}.nii.gz")
            folds.append({"image": str(tmp_path / f"{name}.nii.gz"), "label": str(tmp_path / f"{name}_label.nii.gz"),
                          "patient": name, "kind": kind, "fold": 0})
            scored.append({"id": name, "kind": kind, "fold": 0})
        (tmp_path / "folds.json").write_text(json.dumps({"cases": folds}))
        (tmp_path / "score_100" / "metrics.json").write_text(json.dumps({"iterations": 100, "cases": scored}))
        return str(tmp_path / "score_100"), str(tmp_path / "folds.json")

    return make
