"""Healthy pseudo-FLAIR training anatomy: known contrast at the tissue peaks, files and datalist it writes."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
from conftest import BUNDLE_ROOT, SHARED_DATA, require_shared
from monai.bundle import ConfigParser
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from bundle.dev.healthy_anatomy import COLIN27_BRAIN, healthy_cases, pseudo_flair
from bundle.preprocessing.intensity import NormalizeToTissued
from bundle.training.synthesis import SynthesizeLesionsd

PEAKS = (30.0, 85.0, 113.0)
MNI_MASKS = SHARED_DATA / "open_ms_data" / "lesion_masks_mni"
MNI_BRAIN = SHARED_DATA / "open_ms_data" / "cross_sectional_mni" / "patient26_FLAIR.nii.gz"  # training's source box


def test_pseudo_flair_maps_the_tissue_peaks_to_flair_contrast():
    t1 = np.array([0.0, 15.0, 30.0, 57.5, 85.0, 113.0, 120.0])  # outside, CSF, CSF peak, CSF/GM, GM, WM, above WM
    flair = pseudo_flair(t1, PEAKS, gm_ratio=1.2, csf_ratio=0.3, noise_std=0.0)
    np.testing.assert_allclose(flair, [0, 30, 30, 75, 120, 100, 100], atol=1e-4)


def test_pseudo_flair_noise_is_seeded_and_only_inside_the_brain():
    t1 = np.full((20, 20, 20), 113.0)
    t1[:5] = 0
    a, b = (pseudo_flair(t1, PEAKS, 1.2, 0.3, noise_std=0.05, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert (a[:5] == 0).all()
    assert 4.0 < a[5:].std() < 6.0  # 0.05 of the white-matter level 100


def test_pseudo_flair_rejects_peaks_out_of_order():
    with pytest.raises(ValueError, match="increasing"):
        pseudo_flair(np.ones(3), (85.0, 30.0, 113.0), 1.2, 0.3)


def test_healthy_cases_write_images_empty_labels_and_an_extended_datalist(tmp_path):
    t1 = np.zeros((12, 12, 12), np.float32)
    t1[2:10, 2:10, 2:10] = 113.0
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(t1, affine), tmp_path / "t1.nii.gz")
    (tmp_path / "data").mkdir()
    for name in ("a_img", "a_lab", "v_img", "v_lab"):
        (tmp_path / "data" / f"{name}.nii.gz").write_bytes(b"")
    source = {
        "training": [{"image": "data/a_img.nii.gz", "label": "data/a_lab.nii.gz"}],
        "validation": [{"image": "data/v_img.nii.gz", "label": "data/v_lab.nii.gz"}],
    }
    (tmp_path / "list.json").write_text(json.dumps(source))

    contrasts = ((1.1, 0.3), (1.3, 0.4))
    out = tmp_path / "out"
    entries = healthy_cases(str(out), t1=str(tmp_path / "t1.nii.gz"), peaks=PEAKS, contrasts=contrasts,
                            datalist=str(tmp_path / "list.json"))

    assert len(entries) == 2
    for entry in entries:
        image, label = nib.load(entry["image"]), nib.load(entry["label"])
        np.testing.assert_array_equal(image.affine, affine)
        assert image.shape == label.shape == t1.shape
        assert not np.asarray(label.dataobj).any()  # healthy: no lesion until one is synthesised
        assert np.asarray(image.dataobj)[0].max() == 0  # outside the brain
    written = json.loads((out / "datalist.json").read_text())
    assert written["training"][0]["image"] == str(tmp_path / "data" / "a_img.nii.gz")
    assert written["training"][1:] == entries
    assert written["validation"] == [
        {"image": str(tmp_path / "data" / "v_img.nii.gz"), "label": str(tmp_path / "data" / "v_lab.nii.gz")}
    ]


def test_missing_t1_names_the_file_and_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="mricron-data"):
        healthy_cases(str(tmp_path), t1=str(tmp_path / "absent.nii.gz"))


@pytest.fixture(scope="module")
def colin_case(tmp_path_factory):
    """One pseudo-FLAIR Colin27 case (the default source), skipped when mricron-data is not installed."""
    if not os.path.isfile(COLIN27_BRAIN):
        pytest.skip(f"needs the Colin27 brain of Debian's mricron-data: {COLIN27_BRAIN} is absent")
    return healthy_cases(str(tmp_path_factory.mktemp("healthy")), contrasts=((1.22, 0.20),))[0]


def test_a_real_lesion_mask_lands_at_its_own_mni_location_on_the_healthy_brain(colin_case):
    require_shared(MNI_MASKS, MNI_BRAIN)
    mask_path = sorted(MNI_MASKS.glob("*.nii.gz"))[0]
    load = Compose([LoadImaged(["image", "label"], image_only=True), EnsureChannelFirstd(["image", "label"]),
                    NormalizeToTissued("image", method="mode")])
    case = load(colin_case)
    synth = SynthesizeLesionsd(["image", "label"], [str(mask_path)], str(MNI_BRAIN), prob=1.0, ratio_range=(1.4, 1.4))
    out = synth.set_random_state(0)(case)
    lesion = np.asarray(out["label"][0]) > 0
    mask = nib.load(mask_path)
    world = lambda idx, affine: (idx @ affine[:3, :3].T + affine[:3, 3]).mean(0)
    placed = world(np.argwhere(lesion).astype(float), np.asarray(case["image"].affine))
    source = world(np.argwhere(np.asarray(mask.dataobj) > 0).astype(float), mask.affine)
    assert lesion.sum() > 100
    assert np.linalg.norm(placed - source) < 10.0  # mm: both brains are in MNI space


def test_training_preprocessing_takes_a_healthy_case_with_its_empty_label(colin_case):
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "train.yaml"))
    parser.update({"bundle_root": str(BUNDLE_ROOT), "synthesis_prob": 0.0})
    patches = parser.get_parsed_content("train#preprocessing")(colin_case)
    assert len(patches) == parser.get_parsed_content("patches_per_volume")
    assert all(float(p["label"].sum()) == 0 for p in patches)  # no lesion unless one is synthesised
    assert all(float(p["image"].max()) > 0.5 for p in patches)  # patch centres fall on the brain, not on air
