"""MONAI Deploy app on the real DICOM series: DICOM SEG out, referencing the source, on the source geometry."""

from __future__ import annotations

import glob
import json
import subprocess

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import BUNDLE_ROOT, DICOM_SERIES, require_shared, run_bundle


@pytest.fixture(scope="module")
def deploy_run(tmp_path_factory):
    require_shared(DICOM_SERIES)
    setup = subprocess.run(["bash", str(BUNDLE_ROOT / "bundle" / "deploy" / "setup.sh")], capture_output=True,
                           text=True, timeout=1800)
    assert setup.returncode == 0, setup.stderr[-3000:]
    out = tmp_path_factory.mktemp("deploy")
    run_bundle("bundle.deploy", "-i", str(DICOM_SERIES), "-o", str(out), "--num_samples", "2", "--num_steps", "2")
    return out


def test_seg_references_the_source_series_and_matches_its_geometry(deploy_run):
    sources = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f) for f in glob.glob(f"{DICOM_SERIES}/*.dcm"))}
    first = next(iter(sources.values()))
    (seg_file,) = glob.glob(f"{deploy_run}/*.dcm")
    seg = hd.seg.segread(seg_file)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert seg.number_of_segments == 1 and seg.Rows == first.Rows and seg.Columns == first.Columns
    version = json.loads((BUNDLE_ROOT / "configs" / "metadata.json").read_text())["version"]
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("Brain MRI lesion diffusion bundle", version)
    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(shared.PixelMeasuresSequence[0].PixelSpacing, first.PixelSpacing)
    np.testing.assert_allclose(shared.PlaneOrientationSequence[0].ImageOrientationPatient,
                               first.ImageOrientationPatient, atol=1e-4)
    for frame in seg.PerFrameFunctionalGroupsSequence:  # every frame sits on a source slice
        source = sources[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(frame.PlanePositionSequence[0].ImagePositionPatient, source.ImagePositionPatient,
                                   atol=1e-3)


def test_seg_pixels_are_the_bundle_mask_at_the_same_world_points(deploy_run):
    """The SEG frame of each source slice equals the NIfTI mask the app also wrote, looked up by world position."""
    (seg_file,) = glob.glob(f"{deploy_run}/*.dcm")
    seg = hd.seg.segread(seg_file)
    (nifti,) = glob.glob(f"{deploy_run}/series_*_seg.nii.gz")
    mask_img = nib.load(nifti)
    mask = np.asarray(mask_img.dataobj) > 0
    headers = {ds.SOPInstanceUID: ds for ds in
               (pydicom.dcmread(f, stop_before_pixels=True) for f in glob.glob(f"{DICOM_SERIES}/*.dcm"))}
    uids = sorted(headers)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1],
                                               ignore_spatial_locations=True)[..., 0]
    assert mask.sum() > 0 and pixels.sum() == mask.sum()
    for uid, frame in zip(uids, pixels):
        ds = headers[uid]
        x, y = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        r, c = np.nonzero(np.ones_like(frame))
        lps = np.asarray(ds.ImagePositionPatient, float) + np.outer(c * dc, x) + np.outer(r * dr, y)
        ijk = np.round(np.linalg.solve(mask_img.affine, np.c_[lps * [-1, -1, 1], np.ones(len(r))].T)[:3]).astype(int)
        np.testing.assert_array_equal(frame[r, c] > 0, mask[tuple(ijk)])


def test_app_also_writes_uncertainty_report_and_review_image(deploy_run):
    (unc,) = glob.glob(f"{deploy_run}/series_*_uncertainty.nii.gz")
    image = nib.load(unc)
    assert image.shape == (256, 256, 35) and image.get_data_dtype() == np.float32
    values = np.asarray(image.dataobj)
    assert values.min() >= 0 and values.max() <= 0.5 + 1e-6
    (report,) = glob.glob(f"{deploy_run}/series_*_report.json")
    content = json.loads(open(report).read())
    assert content["num_samples"] == 2
    source = pydicom.dcmread(glob.glob(f"{DICOM_SERIES}/*.dcm")[0], stop_before_pixels=True)
    assert content["input"]["SeriesInstanceUID"] == source.SeriesInstanceUID
    # the review rule's header check reaches the source series through the temporary NIfTI: a T1 series is flagged
    assert content["not_flair_reason"].startswith("EchoTime 2.46 ms") and content["review_required"] is True
    assert "EchoTime 2.46 ms" in content["review_rule"]
    assert glob.glob(f"{deploy_run}/series_*_review.png")
    assert not glob.glob(f"{deploy_run}/.work_*"), "the temporary NIfTI is removed"


def test_assembled_app_folder_runs_as_in_the_container(deploy_run, tmp_path):
    """The folder `monai-deploy package` would containerise runs with only model.ts (no model.pt, no docs)."""
    app = tmp_path / "app"
    subprocess.run(["bash", str(BUNDLE_ROOT / "bundle" / "deploy" / "make_app_dir.sh"), str(app)], check=True)
    assert not (app / "models" / "model.pt").exists() and (app / "app.yaml").exists()
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(BUNDLE_ROOT / ".venv-deploy" / "bin" / "python"), str(app), "-i", str(DICOM_SERIES), "-o", str(out),
         "--num_samples", "1", "--num_steps", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (seg_file,) = glob.glob(f"{out}/*.dcm")
    assert hd.seg.segread(seg_file).number_of_segments == 1
