"""``python -m bundle.dev benchmark-sweep``: sampling time against N and K, JSON and SVG."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import yaml
from conftest import BUNDLE_ROOT, SAMPLE, run_bundle


def test_sweep_times_every_n_and_k_and_draws_them(tmp_path):
    image = nib.load(SAMPLE)
    crop = np.asarray(image.dataobj)[40:88, 40:88, 56:66].astype(np.float32)
    nib.save(nib.Nifti1Image(crop, image.affine), tmp_path / "tiny.nii.gz")
    out, plot = tmp_path / "sweep.json", tmp_path / "sweep.svg"
    run_bundle(
        "bundle.dev", "benchmark-sweep", "--input", str(tmp_path / "tiny.nii.gz"), "--output", str(out), "--plot",
        str(plot), "--slices", "2", "--samples", "[1,2]", "--steps", "[1,3]", "--repeats", "1",
    )
    report = json.loads(out.read_text())
    assert [n for n, _ in report["time_vs_samples"]["points"]] == [1, 2]
    assert [k for k, _ in report["time_vs_steps"]["points"]] == [1, 3]
    assert all(t > 0 for _, t in report["time_vs_samples"]["points"] + report["time_vs_steps"]["points"])
    config = yaml.safe_load((BUNDLE_ROOT / "configs" / "inference.yaml").read_text())
    for key in ("tile_size", "mirror", "stop_tolerance"):  # the config's sampler is what was timed
        assert report[key] == config[key], key
    svg = plot.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
