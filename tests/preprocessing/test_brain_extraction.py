"""Brain extraction (deepbet) on real scans: skull-on scans get a plausible brain, skull-stripped ones pass unchanged,
and nothing is kept outside the brain mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DICOM_SERIES, RAW_MS, SAMPLE, SHARED_DATA, inference_preprocessing, require_shared
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, Spacingd
from scipy import ndimage

from bundle.preprocessing.brain_extraction import BrainExtractiond, MaskOutsideBraind, tissue_outside

PLAUSIBLE_BRAIN_ML = (900.0, 2000.0)  # adult brain (intracranial) volumes, native or MNI-scaled


def working_grid(path) -> MetaTensor:
    """A scan as the inference config has it when the brain is extracted: RAS, 1.5 x 1.5 x 2 mm."""
    load = Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"),
                    Orientationd("image", axcodes="RAS"), Spacingd("image", pixdim=(1.5, 1.5, 2.0))])
    return load({"image": str(path)})["image"]


def volume_ml(mask: torch.Tensor) -> float:
    return float((torch.as_tensor(mask) > 0).sum()) * 1.5 * 1.5 * 2.0 / 1000


@pytest.mark.parametrize("name", ["patient01_study1_FLAIR", "patient12_study1_FLAIR"])
def test_skull_on_flair_is_stripped_to_a_plausible_brain(name):
    path = RAW_MS / f"{name}.nii.gz"
    require_shared(path)
    image = working_grid(path)
    before = image[0].numpy()
    out = BrainExtractiond(keys="image")({"image": image})
    brain = out["brain"][0].numpy() > 0
    assert out["image"].meta["skull_stripped_by_bundle"] is True
    assert PLAUSIBLE_BRAIN_ML[0] < volume_ml(out["brain"]) < PLAUSIBLE_BRAIN_ML[1]
    assert tissue_outside(before, brain) > 0.5  # there was a lot of head outside the brain ...
    kept = out["image"][0].numpy()
    assert not kept[~brain].any()  # ... and none of it is left
    np.testing.assert_array_equal(kept[brain], before[brain])  # the brain itself untouched
    # the brain is one piece in the middle of the head, not the scalp: its centre lies deep inside the mask
    centre = np.round(ndimage.center_of_mass(brain)).astype(int)
    assert ndimage.distance_transform_edt(brain, sampling=(1.5, 1.5, 2.0))[tuple(centre)] > 30


def test_dicom_head_series_gets_a_brain_mask():
    """The real T1 head series (DICOM, sagittal, skull and face on) through the inference config's own loading."""
    require_shared(DICOM_SERIES)
    preprocessing = inference_preprocessing(bias_field_correction="false")
    data = preprocessing.transforms[0]({"image": str(DICOM_SERIES)})
    for transform in preprocessing.transforms[1:]:
        data = transform(data)
        if isinstance(transform, BrainExtractiond):
            break
    assert data["image"].meta["skull_stripped_by_bundle"] is True
    assert PLAUSIBLE_BRAIN_ML[0] < volume_ml(data["brain"]) < PLAUSIBLE_BRAIN_ML[1]
    assert not data["image"][0][data["brain"][0] == 0].any()


@pytest.mark.parametrize("path", [
    SAMPLE,
    SHARED_DATA / "open_ms_data" / "cross_sectional_mni" / "patient26_FLAIR.nii.gz",
    SHARED_DATA / "brats2018_flair" / "Brats18_CBICA_AAB_1_flair.nii.gz",
], ids=["msd-sample", "mni-ms", "brats2018"])
def test_skull_stripped_scan_passes_unchanged(path):
    require_shared(path)
    image = working_grid(path)
    out = BrainExtractiond(keys="image")({"image": image.clone()})
    assert out["image"].meta["skull_stripped_by_bundle"] is False
    assert torch.equal(out["image"].as_tensor(), image.as_tensor())
    # its brain mask is its own tissue: every non-zero voxel is inside
    assert (out["brain"][0] > 0)[image[0] > 0].all()
    # with extraction switched off the scan is never changed and deepbet never runs
    off = BrainExtractiond(keys="image", extract=False)({"image": image.clone()})
    assert torch.equal(off["image"].as_tensor(), image.as_tensor()) and torch.equal(off["brain"], out["brain"])


def test_mask_outside_brain_zeroes_probability_and_uncertainty_outside_only():
    rng = np.random.default_rng(0)
    pred = torch.as_tensor(rng.uniform(size=(2, 6, 7, 5)).astype(np.float32))
    brain = torch.zeros((1, 6, 7, 5), dtype=torch.uint8)
    brain[0, 1:4, 2:6, 1:4] = 1
    out = MaskOutsideBraind(keys="pred")({"pred": pred, "brain": brain})["pred"]
    inside = brain[0].bool()
    assert torch.equal(out[:, inside], pred[:, inside])
    assert not out[:, ~inside].any()
    with pytest.raises(ValueError, match="other grids"):
        MaskOutsideBraind(keys="pred")({"pred": pred, "brain": brain[..., :4]})
    # no brain mask in the data: unchanged
    assert torch.equal(MaskOutsideBraind(keys="pred")({"pred": pred})["pred"], pred)


def test_inference_config_extracts_the_brain_before_n4_and_carries_the_mask_to_the_end():
    names = [type(t).__name__ for t in inference_preprocessing().transforms]
    assert names.index("Spacingd") < names.index("BrainExtractiond") < names.index("N4BiasFieldCorrectiond")
    off = [t for t in inference_preprocessing(skull_strip="false").transforms if isinstance(t, BrainExtractiond)]
    assert len(off) == 1 and off[0].extract is False
    for t in inference_preprocessing().transforms:
        if type(t).__name__ in ("CropForegroundd", "DivisiblePadd"):
            assert "brain" in t.keys  # the mask stays on the image's grid
