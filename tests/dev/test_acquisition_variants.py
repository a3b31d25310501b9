"""Acquisition variants keep world space: a linear function of world position must read the same on the new grid."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import phantom_head_files
from monai.data import MetaTensor

from bundle.dev.acquisition_variants import acquisition_variants, variant
from bundle.training.head_shell import load_head_shell

# a small anisotropic scan stored in LAS order with a slight rotation, origin off centre
ANGLE = np.radians(5)
AFFINE = np.array([
    [-1.2, 0.0, 0.0, 30.0],
    [0.0, 1.1 * np.cos(ANGLE), -1.3 * np.sin(ANGLE), -40.0],
    [0.0, 1.1 * np.sin(ANGLE), 1.3 * np.cos(ANGLE), -20.0],
    [0.0, 0.0, 0.0, 1.0],
])
SHAPE = (20, 24, 30)
COEFF = np.array([0.5, -1.0, 2.0])


def world(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World coordinates (..., 3) of every voxel centre."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return index @ affine[:3, :3].T + affine[:3, 3]


def ramp_image(affine: np.ndarray = AFFINE, shape: tuple[int, ...] = SHAPE) -> MetaTensor:
    """A scan whose intensity is a linear function of world position."""
    values = world(affine, shape) @ COEFF + 100.0
    return MetaTensor(torch.as_tensor(values, dtype=torch.float32)[None], affine=torch.as_tensor(affine))


def test_thick_slices_are_slab_means_on_a_world_consistent_grid():
    voxels, affine = variant("thick_axial_5mm", ramp_image())
    assert voxels.shape == (20, 24, 8)  # 30 slices of 1.3 mm -> round(39 / 5) = 8 slabs of 4.875 mm
    assert np.linalg.norm(affine[:3, 2]) == pytest.approx(30 * 1.3 / 8)
    np.testing.assert_allclose(affine[:3, :2], AFFINE[:3, :2])  # in-plane untouched
    # every voxel counts once in all: the mean over slabs is the mean over voxels
    assert voxels.mean() == pytest.approx(float(ramp_image().mean()), abs=1e-3)
    # the slab mean of a linear function is its value at the slab centre, up to the voxels a slab edge cuts
    # (each counted at its centre value): within 5 % of the step between two original slices
    step = abs(COEFF @ AFFINE[:3, 2])
    np.testing.assert_allclose(voxels, world(affine, voxels.shape) @ COEFF + 100.0, rtol=0, atol=0.05 * step)
    # with a whole number of slices per slab (1 mm slices, 5 per slab) it is exact
    one_mm = AFFINE @ np.diag([1, 1, 1 / 1.3, 1])
    voxels, affine = variant("thick_axial_5mm", ramp_image(one_mm, (20, 24, 25)))
    assert voxels.shape == (20, 24, 5)
    np.testing.assert_allclose(voxels, world(affine, voxels.shape) @ COEFF + 100.0, rtol=0, atol=1e-3)


def test_oblique_lps_grid_is_tilted_holds_the_scan_and_reads_the_same_values():
    voxels, affine = variant("oblique_lps", ramp_image())
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    assert np.degrees(np.arccos(abs(directions[2, 2]))) == pytest.approx(15.0, abs=1e-6)
    np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), [1.2, 1.1, 1.3])
    # the new grid holds every voxel of the old one (tested on the corners' centres) ...
    corners = world(AFFINE, SHAPE)[[0, -1]][:, [0, -1]][:, :, [0, -1]].reshape(-1, 3)
    index = (corners - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    assert (index > -0.5).all() and (index < np.array(voxels.shape) - 0.5).all()
    # ... and, well inside the old field of view, trilinear interpolation of a linear function is exact
    points = world(affine, voxels.shape)
    old = (points - AFFINE[:3, 3]) @ np.linalg.inv(AFFINE[:3, :3]).T
    inside = ((old > 1) & (old < np.array(SHAPE) - 2)).all(axis=-1)
    assert inside.sum() > 0.3 * np.prod(SHAPE)
    np.testing.assert_allclose(voxels[inside], points[inside] @ COEFF + 100.0, rtol=0, atol=2e-2)
    assert (voxels[~((old > -1) & (old < np.array(SHAPE))).all(axis=-1)] == 0).all()  # outside: zero padding


def test_half_voxel_shift_moves_the_grid_only():
    voxels, affine = variant("shifted_half_voxel", ramp_image())
    assert voxels.shape == SHAPE
    np.testing.assert_allclose(affine[:3, :3], AFFINE[:3, :3])
    np.testing.assert_allclose(affine[:3, 3], AFFINE[:3, 3] + AFFINE[:3, :3] @ [0.5, 0.5, 0.5])
    inner = (slice(0, -1),) * 3  # the last voxel of each row lies half outside the old grid
    np.testing.assert_allclose(voxels[inner], (world(affine, SHAPE) @ COEFF + 100.0)[inner], rtol=0, atol=2e-2)


def test_int16_variant_rescales_only():
    voxels, affine = variant("int16_scaled", ramp_image())
    assert voxels.dtype == np.int16
    np.testing.assert_array_equal(affine, AFFINE)
    np.testing.assert_allclose(voxels, np.round(7.3 * ramp_image()[0].numpy()), atol=1)


def test_vertex_bias_field_brightens_only_the_upper_half_of_the_tissue():
    flat = MetaTensor(torch.full((1, *SHAPE), 100.0), affine=torch.as_tensor(AFFINE))
    voxels, affine = variant("vertex_bias_field", flat)
    assert np.array_equal(affine, AFFINE)
    z = world(AFFINE, SHAPE)[..., 2]
    mid, top = (z.min() + z.max()) / 2, z.max()
    assert np.allclose(voxels[z <= mid], 100.0)  # lower half untouched
    assert voxels[z == top].max() == pytest.approx(130.0, rel=1e-4)  # +30 % at the top
    upper = z > mid
    expected = 100 * 1.3 ** (((z[upper] - mid) / (top - mid)) ** 2)
    assert np.allclose(voxels[upper], expected, rtol=1e-5)  # rises with height, quadratically


def test_command_writes_every_variant_with_the_original_label(tmp_path):
    image = ramp_image()
    nib.save(nib.Nifti1Image(image[0].numpy(), AFFINE), tmp_path / "case_flair.nii.gz")
    label = np.zeros(SHAPE, np.uint8)
    label[8:14, 9:15, 10:22] = 2  # any integer label, lesion = label > 0
    nib.save(nib.Nifti1Image(label, AFFINE), tmp_path / "case_label.nii.gz")
    (tmp_path / "list.json").write_text(json.dumps({"validation": [
        {"image": "case_flair.nii.gz", "label": "case_label.nii.gz"}]}))
    cases = acquisition_variants(str(tmp_path / "list.json"), str(tmp_path / "out"))
    assert [c["variant"] for c in cases] == ["thick_axial_5mm", "oblique_lps", "int16_scaled", "vertex_bias_field"]
    assert json.loads((tmp_path / "out" / "datalist.json").read_text())["testing"] == cases
    lesion_world = world(AFFINE, SHAPE)[label > 0]
    for case in cases:
        assert case["image"].endswith(f"case_flair_{case['variant']}.nii.gz")
        image, moved = nib.load(case["image"]), nib.load(case["label"])
        assert moved.shape == image.shape and np.allclose(moved.affine, image.affine)  # the label on the new grid
        values = np.asarray(moved.dataobj)
        assert set(np.unique(values)) == {0, 1}
        # the lesion stays where it was in world space: its centre within one voxel, its volume within 25 %
        centre = world(moved.affine, moved.shape)[values > 0].mean(axis=0)
        assert np.linalg.norm(centre - lesion_world.mean(axis=0)) < 1.5
        volume = (values > 0).sum() * abs(np.linalg.det(moved.affine[:3, :3]))
        assert volume == pytest.approx((label > 0).sum() * abs(np.linalg.det(AFFINE[:3, :3])), rel=0.25)
    with pytest.raises(ValueError, match="unknown acquisition variant 'sideways'"):
        acquisition_variants(str(tmp_path / "list.json"), str(tmp_path / "out"), variants=["sideways"])
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        acquisition_variants(str(tmp_path / "nowhere.json"), str(tmp_path / "out"))


def skull_stripped_ramp() -> tuple[MetaTensor, np.ndarray, np.ndarray]:
    """(scan, brain, centre): the ramp scan kept only inside a brain ball of radius 8 mm, air (0) around it."""
    points = world(AFFINE, SHAPE)
    centre = points.reshape(-1, 3).mean(axis=0)
    brain = np.linalg.norm(points - centre, axis=-1) < 8
    scan = ramp_image()
    scan[0][torch.as_tensor(~brain)] = 0
    return scan, brain, centre


def test_skull_on_keeps_the_brain_and_world_space_and_puts_a_scalp_around_it(tmp_path):
    scan, brain, centre = skull_stripped_ramp()
    shell = load_head_shell(*phantom_head_files(tmp_path))
    voxels, affine = variant("skull_on", scan, shell)
    pad = np.ceil(20.0 / np.array([1.2, 1.1, 1.3])).astype(int)  # 20 mm on every side
    assert voxels.shape == tuple(np.array(SHAPE) + 2 * pad)
    np.testing.assert_allclose(affine[:3, :3], AFFINE[:3, :3])
    np.testing.assert_allclose(world(affine, voxels.shape)[tuple(pad)], AFFINE[:3, 3])  # same world space
    inner = voxels[pad[0]:pad[0] + SHAPE[0], pad[1]:pad[1] + SHAPE[1], pad[2]:pad[2] + SHAPE[2]]
    np.testing.assert_array_equal(inner[brain], scan[0].numpy()[brain])  # the brain untouched
    # the phantom's scalp (12-22 mm, brain box 23 -> 16 mm: x 0.7) lands at about 8.4-15.3 mm from the centre,
    # at 1.5 x the scan's white-matter level; far outside is air
    distance = np.linalg.norm(world(affine, voxels.shape) - centre, axis=-1)
    values = scan[0].numpy()[brain]
    white_matter = np.median(values[values >= values.mean()])
    assert np.median(voxels[(distance > 10.5) & (distance < 14)]) == pytest.approx(1.5 * white_matter, rel=0.05)
    assert voxels[distance > 18].max() == 0
    thick, thick_affine = variant("skull_on_thick_5mm", scan, shell)
    assert thick.shape[:2] == voxels.shape[:2] and thick.shape[2] == round(voxels.shape[2] * 1.3 / 5)
    assert thick.mean() == pytest.approx(voxels.mean(), rel=1e-3)  # slabs of the skull-on scan
    with pytest.raises(ValueError, match="'skull_on' needs a head shell"):
        variant("skull_on", scan)


def test_command_writes_skull_variants_with_the_label_in_place(tmp_path):
    scan, brain, _ = skull_stripped_ramp()
    nib.save(nib.Nifti1Image(scan[0].numpy(), AFFINE), tmp_path / "case_flair.nii.gz")
    label = np.zeros(SHAPE, np.uint8)
    label[8:12, 10:14, 13:17] = 1
    nib.save(nib.Nifti1Image(label, AFFINE), tmp_path / "case_label.nii.gz")
    (tmp_path / "list.json").write_text(json.dumps({"validation": [
        {"image": "case_flair.nii.gz", "label": "case_label.nii.gz"}]}))
    head, brain_mask = phantom_head_files(tmp_path)
    cases = acquisition_variants(str(tmp_path / "list.json"), str(tmp_path / "out"),
                                 variants=["skull_on"], head=head, brain=brain_mask)
    moved = nib.load(cases[0]["label"])
    assert moved.shape == nib.load(cases[0]["image"]).shape
    values = np.asarray(moved.dataobj)
    assert values.sum() == label.sum()  # the same voxels, padded
    np.testing.assert_allclose(world(moved.affine, moved.shape)[values > 0].mean(axis=0),
                               world(AFFINE, SHAPE)[label > 0].mean(axis=0), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        acquisition_variants(str(tmp_path / "list.json"), str(tmp_path / "out2"), variants=["skull_on"],
                             head=str(tmp_path / "nowhere.nii.gz"), brain=brain_mask)
    assert not (tmp_path / "out2").exists()  # refused before anything was written
