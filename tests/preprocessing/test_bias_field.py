"""N4 bias-field correction (bundle/preprocessing/bias_field.py): removes a smooth coil field, leaves a corrected scan alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import inference_preprocessing
from monai.data import MetaTensor

from bundle.preprocessing.bias_field import N4BiasFieldCorrectiond, n4_bias_field


def ellipsoid_head(shape=(80, 96, 60)):
    """Tissue ~ N(200, 10) inside an ellipsoid, air 0 outside; the ellipsoid mask."""
    axes = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    inside = sum(((a - n / 2) / (0.42 * n)) ** 2 for a, n in zip(axes, shape)) < 1
    tissue = 200 + 10 * np.random.default_rng(0).standard_normal(shape)
    return np.where(inside, tissue, 0).astype(np.float32), inside


def slice_levels(volume, inside, axis=2):
    """Median tissue intensity of every 6th slice along ``axis`` that holds enough of the head."""
    levels = []
    for k in range(0, volume.shape[axis], 6):
        v = np.take(volume, k, axis)[np.take(inside, k, axis)]
        if v.size > 300:
            levels.append(float(np.median(v)))
    return np.array(levels)


def test_removes_a_head_to_foot_gradient():
    head, inside = ellipsoid_head()
    z = np.arange(head.shape[2]) / (head.shape[2] - 1)
    biased = head * np.exp(0.35 * (z - 0.5))[None, None, :]  # 35 % brighter towards the vertex
    corrected = biased / n4_bias_field(biased, spacing=(1.5, 1.5, 2.0))
    before, after = slice_levels(biased, inside), slice_levels(corrected, inside)
    assert before.max() / before.min() > 1.25
    assert after.max() / after.min() < 1.08


def test_field_of_a_corrected_scan_is_flat():
    head, inside = ellipsoid_head()
    field = n4_bias_field(head, spacing=(1.5, 1.5, 2.0))
    assert field.shape == head.shape
    assert field[inside].max() / field[inside].min() < 1.05


def test_dictionary_transform_keeps_meta_and_corrects_each_channel():
    head, inside = ellipsoid_head((48, 56, 40))
    x = np.arange(48) / 47
    channels = np.stack([head * np.exp(0.3 * (x - 0.5))[:, None, None], head])  # only channel 0 is biased
    image = MetaTensor(torch.from_numpy(channels), affine=torch.diag(torch.tensor([1.5, 1.5, 2.0, 1.0])))
    out = N4BiasFieldCorrectiond(keys="image")({"image": image})["image"]
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, image.affine)
    assert out.shape == image.shape
    first = slice_levels(out[0].numpy(), inside, axis=0)
    assert first.max() / first.min() < 1.08
    assert np.median(out[1].numpy()[inside]) == pytest.approx(np.median(head[inside]), rel=0.05)


def test_tiny_and_empty_volumes_do_not_fail():
    assert n4_bias_field(np.zeros((10, 10, 4), np.float32)).tolist() == np.ones((10, 10, 4)).tolist()
    assert n4_bias_field(np.random.default_rng(1).random((12, 12, 6)).astype(np.float32) + 1).shape == (12, 12, 6)


@pytest.mark.parametrize("enabled", [False, True])
def test_config_key_switches_the_correction(enabled):
    names = [type(t).__name__ for t in inference_preprocessing(bias_field_correction=enabled).transforms]
    spacing = names.index("Spacingd")
    assert names[spacing + 1] == "BrainExtractiond"  # the skull goes first, so N4 fits the brain only
    assert names[spacing + 2] == ("N4BiasFieldCorrectiond" if enabled else "Identityd")
    assert names.index("NormalizeToTissued") > spacing + 2  # the field is removed before the intensity scale


def test_correction_is_on_by_default():
    names = [type(t).__name__ for t in inference_preprocessing().transforms]
    assert names[names.index("Spacingd") + 2] == "N4BiasFieldCorrectiond"  # after BrainExtractiond
