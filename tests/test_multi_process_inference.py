"""configs/multi_gpu_inference.yaml: the inference config as 2 CPU processes under torchrun (gloo) gives each case
once, the same outputs as one process, and cohort tables that list every case."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np

from conftest import BUNDLE_ROOT, SAMPLE, run_bundle

CONFIGS = str(BUNDLE_ROOT / "configs" / "inference.yaml"), str(BUNDLE_ROOT / "configs" / "multi_gpu_inference.yaml")


def test_two_processes_split_the_cases_and_match_one_process(tmp_path):
    image = nib.load(SAMPLE)
    data = np.asarray(image.dataobj).astype(np.float32)
    cases = tmp_path / "in"
    cases.mkdir()
    for i, (x, z) in enumerate(((40, 56), (48, 60), (36, 52))):  # three small real crops
        nib.save(nib.Nifti1Image(data[x : x + 48, 40:88, z : z + 8], image.affine), cases / f"case{i}.nii.gz")
    settings = ["--dataset_dir", str(cases), "--num_samples", "2", "--num_steps", "2", "--bundle_root", str(BUNDLE_ROOT)]
    run_bundle("monai.bundle", "run", "--config_file", CONFIGS[0], "--output_dir", str(tmp_path / "one"), *settings)
    proc = run_bundle("torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", "-m", "monai.bundle",
                      "run", "--config_file", f"['{CONFIGS[0]}','{CONFIGS[1]}']", "--output_dir", str(tmp_path / "two"),
                      *settings)
    printed = proc.stdout + proc.stderr
    for i in range(3):  # each case segmented by exactly one process
        assert printed.count(f"case{i}: ") == 1, printed[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    for i in range(3):
        for suffix in ("seg", "uncertainty", "brain"):
            a = nib.load(one / f"case{i}_{suffix}.nii.gz").get_fdata()
            b = nib.load(two / f"case{i}_{suffix}.nii.gz").get_fdata()
            np.testing.assert_allclose(b, a, atol=1e-4, err_msg=f"case{i} {suffix}")
    rows = list(csv.DictReader((two / "cohort.csv").open()))
    assert sorted(r["case"] for r in rows) == ["case0", "case1", "case2"]
    assert rows == list(csv.DictReader((one / "cohort.csv").open()))
    assert (two / "failures.json").read_text().strip() == "[]"
