"""Augmentations declared in configs/train.yaml, taken from the config itself (what training runs)."""

from __future__ import annotations

import numpy as np
import torch
from conftest import BUNDLE_ROOT
from monai.bundle import ConfigParser
from monai.data import MetaTensor


def train_augmentation(target: str, **overrides):
    """The ``train#augmentation`` item of configs/train.yaml whose ``_target_`` is ``target``, instantiated."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "train.yaml"))
    parser["bundle_root"] = str(BUNDLE_ROOT)
    for key, value in overrides.items():
        parser[key] = value
    items = parser["train"]["augmentation"]
    index = next(i for i, item in enumerate(items) if isinstance(item, dict) and item.get("_target_") == target)
    return parser.get_parsed_content(f"train#augmentation#{index}")


def test_zoom_scales_the_slices_in_plane_only_and_keeps_image_and_label_together():
    square = np.zeros((1, 64, 64, 5), np.float32)
    square[:, 24:40, 24:40, :] = 1.0  # 16 x 16 voxels in every slice
    zoom = train_augmentation("RandZoomd", zoom_prob=1.0, zoom_range=[0.7, 1.5])
    sides = []
    for seed in range(6):
        zoom.set_random_state(seed)
        out = zoom({"image": MetaTensor(torch.tensor(square)), "label": MetaTensor(torch.tensor(square))})
        image, label = np.asarray(out["image"])[0], np.asarray(out["label"])[0]
        assert image.shape == (64, 64, 5) and set(np.unique(label)) <= {0.0, 1.0}
        assert all(np.array_equal(label[..., 0], label[..., k]) for k in range(5))  # slice axis not zoomed
        side_x, side_y = label[:, 32, 0].sum(), label[32, :, 0].sum()
        assert abs(side_x - side_y) <= 1  # one factor for both in-plane axes
        assert 0.7 * 16 - 1 <= side_x <= 1.5 * 16 + 1
        assert np.abs((image > 0.5) != (label > 0.5)).sum() <= 2 * 4 * side_x * 5  # same geometry, edges aside
        sides.append(side_x)
    assert max(sides) - min(sides) >= 4  # the factor is drawn, not fixed
    off = train_augmentation("RandZoomd", zoom_prob=0.0)
    out = off({"image": MetaTensor(torch.tensor(square)), "label": MetaTensor(torch.tensor(square))})
    assert np.array_equal(np.asarray(out["label"]), square)
    # the recipe's default zooms about one volume in five
    recipe = train_augmentation("RandZoomd")
    recipe.set_random_state(0)
    zoomed = sum(not np.array_equal(np.asarray(recipe({"image": MetaTensor(torch.tensor(square)),
                                                        "label": MetaTensor(torch.tensor(square))})["label"]), square)
                 for _ in range(50))
    assert 3 <= zoomed <= 20
