"""Lesion synthesis on a phantom whose answers are known: where lesions go, how bright, what the label says."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import sphere_phantom
from monai.data import MetaTensor

from bundle.training.synthesis import SynthesizeLesionsd


@pytest.fixture
def sources(tmp_path):
    """A 40^3 1 mm 'MNI' brain (sphere) and one lesion mask: a 6^3 cube right of centre."""
    grid = np.indices((40, 40, 40)) - 20
    brain = (np.sqrt((grid**2).sum(0)) < 15).astype(np.uint8)
    lesion = np.zeros((40, 40, 40), np.uint8)
    lesion[24:30, 17:23, 17:23] = 1
    affine = np.eye(4)
    affine[:3, 3] = -20
    nib.save(nib.Nifti1Image(brain, affine), tmp_path / "brain.nii.gz")
    nib.save(nib.Nifti1Image(lesion, affine), tmp_path / "lesion.nii.gz")
    return str(tmp_path / "brain.nii.gz"), str(tmp_path / "lesion.nii.gz")


def phantom(existing_lesion: bool):
    """Target: the same brain at 2 mm voxels (20^3, tissue = 1.0), optionally with a labelled lesion."""
    return sphere_phantom(7.5, np.s_[12:15, 8:12, 8:12] if existing_lesion else None)


def test_inserts_the_lesion_where_the_brains_correspond(sources):
    brain, lesion = sources
    synth = SynthesizeLesionsd(["image", "label"], [lesion], brain, prob=1.0, ratio_range=(1.5, 1.5), noise_std=0.0)
    out = synth(phantom(existing_lesion=False))
    new = out["label"][0].numpy() > 0
    assert 8 <= new.sum() <= 40  # a 6 mm cube at 2 mm voxels, blurred: about 27 voxels
    centre = np.argwhere(new).mean(0)
    np.testing.assert_allclose(centre, [13.5, 10, 10], atol=1.0)  # world x = 7 mm right of centre
    inside = out["image"][0].numpy()[new]
    assert inside.max() <= 1.5 + 1e-5 and inside.mean() > 1.25  # hyperintense, partial volume at the edge
    assert isinstance(out["image"], MetaTensor) and torch.equal(out["image"].affine, phantom(False)["image"].affine)


def test_no_lesion_near_an_existing_label_and_nothing_without_prob(sources):
    brain, lesion = sources
    data = phantom(existing_lesion=True)
    synth = SynthesizeLesionsd(["image", "label"], [lesion], brain, prob=1.0, exclusion_margin=3)
    out = synth(data)
    torch.testing.assert_close(out["image"], data["image"])  # the only candidate site touches the labelled lesion
    torch.testing.assert_close(out["label"], data["label"])
    clean = phantom(existing_lesion=False)
    untouched = SynthesizeLesionsd(["image", "label"], [lesion], brain, prob=0.0)(clean)
    torch.testing.assert_close(untouched["image"], clean["image"])


def test_thick_slice_simulation_blurs_only_the_chosen_axis():
    from bundle.training.augment import RandThickSliced

    image = torch.zeros(1, 16, 16, 32)
    image[..., ::4] = 1.0  # thin bright slices every 4 mm (1 mm voxels)
    data = {"image": MetaTensor(image, affine=torch.eye(4))}
    aug = RandThickSliced("image", prob=1.0, thickness_range=(4.0, 4.0), axis_probs=(0, 0, 1))
    out = aug(data)["image"]
    assert isinstance(out, MetaTensor) and out.shape == image.shape
    profile = out[0, 8, 8]
    assert profile.max() < 0.6 and profile.min() > 0.1  # 4 mm slabs average the thin slices away
    torch.testing.assert_close(out[0, :, :, 5], out[0, 3, 3, 5].expand(16, 16))  # in-plane untouched (uniform)
    assert torch.equal(RandThickSliced("image", prob=0.0)(data)["image"], data["image"])
