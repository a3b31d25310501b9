"""Skull-on augmentation: a phantom head whose answers are known, the real Colin27 head, and the fine-tuning recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import (
    BUNDLE_ROOT,
    GLIOMA,
    SAMPLE,
    phantom_head_files,
    require_colin27,
    require_shared,
    run_bundle,
    sphere_phantom,
)
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd

from bundle.preprocessing.intensity import histogram_peak, normalize_to_tissue
from bundle.training.head_shell import RandHeadShelld


@pytest.fixture
def head(tmp_path):
    """A 48^3 1 mm 'head': brain sphere (r 12, white matter 100) inside a scalp shell (r 12-22, fat 150)."""
    return phantom_head_files(tmp_path)


def skull_stripped():
    """Target: a brain sphere (r 6 voxels of 2 mm, tissue 1.0) with a labelled lesion, in a 20^3 volume."""
    return sphere_phantom(6, np.s_[9:12, 9:12, 9:12])


def test_shell_surrounds_the_brain_and_leaves_brain_and_label_alone(head):
    head_path, brain_path = head
    data = skull_stripped()
    out = RandHeadShelld(["image", "label"], head_path, brain_path, prob=1.0, gain_range=(1.0, 1.0), margin=5)(data)
    image, label = out["image"][0].numpy(), out["label"][0].numpy()
    assert image.shape == label.shape == (30, 30, 30)
    np.testing.assert_array_equal(image[5:25, 5:25, 5:25][data["image"][0].numpy() > 0], 1.0)  # brain untouched
    np.testing.assert_array_equal(label[5:25, 5:25, 5:25], data["label"][0].numpy())
    assert label.sum() == data["label"].sum()  # no lesion outside the brain
    radius_mm = 2 * np.sqrt(((np.indices(image.shape) - 15) ** 2).sum(0))
    scalp = (radius_mm > 15) & (radius_mm < 19)  # the phantom's shell (brain boxes 20 vs 22 mm: x 0.91)
    assert np.median(image[scalp]) == pytest.approx(1.5, abs=0.1)  # fat 150 / white matter 100, x target level 1
    assert image[radius_mm > 24].max() == 0  # air stays air
    expected = data["image"].affine.clone()
    expected[:3, 3] -= 5 * 2.0  # padded by 5 voxels of 2 mm on every side
    torch.testing.assert_close(out["image"].affine.double(), expected.double())


def test_prob_zero_needs_no_head_and_missing_head_names_the_file(tmp_path):
    data = skull_stripped()
    out = RandHeadShelld(["image", "label"], str(tmp_path / "none.nii.gz"), str(tmp_path / "none.nii.gz"), prob=0.0)(data)
    assert out["image"] is data["image"]
    with pytest.raises(FileNotFoundError, match="none.nii.gz.*mricron-data"):
        RandHeadShelld(["image", "label"], str(tmp_path / "none.nii.gz"), str(tmp_path / "none.nii.gz"), prob=1.0)


def test_real_head_moves_the_median_scale_but_not_the_histogram_peak():
    """Skull and scalp widen the 'tissue' voxels: their median moves (on the two native open-MS FLAIRs it lies 8-13 %
    below the parenchyma), their histogram peak stays on the brain, which is why fine-tuning uses method "mode"."""
    require_colin27()
    require_shared(SAMPLE)
    data = Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"), Orientationd("image", "RAS")])(
        {"image": str(SAMPLE)})
    data["image"] = normalize_to_tissue(data["image"])
    data["label"] = torch.zeros_like(data["image"])

    def scales(image):
        tissue = image[0][image[0] > image[0].mean()]  # the voxels normalize_to_tissue scales by
        return float(tissue.median()), float(histogram_peak(tissue))

    median_before, peak_before = scales(data["image"])
    median_after, peak_after = scales(RandHeadShelld(["image", "label"], prob=1.0, gain_range=(0.6, 0.6))(data)["image"])
    assert median_after / median_before < 0.95
    assert abs(peak_after / peak_before - 1) < 0.03


def test_fine_tuning_recipe_starts_from_the_shipped_weights(head, tmp_path):
    require_shared(GLIOMA)
    case = lambda i: {"image": str(GLIOMA / f"BRATS_{i}_flair.nii.gz"), "label": str(GLIOMA / f"BRATS_{i}_label.nii.gz")}
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": [case(460), case(461)], "validation": [case(472)]}))
    head_path, brain_path = head
    out = tmp_path / "run"
    run_bundle(
        "monai.bundle", "run", "--config_file", "['configs/train.yaml','configs/finetune_head_shell.yaml']",
        "--datalist", str(datalist), "--output_dir", str(out), "--head_scan", head_path, "--head_brain", brain_path,
        "--head_shell_prob", "1.0", "--patch_size", "32", "--patches_per_volume", "2", "--max_epochs", "1",
        "--epoch_length", "2", "--val_interval", "1", "--val_num_samples", "1", "--val_num_steps", "1",
        "--num_workers", "0",
    )
    shipped = torch.load(BUNDLE_ROOT / "models" / "model.pt", weights_only=True)
    tuned = torch.load(out / "model.pt", weights_only=True)  # best validation weights, written into output_dir
    drift = max(float((shipped[k] - tuned[k]).abs().max()) for k in shipped)
    assert 0 < drift < 0.01  # two small steps away from the shipped weights, not a fresh initialisation
