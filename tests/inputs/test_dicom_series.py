"""DICOM series folders as input: the real series is read on the right world grid; broken folders are refused."""

from __future__ import annotations

import glob
import json
import os
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import DICOM_SERIES as SERIES
from conftest import dicom_world_samples, require_shared, run_bundle

from bundle.inputs.data import inference_datalist
from bundle.inputs.dicom_series import not_flair_reason
from bundle.inputs.input_check import InputError, check_image


@pytest.fixture
def series_copy(tmp_path):
    require_shared(SERIES)
    return shutil.copytree(SERIES, tmp_path / "series")


def test_real_series_mask_lands_on_the_anatomy(tmp_path):
    """Inference on the real sagittal series: outputs sit on the series' own world grid, and the voxel an output
    grid index names is the DICOM pixel at that world point (so no axis is flipped between LPS and RAS)."""
    require_shared(SERIES)
    from monai.transforms import LoadImage

    out = tmp_path / "out"
    run_bundle(
        "monai.bundle", "run", "--config_file", "configs/inference.yaml", "--dataset_dir", str(SERIES),
        "--output_dir", str(out), "--num_samples", "2", "--num_steps", "2",
    )
    seg = nib.load(out / "t1_sag_hfs_seg.nii.gz")
    volume = LoadImage(image_only=True)(str(SERIES))  # the reader the bundle's LoadImaged uses for a folder
    assert seg.shape == tuple(volume.shape) == (256, 256, 35)
    np.testing.assert_allclose(seg.affine, volume.affine.numpy(), atol=1e-3)
    points, values = dicom_world_samples(SERIES)
    ijk = np.linalg.solve(seg.affine, np.c_[points, np.ones(len(points))].T)[:3].T
    np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-3)  # every DICOM pixel centre is an output voxel centre
    i, j, k = np.round(ijk).astype(int).T
    np.testing.assert_array_equal(volume.numpy()[i, j, k], values)
    mask = np.asarray(seg.dataobj) > 0
    head = volume.numpy() > np.percentile(volume.numpy(), 50)
    assert mask.any() and (mask & head).sum() / mask.sum() > 0.95  # what is segmented is tissue, not air
    # the skull-on head went through brain extraction: a brain-sized mask, and nothing marked outside it
    brain = np.asarray(nib.load(out / "t1_sag_hfs_brain.nii.gz").dataobj) > 0
    voxel_ml = abs(np.linalg.det(seg.affine[:3, :3])) / 1000
    assert 900 < brain.sum() * voxel_ml < 2000 and not (mask & ~brain).any()
    report = json.loads((out / "t1_sag_hfs_report.json").read_text())
    assert report["input"].endswith("t1_sag_hfs")
    # a T1 series: the FLAIR model marks fat and scalp, so the report flags it whatever the samples agree on
    assert report["not_flair_reason"].startswith("EchoTime 2.46 ms") and report["review_required"] is True


def test_dataset_dir_lists_series_folders_beside_nifti_files(tmp_path, series_copy):
    (tmp_path / "notes").mkdir()
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    assert inference_datalist(str(tmp_path)) == [{"image": str(tmp_path / "a.nii.gz")}, {"image": str(series_copy)}]
    assert inference_datalist(str(series_copy) + "/") == [{"image": str(series_copy)}]


def _set_headers(folder, **tags):
    """Give every file of ``folder`` these header values (None deletes the tag)."""
    for path in glob.glob(os.path.join(folder, "*.dcm")):
        header = pydicom.dcmread(path)
        for keyword, value in tags.items():
            if value is not None:
                setattr(header, keyword, value)
            elif keyword in header:
                delattr(header, keyword)
        header.save_as(path)


@pytest.mark.parametrize(
    "tags, reason",
    [
        ({}, "EchoTime 2.46 ms < 50 ms"),  # the real series: T1-weighted gradient echo
        ({"EchoTime": 120.0, "ScanningSequence": ["SE", "IR"], "InversionTime": 2500.0}, ""),  # a 2D FLAIR
        ({"EchoTime": 387.0, "ScanningSequence": "SE", "InversionTime": 1800.0}, ""),  # 3D FLAIR (SPACE/CUBE)
        ({"EchoTime": 100.0, "ScanningSequence": "SE", "InversionTime": None}, "no inversion recovery"),  # a T2
        ({"EchoTime": None, "ScanningSequence": None, "InversionTime": None}, ""),  # anonymised: headers say nothing
    ],
)
def test_headers_that_say_the_series_is_not_a_flair(series_copy, tags, reason):
    _set_headers(series_copy, **tags)
    found = not_flair_reason(str(series_copy))
    assert found.startswith(reason) and bool(found) is bool(reason)


@pytest.mark.parametrize(
    "sidecar, reason",
    [
        ({"EchoTime": 0.00246, "RepetitionTime": 0.3, "ScanningSequence": "GR"}, "EchoTime 2.46 ms < 50 ms"),  # T1
        ({"EchoTime": 0.125, "InversionTime": 2.5, "ScanningSequence": "SE_IR"}, ""),  # dcm2niix's FLAIR sidecar
        ({"EchoTime": 0.1, "ScanningSequence": "SE"}, "no inversion recovery"),  # a T2
        ({"SeriesDescription": "t1"}, ""),  # no timing tags: says nothing (names are not trusted)
        ([1, 2], ""),  # not a BIDS sidecar
        (None, ""),  # no sidecar at all
    ],
)
def test_bids_sidecar_of_a_nifti_input(tmp_path, sidecar, reason):
    image = tmp_path / "sub-01_FLAIR.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), image)
    if sidecar is not None:
        (tmp_path / "sub-01_FLAIR.json").write_text(json.dumps(sidecar))
    found = not_flair_reason(str(image))
    assert found.startswith(reason) and bool(found) is bool(reason)


def test_real_series_passes_the_input_check():
    require_shared(SERIES)
    assert check_image(str(SERIES)) == (256, 256, 35)


def _drop_a_middle_slice(folder):
    number = lambda f: int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber)  # noqa: E731
    files = sorted(glob.glob(f"{folder}/*.dcm"), key=number)
    os.remove(files[len(files) // 2])


def _second_series(folder):
    path = sorted(glob.glob(f"{folder}/*.dcm"))[5]
    ds = pydicom.dcmread(path)
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1125.99"
    ds.save_as(path)


def _duplicate_slice(folder):
    files = sorted(glob.glob(f"{folder}/*.dcm"))
    ds = pydicom.dcmread(files[3])
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.2.1125.98"
    ds.save_as(f"{folder}/copy.dcm")


def _truncated_file(folder):
    path = sorted(glob.glob(f"{folder}/*.dcm"))[7]
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage, problem",
    [
        (_drop_a_middle_slice, "missing slices: a gap of 9.60 mm"),
        (_second_series, "2 DICOM series in one folder"),
        (_duplicate_slice, "two slices share the position"),
        (_truncated_file, "unreadable pixel data"),
    ],
)
def test_broken_series_gets_one_line_naming_the_folder(series_copy, damage, problem):
    damage(series_copy)
    with pytest.raises(InputError) as err:
        check_image(str(series_copy))
    message = str(err.value)
    assert message.startswith(f"{series_copy}: ") and problem in message and "\n" not in message


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "readme.txt").write_text("not an image")
    with pytest.raises(InputError, match="folder without DICOM files"):
        check_image(str(tmp_path))
