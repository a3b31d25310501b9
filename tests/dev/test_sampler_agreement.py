"""``python -m bundle.dev sampler-agreement``: slice choice, and that its reference sampler is exactly DDPM-style
ancestral sampling run with the config's seeds (DDIM with eta = 1 over the same steps gives the identical mask)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch
from conftest import BUNDLE_ROOT, SAMPLE

from bundle.dev.sampler_agreement import lesion_slices, sampler_agreement


def test_lesion_slices_are_the_tissue_slices_with_most_lesion():
    volume = torch.zeros(1, 8, 8, 10)
    volume[:, :, :, 1:9] = 1.0  # slices 0 and 9 have no tissue
    label = torch.zeros(1, 8, 8, 10)
    for z, area in {0: 60, 2: 4, 3: 9, 5: 16, 7: 1}.items():  # slice 0: lesion but no tissue
        label[0, :, :, z].view(-1)[:area] = 1
    assert lesion_slices(volume, label, 2).tolist() == [3, 5]
    assert lesion_slices(volume, label, 10).tolist() == [2, 3, 5, 7]  # never a slice without lesion


def test_ddim_with_eta_one_over_the_reference_steps_is_the_reference(tmp_path):
    image = nib.load(SAMPLE)
    crop = np.asarray(image.dataobj)[40:88, 40:88, 56:62].astype(np.float32)
    label = np.zeros(crop.shape, np.uint8)
    label[10:30, 12:28, 1:5] = 1
    nib.save(nib.Nifti1Image(crop, image.affine), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(label, image.affine), tmp_path / "lab.nii.gz")
    (tmp_path / "list.json").write_text(json.dumps({"validation": [{"image": "img.nii.gz", "label": "lab.nii.gz"}]}))
    (tmp_path / "eta1.yaml").write_text("eta: 1.0\nnum_samples: 2\n")
    out = tmp_path / "agreement.json"
    result = sampler_agreement(
        str(tmp_path / "list.json"), str(out), slices=2, steps=[1, 3], reference_steps=3,
        bundle_root=str(BUNDLE_ROOT), config_file=["configs/inference.yaml", str(tmp_path / "eta1.yaml")],
    )
    assert json.loads(out.read_text()) == result
    assert result["ddim_steps"] == [1, 3] and result["reference_steps"] == 3 and result["num_samples"] == 2
    assert result["mirror"] is True  # the inference config's default, recorded
    (case,) = result["cases"]
    assert len(case["slices"]) == 2
    assert case["dice_ddpm"] > 0  # a real mask (two empty masks would also agree)
    assert case["dice_ddim3_vs_ddpm"] == 1.0  # same sampler, same noise: the same mask
    for key in ("dice_ddpm", "dice_ddim1", "dice_ddim3", "dice_ddim1_vs_ddpm"):
        assert 0.0 <= case[key] <= 1.0
