"""End-to-end inference through ``python -m monai.bundle run`` on real scans: outputs, geometry, report."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from conftest import BUNDLE_ROOT, RAW_MS, SAMPLE, SAMPLE_LABEL, require_shared, run_bundle

REPORT_KEYS = {
    "input", "model_version", "num_samples", "num_steps", "seed", "lesion_count", "lesion_volume_ml", "lesions",
    "mean_uncertainty_in_lesions", "uncertainty_score", "estimated_dice", "review_required", "review_rule",
    "sample_agreement", "lesion_fraction_at_brain_edge", "brain_volume_ml", "locations",
}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The shipped model on the embedded sample, launched from another folder via --bundle_root and --datalist."""
    work = tmp_path_factory.mktemp("sample_run")
    datalist = work / "list.json"
    datalist.write_text(json.dumps({"testing": [{"image": str(SAMPLE)}]}))
    out = work / "out"
    PRINTED["sample"] = run_bundle(
        "monai.bundle", "run", "--config_file", str(BUNDLE_ROOT / "configs" / "inference.yaml"),
        "--bundle_root", str(BUNDLE_ROOT), "--datalist", str(datalist), "--output_dir", str(out),
        "--num_samples", "4", "--num_steps", "4", cwd=work,
    )
    return out


PRINTED = {}  # what the sample run printed


def test_a_batch_prints_progress_and_one_line_per_case_not_library_noise(sample_run):
    """The run shows a bar over its cases and the case's line; library deprecations, the optional GPU DICOM
    decoder and the engine's INFO lines are not printed (``--debug true`` would show them)."""
    report = json.loads((sample_run / "BRATS_474_flair_report.json").read_text())
    printed = PRINTED["sample"].stdout + PRINTED["sample"].stderr
    flag = "REVIEW REQUIRED" if report["review_required"] else "no review flag"
    assert f"BRATS_474_flair: {report['lesion_count']} lesions, {report['lesion_volume_ml']:.1f} mL, {flag}" in printed
    assert "1/1" in printed and "cases" in printed  # the bar, with its count
    for noise in ("FutureWarning", "DeprecationWarning", "nvImageCodec", "Engine run resuming", "Restored all"):
        assert noise not in printed, noise


def test_a_batch_writes_its_cohort_tables(sample_run):
    """cohort.csv has the case's row, lesions.csv one row per lesion of its report, with the report's values."""
    import csv

    report = json.loads((sample_run / "BRATS_474_flair_report.json").read_text())
    (row,) = list(csv.DictReader((sample_run / "cohort.csv").open()))
    assert row["case"] == "BRATS_474_flair" and row["status"] == "ok" and row["failure_reason"] == ""
    assert int(row["lesion_count"]) == report["lesion_count"]
    assert float(row["lesion_volume_ml"]) == report["lesion_volume_ml"]
    assert row["review_required"] == str(report["review_required"])
    lesions = list(csv.DictReader((sample_run / "lesions.csv").open()))
    assert len(lesions) == report["lesion_count"]
    assert [float(r["volume_ml"]) for r in lesions] == [les["volume_ml"] for les in report["lesions"]]
    assert [float(lesions[0][f"centroid_{a}_mm"]) for a in "xyz"] == report["lesions"][0]["centroid_mm"]
    assert [r["location"] for r in lesions] == [les["location"] for les in report["lesions"]]
    places = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter")
    assert sum(int(row[f"{p}_count"]) for p in places) == report["lesion_count"]
    assert {p: int(row[f"{p}_count"]) for p in places} == {p: v["count"] for p, v in report["locations"].items()}


def test_sample_outputs_have_input_geometry(sample_run):
    image = nib.load(SAMPLE)
    seg = nib.load(sample_run / "BRATS_474_flair_seg.nii.gz")
    unc = nib.load(sample_run / "BRATS_474_flair_uncertainty.nii.gz")
    for out in (seg, unc):
        assert out.shape == image.shape
        np.testing.assert_allclose(out.affine, image.affine, atol=1e-4)
    mask = np.asarray(seg.dataobj)
    assert seg.get_data_dtype() == np.uint8 and set(np.unique(mask)) <= {0, 1}
    u = unc.get_fdata()
    assert u.min() >= 0 and u.max() <= 0.5 + 1e-6  # std of N values in [0, 1]


