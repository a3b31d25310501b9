"""Test-time input smoothing (`input_smoothing_sigma` in configs/inference.yaml): 0.5 voxel by default, per axis,
and sigma 0 leaves the input untouched."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import inference_preprocessing
from monai.transforms import Compose, GaussianSmoothd


def neighbour_correlation(x: np.ndarray, axis: int) -> float:
    """Pearson correlation of the volume with itself shifted by one voxel along ``axis``."""
    a, b = np.moveaxis(x, axis, 0)[:-1].ravel(), np.moveaxis(x, axis, 0)[1:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def noise_scan(tmp_path_factory):
    """White noise around a parenchyma level, on the model's 1.5 x 1.5 x 2 mm RAS grid already (Spacingd: identity)."""
    rng = np.random.default_rng(0)
    data = (200 + 20 * rng.standard_normal((48, 48, 24))).astype(np.float32)
    path = tmp_path_factory.mktemp("smooth") / "noise_flair.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(path))
    return str(path)


def test_default_sigma_is_half_a_voxel():
    default = inference_preprocessing()
    assert [t.converter.sigma for t in default.transforms if isinstance(t, GaussianSmoothd)] == [[0.5, 0.5, 0.5]]


def test_zero_sigma_leaves_the_input_unchanged(noise_scan):
    off = inference_preprocessing(input_smoothing_sigma=[0.0, 0.0, 0.0], bias_field_correction=False)
    without = Compose([t for t in off.transforms if not isinstance(t, GaussianSmoothd)])
    with_step, without_step = off({"image": noise_scan})["image"], without({"image": noise_scan})["image"]
    assert torch.equal(with_step.as_tensor(), without_step.as_tensor())


def test_through_plane_sigma_smooths_only_across_slices(noise_scan):
    inner = (slice(4, -4),) * 3  # away from the zero padding at the volume's faces

    def preprocessed(sigma):
        # no brain extraction: deepbet would cut a "brain" out of the noise
        transform = inference_preprocessing(
            input_smoothing_sigma=sigma, bias_field_correction=False, skull_strip=False
        )
        return transform({"image": noise_scan})["image"][0].numpy()[inner]

    x, off = preprocessed([0.0, 0.0, 1.0]), preprocessed([0.0, 0.0, 0.0])
    assert neighbour_correlation(off, 2) < 0.2  # white noise before
    assert neighbour_correlation(x, 2) > 0.6  # neighbouring slices share most of their noise after
    assert neighbour_correlation(x, 0) < 0.2 and neighbour_correlation(x, 1) < 0.2  # in-plane untouched
    assert x.std() < 0.7 * off.std()
