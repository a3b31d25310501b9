"""Skull stripping: a phantom head whose brain, lesion and scalp are known; skull-stripped scans pass unchanged."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Identityd
from scipy import ndimage

from bundle.acquisition_variants import with_skull
from bundle.head_shell import load_head_shell
from bundle.skull_strip import SkullStripd, brain_mask, tissue_level
from conftest import SAMPLE, SAMPLE_LABEL, inference_preprocessing, require_colin27, require_shared

SPACING = (2.0, 2.0, 2.0)


def phantom(spacing=SPACING, skull: bool = True) -> dict[str, np.ndarray]:
    """A FLAIR-like head on a grid of ``spacing`` mm: brain ellipsoid (radii 50, 60, 45 mm, parenchyma 100) with
    dark ventricles (20) and a bright lesion (150) 4 mm under the brain surface; with ``skull``: CSF and skull
    (dark, 10) for 6 mm, then 8 mm of scalp (fat, 130) and a thick layer of muscle (50) below the brain.
    """
    shape = tuple(int(round(extent / s)) for extent, s in zip((160, 180, 150), spacing))
    grid = np.stack(np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)], indexing="ij"))
    radius = np.sqrt(((grid / np.array([50.0, 60.0, 45.0])[:, None, None, None]) ** 2).sum(0))  # 1 at the surface
    depth_mm = (radius - 1) * 50  # about mm outside the brain surface
    brain = radius < 1
    ventricles = (np.abs(grid[0]) < 8) & (np.abs(grid[1]) < 20) & (np.abs(grid[2]) < 10)
    lesion = (np.sqrt(((grid - np.array([0.0, 0.0, 35.0])[:, None, None, None]) ** 2).sum(0)) < 5) & brain
    image = np.where(brain, 100.0, 0.0)
    image[ventricles] = 20.0
    image[lesion] = 150.0
    if skull:
        image[(depth_mm >= 0) & (depth_mm < 6)] = 10.0
        image[(depth_mm >= 6) & (depth_mm < 14)] = 130.0
        image[(depth_mm >= 0) & (depth_mm < 30) & (grid[2] < -35)] = 50.0  # neck and face muscle below the brain
    return {"image": image.astype(np.float32), "brain": brain, "lesion": lesion, "scalp": depth_mm >= 6}


def as_meta(image: np.ndarray, spacing=SPACING) -> MetaTensor:
    return MetaTensor(torch.as_tensor(image)[None], affine=torch.as_tensor(np.diag([*spacing, 1.0])))


def test_tissue_level_finds_the_parenchyma_under_a_dim_tail():
    assert tissue_level(phantom()["image"]) == pytest.approx(100.0, rel=0.05)
    # more dim tissue (muscle, partial volume: density falling from 20 to 90) than brain: the median of the voxels
    # above the mean lands between the two; the iteration moves it to the parenchyma
    rng = np.random.default_rng(0)
    dim = 20 + 70 * (1 - np.sqrt(rng.uniform(size=12000)))
    values = np.concatenate([rng.normal(100, 5, 10000), dim, np.zeros(40000)]).astype(np.float32)
    assert np.median(values[values > values.mean()]) < 85
    assert tissue_level(values) == pytest.approx(100.0, rel=0.05)


@pytest.mark.parametrize("spacing", [SPACING, (1.0, 1.0, 5.0)], ids=["2mm", "thick-5mm"])
def test_scalp_is_removed_and_the_whole_brain_with_its_lesion_kept(spacing):
    p = phantom(spacing)
    out = SkullStripd(keys="image")({"image": as_meta(p["image"], spacing)})["image"]
    assert isinstance(out, MetaTensor) and np.allclose(out.affine, np.diag([*spacing, 1.0]))
    assert out.meta["skull_stripped_by_bundle"] is True
    kept = out[0].numpy()
    np.testing.assert_array_equal(kept[p["brain"]], p["image"][p["brain"]])  # brain, ventricles, lesion untouched
    assert kept[p["scalp"]].max() == 0  # scalp fat and muscle gone
    mask = brain_mask(p["image"], spacing)
    assert mask[p["lesion"]].all() and not mask[p["scalp"]].any()


def test_skull_stripped_scan_passes_unchanged():
    p = phantom(skull=False)
    image = as_meta(p["image"])
    out = SkullStripd(keys="image")({"image": image})["image"]
    assert torch.equal(out, image) and out.meta["skull_stripped_by_bundle"] is False
    # with the skull the same transform does change the scan (the test above could not pass by doing nothing)
    head = as_meta(phantom()["image"])
    assert not torch.equal(SkullStripd(keys="image")({"image": head})["image"], head)


def test_all_channels_follow_the_first_and_empty_scans_are_left_alone():
    p = phantom()
    two = MetaTensor(torch.as_tensor(np.stack([p["image"], 2 * p["image"]])), affine=torch.eye(4) * 2)
    two.affine[3, 3] = 1
    out = SkullStripd(keys="image")({"image": two})["image"].numpy()
    assert out[1][p["scalp"]].max() == 0 and np.array_equal(out[1][p["brain"]], 2 * p["image"][p["brain"]])
    empty = as_meta(np.zeros((8, 8, 8), np.float32))
    assert torch.equal(SkullStripd(keys="image")({"image": empty})["image"], empty)


def test_real_case_with_a_real_head_around_it():
    """The embedded glioma case inside Colin27's scalp and skull: the shell goes, the brain and every lesion voxel
    stay; the case as given passes unchanged. Through the inference config's preprocessing switch."""
    colin_head, colin_brain = require_colin27()
    require_shared(SAMPLE_LABEL)
    image, label = nib.load(SAMPLE), nib.load(SAMPLE_LABEL)
    voxels = np.asarray(image.dataobj, np.float32)
    head, affine = with_skull(voxels, image.affine, load_head_shell(colin_head, colin_brain))
    pad = tuple((head.shape[i] - voxels.shape[i]) // 2 for i in range(3))
    inner = tuple(slice(p, p + n) for p, n in zip(pad, voxels.shape))
    brain = np.zeros(head.shape, bool)
    brain[inner] = voxels > 0.05 * voxels.max()
    lesion = np.zeros(head.shape, bool)
    lesion[inner] = np.asarray(label.dataobj) > 0
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    shell = (head > 0) & (ndimage.distance_transform_edt(~brain, sampling=spacing) > 3)
    assert shell.sum() > 0.3 * brain.sum()  # a real head was put around it

    strip = SkullStripd(keys="image")
    out = strip({"image": MetaTensor(torch.as_tensor(head)[None], affine=torch.as_tensor(affine))})["image"][0].numpy()
    assert (out[lesion] == head[lesion]).all()  # every lesion voxel kept as it was
    assert (out[brain] == head[brain]).mean() > 0.97
    assert (out[shell] == 0).mean() > 0.9
    given = MetaTensor(torch.as_tensor(voxels)[None], affine=torch.as_tensor(image.affine))
    assert torch.equal(strip({"image": given})["image"], given)

    steps = {type(t) for t in inference_preprocessing(skull_strip="true").transforms}
    assert SkullStripd in steps
    assert SkullStripd not in {type(t) for t in inference_preprocessing(skull_strip="false").transforms}
    assert Identityd in {type(t) for t in inference_preprocessing(skull_strip="false").transforms}