def test_sample_report_matches_mask(sample_run):
    report = json.loads((sample_run / "BRATS_474_flair_report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["num_samples"] == 4 and report["num_steps"] == 4 and report["seed"] == 0
    assert report["input"].endswith("BRATS_474_flair.nii.gz")
    assert report["skull_stripped_by_bundle"] is False  # skull-stripped already: passes unchanged
    seg = nib.load(sample_run / "BRATS_474_flair_seg.nii.gz")
    voxel_ml = abs(np.linalg.det(seg.affine[:3, :3])) / 1000
    assert report["lesion_volume_ml"] == pytest.approx(np.asarray(seg.dataobj).sum() * voxel_ml, rel=1e-3)
    assert report["lesion_count"] == len(report["lesions"])
    assert sum(les["volume_ml"] for les in report["lesions"]) == pytest.approx(report["lesion_volume_ml"], rel=1e-2)
    assert isinstance(report["review_required"], bool) and "case score > 0.4" in report["review_rule"]
    # the case score is 1 - the estimated Dice of the mask; the rule is the config's (0.4, 0.25)
    assert 0 < report["estimated_dice"] <= 1 and report["uncertainty_score"] == pytest.approx(1 - report["estimated_dice"])
    assert 0 <= report["sample_agreement"] <= 1 and 0 <= report["lesion_fraction_at_brain_edge"] <= 1
    assert report["review_required"] is (
        report["uncertainty_score"] > 0.4 or report["mean_uncertainty_in_lesions"] > 0.25
        or not 0.5 <= report["lesion_volume_ml"] <= 300 or not 800 <= report["brain_volume_ml"] <= 2400
    )


def test_shipped_model_finds_the_sample_tumour(sample_run):
    """The held-out sample's whole-tumour label (from ../shared) is found: a regression guard on the weights."""
    require_shared(SAMPLE_LABEL)
    label = np.asarray(nib.load(SAMPLE_LABEL).dataobj) > 0
    mask = np.asarray(nib.load(sample_run / "BRATS_474_flair_seg.nii.gz").dataobj) > 0
    dice = 2 * (label & mask).sum() / (label.sum() + mask.sum())
    assert dice > 0.6, f"Dice {dice:.3f} on the held-out sample"
    estimate = json.loads((sample_run / "BRATS_474_flair_report.json").read_text())["estimated_dice"]
    assert abs(estimate - dice) < 0.15, f"estimated Dice {estimate:.3f}, Dice {dice:.3f}"  # the review score's premise


def test_native_space_scan_with_skull_keeps_exact_geometry(tmp_path):
    """A real LPS, 0.72 x 0.72 x 4 mm scan with skull (via --dataset_dir) gets a mask on its own grid."""
    src = RAW_MS / "patient01_study1_FLAIR.nii.gz"
    require_shared(src)
    data = tmp_path / "in"
    data.mkdir()
    (data / src.name).symlink_to(src)
    out = tmp_path / "out"
    run_bundle(
        "monai.bundle", "run", "--config_file", "configs/inference.yaml", "--dataset_dir", str(data),
        "--output_dir", str(out), "--num_samples", "2", "--num_steps", "2",
    )
    image = nib.load(src)
    seg = nib.load(out / "patient01_study1_FLAIR_seg.nii.gz")
    assert seg.shape == image.shape
    np.testing.assert_allclose(seg.affine, image.affine, atol=1e-4)
    assert nib.aff2axcodes(seg.affine) == ("L", "P", "S")
    assert (out / "patient01_study1_FLAIR_uncertainty.nii.gz").exists()
    report = json.loads((out / "patient01_study1_FLAIR_report.json").read_text())
    assert report["input"].endswith(src.name)
    assert report["skull_stripped_by_bundle"] is True  # its skull was found and removed (bundle.preprocessing.brain_extraction)
    # the brain mask is written on the input grid; no lesion voxel lies outside it, and its volume is a brain's
    brain = np.asarray(nib.load(out / "patient01_study1_FLAIR_brain.nii.gz").dataobj) > 0
    mask = np.asarray(seg.dataobj) > 0
    assert not (mask & ~brain).any()
    assert not np.asarray(nib.load(out / "patient01_study1_FLAIR_uncertainty.nii.gz").dataobj)[~brain].any()
    voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000
    assert 900 < brain.sum() * voxel_ml < 2000
    assert report["brain_volume_ml"] == pytest.approx(brain.sum() * voxel_ml, rel=1e-3)


def test_same_seed_in_another_process_with_glibc_malloc_defaults_gives_bit_identical_outputs(sample_run, tmp_path):
    """Determinism, and the allocator setting (bundle.memory) changes no output: reused heap memory is not zeroed
    like fresh pages, so code that read uninitialised memory would differ here."""
    out = tmp_path / "again"
    run_bundle(
        "monai.bundle", "run", "--config_file", "configs/inference.yaml", "--output_dir", str(out),
        "--num_samples", "4", "--num_steps", "4", "--keep_freed_memory", "false",
    )
    for kind in ("seg", "uncertainty"):
        a = np.asarray(nib.load(sample_run / f"BRATS_474_flair_{kind}.nii.gz").dataobj)
        b = np.asarray(nib.load(out / f"BRATS_474_flair_{kind}.nii.gz").dataobj)
        assert np.array_equal(a, b), kind
    first, again = (json.loads((d / "BRATS_474_flair_report.json").read_text()) for d in (sample_run, out))
    assert first["lesions"] == again["lesions"] and first["locations"] == again["locations"]  # registration too
