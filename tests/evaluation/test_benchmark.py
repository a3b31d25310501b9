"""Smoke test of ``python -m bundle benchmark`` on a tiny real crop: it runs and writes every field.

(Timings are measured by the benchmark itself and reported in docs/benchmarks.md, never asserted here.)
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from conftest import SAMPLE, run_bundle


def test_benchmark_writes_times_ratios_and_environment(tmp_path):
    image = nib.load(SAMPLE)
    crop = np.asarray(image.dataobj)[40:88, 40:88, 56:64].astype(np.float32)
    nib.save(nib.Nifti1Image(crop, image.affine), tmp_path / "tiny.nii.gz")
    out = tmp_path / "bench.json"
    run_bundle(
        "bundle", "benchmark", "--input", str(tmp_path / "tiny.nii.gz"), "--output", str(out),
        "--repeats", "1", "--ddpm_slices", "1", "--ddpm_steps", "5",
        "--modes", "['default','ddpm1000','unet','baseline','default_uncorrected',"
        "'default_glibc_defaults','default_unstripped','default_whole_slices',"
        "'default_all_steps','default_slice_batch_16']",
    )
    report = json.loads(out.read_text())
    for key in ("device", "device_name", "torch_version", "threads", "num_samples", "num_steps",
                "ratio_ddpm1000_over_default", "ratio_default_over_unet", "ratio_default_over_baseline",
                "ratio_default_over_uncorrected", "ratio_glibc_defaults_over_default", "ratio_default_over_unstripped",
                "ratio_default_over_whole_slices", "ratio_all_steps_over_default",
                "ratio_slice_batch_16_over_default"):
        assert key in report, key
    for mode in ("default", "ddpm1000", "unet", "baseline", "default_uncorrected", "default_glibc_defaults",
                 "default_unstripped", "default_whole_slices", "default_all_steps",
                 "default_slice_batch_16"):
        result = report["results"][mode]
        assert len(result["times_s"]) == 1 and result["median_s"] > 0 and result["peak_rss_mb"] > 50
    assert "scaled by" in report["results"]["ddpm1000"]["note"]
    assert report["results"]["unet"]["parameters"] > 500_000
    assert report["results"]["baseline"]["network"] == "UNet"  # the baseline's whole path, not the denoiser's
    assert report["results"]["default"]["network"] != "UNet"
    assert report["results"]["default_uncorrected"]["settings"] == {
        "bias_field_correction": False, "input_smoothing_sigma": [0.0, 0.0, 0.0]}
    assert report["results"]["default_glibc_defaults"]["settings"] == {"keep_freed_memory": False}
    assert report["results"]["default_unstripped"]["settings"] == {"skull_strip": False}
    assert report["results"]["default_whole_slices"]["settings"] == {"tile_size": 0}
    assert report["results"]["default_all_steps"]["settings"] == {"stop_tolerance": 0.0}
    assert report["results"]["default_slice_batch_16"]["settings"] == {"slice_batch_size": 16}


def test_rounds_interleave_the_modes_and_pool_their_times(tmp_path, monkeypatch):
    import bundle.evaluation.benchmark as bench

    calls = []

    def fake_worker(mode, *args):
        calls.append(mode)
        time_s = {"default": 10.0, "default_uncorrected": 8.0}[mode] + len(calls)  # the machine slows down
        return {"mode": mode, "times_s": [time_s], "peak_rss_mb": 100.0 + len(calls)}

    monkeypatch.setattr(bench, "_worker_result", fake_worker)
    report = bench.benchmark(str(tmp_path / "b.json"), input=SAMPLE, device="cpu", repeats=1, rounds=3,
                             modes=("default", "default_uncorrected"))
    assert calls == ["default", "default_uncorrected"] * 3
    default, uncorrected = report["results"]["default"], report["results"]["default_uncorrected"]
    assert default["times_s"] == [11.0, 13.0, 15.0] and uncorrected["times_s"] == [10.0, 12.0, 14.0]
    assert default["median_s"] == 13.0 and default["min_s"] == 11.0 and default["peak_rss_mb"] == 105.0
    assert report["rounds"] == 3 and report["ratio_default_over_uncorrected"] == 13.0 / 12.0
