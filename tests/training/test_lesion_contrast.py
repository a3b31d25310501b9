"""Faint-lesion augmentation on a phantom with a known lesion: target contrast reached, nothing else touched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bundle.training.lesion_contrast import RandLesionContrastd


def bright_lesion_phantom():
    """Tissue at 1.0 with a dark 'CSF' slab at 0.3, and a 10^3 labelled lesion at 2.0 with a necrotic core at 0.5
    and one bright partial-volume voxel (1.6) just outside the label."""
    image = np.ones((1, 40, 40, 40), np.float32)
    image[:, :, :, :4] = 0.3
    label = np.zeros((1, 40, 40, 40), np.float32)
    label[:, 15:25, 15:25, 15:25] = 1
    image[label > 0] = 2.0
    image[:, 19:21, 19:21, 19:21] = 0.5
    image[:, 14, 20, 20] = 1.6
    return {"image": torch.as_tensor(image), "label": torch.as_tensor(label)}


def test_lesion_median_reaches_the_target_ratio_and_nothing_else_changes():
    data = bright_lesion_phantom()
    out = RandLesionContrastd(["image", "label"], prob=1.0, ratio_range=(1.2, 1.2))(data)
    image, before = out["image"][0].numpy(), data["image"][0].numpy()
    lesion = data["label"][0].numpy() > 0
    assert abs(np.median(image[lesion]) - 1.2) < 0.02
    assert image[lesion].max() < 1.21  # no bright rim left at the lesion edge
    assert 1.0 < image[14, 20, 20] < 1.55 # partial-volume edge just outside the label: faded in part
    np.testing.assert_array_equal(image[19:21, 19:21, 19:21], 0.5)  # below tissue level: kept
    far = np.ones_like(lesion)
    far[10:30, 10:30, 10:30] = False
    np.testing.assert_array_equal(image[far], before[far])  # tissue and CSF away from the lesion
    assert np.all(image >= np.minimum(before, 1.0))  # never pulled below tissue level
    np.testing.assert_array_equal(out["label"].numpy(), data["label"].numpy())


def test_no_change_without_prob_without_lesion_or_when_already_faint():
    data = bright_lesion_phantom()
    assert RandLesionContrastd(["image", "label"], prob=0.0)(data)["image"] is data["image"]
    empty = {"image": data["image"], "label": torch.zeros_like(data["label"])}
    assert RandLesionContrastd(["image", "label"], prob=1.0)(empty)["image"] is data["image"]
    faint = RandLesionContrastd(["image", "label"], prob=1.0, ratio_range=(2.5, 3.0))
    assert faint(data)["image"] is data["image"]


def test_seeded_ratio_draw_is_reproducible_and_bad_range_is_refused():
    first = RandLesionContrastd(["image", "label"], prob=1.0).set_random_state(3)(bright_lesion_phantom())
    second = RandLesionContrastd(["image", "label"], prob=1.0).set_random_state(3)(bright_lesion_phantom())
    torch.testing.assert_close(first["image"], second["image"])
    with pytest.raises(ValueError, match="tissue_level"):
        RandLesionContrastd(["image", "label"], ratio_range=(0.9, 1.2))
