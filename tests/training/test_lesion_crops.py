"""Lesion-balanced patch centres (bundle.training.lesion_crops) and the crop that configs/train.yaml declares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BUNDLE_ROOT
from monai.bundle import ConfigParser
from monai.data import MetaTensor

from bundle.training.lesion_crops import LesionBalancedIndicesd, lesion_balanced_indices


def _volume():
    """Tissue (1.0) in a 240 x 240 x 9 volume with a big lesion (20 x 20 x 5 = 2,000 voxels) and, more than a patch
    away, a one-voxel lesion."""
    image = np.zeros((240, 240, 9), np.float32)
    image[4:236, 4:236, :] = 1.0
    label = np.zeros_like(image)
    label[8:28, 8:28, 2:7] = 1
    label[200, 200, 4] = 1
    return image, label


def test_every_lesion_gets_the_same_number_of_entries_and_the_tissue_stays_negative():
    image, label = _volume()
    fg, bg = lesion_balanced_indices(label, image, per_lesion=50)
    assert len(fg) == 100  # two lesions, 50 entries each
    voxels = np.unravel_index(fg, label.shape)
    small = (voxels[0] == 200) & (voxels[1] == 200) & (voxels[2] == 4)
    assert small.sum() == 50 and label[voxels].all()  # the one-voxel lesion repeated; every entry a lesion voxel
    assert len(np.unique(fg[~small])) == 50  # 50 distinct voxels of the big lesion, at an even stride
    tissue = (image > 0.2) & (label == 0)
    np.testing.assert_array_equal(bg, np.flatnonzero(tissue))
    fg, bg = lesion_balanced_indices(np.zeros_like(label), image)  # no lesion: no positive centre
    assert len(fg) == 0 and len(bg) == tissue.sum() + label.sum()
    with pytest.raises(ValueError, match="per_lesion"):
        LesionBalancedIndicesd(per_lesion=0)


def _crop(balanced: bool):
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_ROOT / "configs" / "train.yaml"))
    parser["bundle_root"] = str(BUNDLE_ROOT)
    parser["lesion_balanced_crops"] = balanced
    index = next(i for i, item in enumerate(parser["train"]["augmentation"]) if "balanced_crop" in str(item))
    return parser.get_parsed_content(f"train#augmentation#{index}"), parser["patches_per_volume"]


@pytest.mark.parametrize("balanced", [False, True])
def test_the_config_crop_draws_the_small_lesion_as_often_as_the_big_one_only_when_balanced(balanced):
    image, label = _volume()
    crop, per_volume = _crop(balanced)
    hits, patches = 0, 0
    for seed in range(40):
        crop.set_random_state(seed)
        data = {"image": MetaTensor(torch.from_numpy(image)[None]), "label": MetaTensor(torch.from_numpy(label)[None])}
        out = crop(data)
        assert len(out) == per_volume
        for patch in out:
            assert tuple(patch["image"].shape) == (1, 96, 96, 3) and "fg_indices" not in patch
            hits += bool(patch["label"].sum() == 1)  # the small lesion's voxel alone (the big one: 100+ per slice)
            patches += 1
    share = hits / patches  # patches that hold the small lesion
    assert share > 0.2 if balanced else share < 0.05, share
