"""``python -m bundle benchmark``: whole-path processes split into stages, the ratios, the rounds; and the stage
timer itself. (Timings are measured by the benchmark and reported in docs/benchmarks.md, never asserted here.)"""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest
from conftest import BUNDLE_ROOT, SAMPLE, run_bundle

from bundle.evaluation.stages import ORDER, StageTimer, stage_of


def test_benchmark_times_whole_processes_by_stage_and_writes_the_ratios(tmp_path):
    image = nib.load(SAMPLE)
    crop = np.asarray(image.dataobj)[40:88, 40:88, 56:64].astype(np.float32)
    nib.save(nib.Nifti1Image(crop, image.affine), tmp_path / "tiny.nii.gz")
    out = tmp_path / "bench.json"
    run_bundle(
        "bundle", "benchmark", "--inputs", str(tmp_path / "tiny.nii.gz"), "--output", str(out),
        "--repeats", "1", "--ddpm_slices", "1", "--ddpm_steps", "5",
        "--modes", "['default','baseline','ddpm1000','unet','default_unstripped']",
    )
    report = json.loads(out.read_text())
    for key in ("device", "device_name", "torch_version", "threads", "num_samples", "num_steps", "inputs"):
        assert key in report, key
    assert report["inputs"]["tiny"]["shape"] == [48, 48, 8]
    results = report["results"]["tiny"]
    for mode in ("default", "baseline", "ddpm1000", "unet", "default_unstripped"):
        result = results[mode]
        assert len(result["times_s"]) == 1 and result["median_s"] > 0 and result["peak_rss_mb"] > 50
    for mode in ("default", "baseline", "default_unstripped"):  # whole processes, split into stages
        stages = results[mode]["stages_median_s"]
        assert list(stages) == [name for name in ORDER if name in stages]  # in the order of the path
        assert {"startup", "loading", "reorientation and resampling", "brain extraction", "bias field", "sampling",
                "inversion", "writing", "review PNG", "report"} <= set(stages)
        assert stages["startup"] > 0 and sum(stages.values()) == pytest.approx(results[mode]["median_s"], abs=0.01)
        assert {"tiny_seg.nii.gz", "tiny_uncertainty.nii.gz", "tiny_report.json"} <= set(results[mode]["written"])
    assert results["default"]["called"]["sampling"] == ["DiffusionEnsembleInferer"]
    assert results["baseline"]["called"]["sampling"] == ["SliceStackInferer"]  # the baseline's own path
    assert results["default_unstripped"]["settings"] == {"skull_strip": False}
    assert "scaled by" in results["ddpm1000"]["note"]
    assert results["unet"]["parameters"] > 500_000
    ratios = report["ratios"]["tiny"]
    for key in ("ratio_ddpm1000_over_default", "ratio_default_over_unet", "ratio_default_over_baseline",
                "ratio_default_over_unstripped"):
        assert ratios[key] > 0, key
    assert ratios["ratio_default_over_baseline"] == results["default"]["median_s"] / results["baseline"]["median_s"]
    table = (tmp_path / "bench.md").read_text()  # the table and the stage chart beside the JSON
    assert f"| tiny | default | {results['default']['median_s']:.1f} |" in table and "ratio_default_over_unet" in table
    reference = report["machine_reference_s"]  # the machine's speed at both ends of the run
    assert 0 < reference["before"] < 60 and 0 < reference["after"] < 60
    assert f"{reference['before']:.3f} at the start" in table
    svg = (tmp_path / "bench.svg").read_text()
    assert svg.startswith("<svg") and "sampling" in svg and svg.count("<title>") >= 10


def test_rounds_interleave_the_modes_and_pool_their_times(tmp_path, monkeypatch):
    """Each round measures every mode in turn (one warm-up process, then ``repeats``), so a drifting machine falls on
    every mode alike; part-path modes run on the first input only."""
    import bundle.evaluation.benchmark as bench

    calls = []

    def fake_worker(mode, path, *args):
        calls.append(mode)
        wall = {"default": 10.0, "default_uncorrected": 8.0}[mode] + len(calls)  # the machine slows down
        return {"wall_s": wall, "stages": {"sampling": 5.0}, "peak_rss_mb": 100.0 + len(calls)}

    monkeypatch.setattr(bench, "_worker_result", fake_worker)
    report = bench.benchmark(str(tmp_path / "b.json"), inputs=str(SAMPLE), device="cpu", repeats=1, rounds=3,
                             modes=("default", "default_uncorrected"))
    assert calls == ["default"] * 2 + ["default_uncorrected"] * 2 + ["default"] * 2 + ["default_uncorrected"] * 2 \
        + ["default"] * 2 + ["default_uncorrected"] * 2
    results = report["results"]["BRATS_474_flair"]
    default, uncorrected = results["default"], results["default_uncorrected"]
    assert default["times_s"] == [12.0, 16.0, 20.0] and uncorrected["times_s"] == [12.0, 16.0, 20.0]
    assert default["median_s"] == 16.0 and default["min_s"] == 12.0 and default["peak_rss_mb"] == 110.0
    assert default["stages_median_s"] == {"startup": 11.0, "sampling": 5.0}
    assert report["rounds"] == 3 and report["ratios"]["BRATS_474_flair"]["ratio_default_over_uncorrected"] == 1.0
    with pytest.raises(ValueError, match="unknown modes"):
        bench.benchmark(str(tmp_path / "b.json"), inputs=str(SAMPLE), modes=("fast",))


def test_stage_timer_counts_nested_calls_once_in_the_outer_stage():
    """A call inside a timed call (Invertd running the preprocessing's inverses) counts as the outer one; an
    unknown transform is "other"; ``report`` puts the untimed rest into startup."""

    class Invertd:
        def __call__(self, data):
            time.sleep(0.02)
            return timed(Spacingd(), data)

    class Spacingd:
        def __call__(self, data):
            time.sleep(0.03)
            return data

        def inverse(self, data):
            return data

    class Mystery:
        def __call__(self, data):
            return data

    timer = StageTimer()
    timed = timer.wrap(lambda transform, data: transform(data))
    timed(Invertd(), 1)
    timed(Spacingd(), 1)
    timed(Mystery(), 1)
    assert set(timer.seconds) == {"inversion", "reorientation and resampling", "other"}
    assert timer.seconds["inversion"] >= 0.05  # its own sleep and the nested Spacingd's
    assert 0.03 <= timer.seconds["reorientation and resampling"] < 0.05  # only the outer call
    assert stage_of(Spacingd().inverse) == "reorientation and resampling"
    assert timer.called["inversion"] == {"Invertd"}
    report = timer.report(total=1.0)
    assert report["startup"] == pytest.approx(1.0 - sum(timer.seconds.values()), abs=1e-3)
    assert list(report) == [name for name in ORDER if name in report]


def test_every_benchmark_mode_overrides_settings_the_inference_config_has():
    import yaml

    from bundle.evaluation.benchmark import PART_MODES, RATIOS, SETTINGS

    with open(BUNDLE_ROOT / "configs" / "inference.yaml") as f:
        config = yaml.safe_load(f)
    for mode, overrides in SETTINGS.items():
        assert mode == "default" or mode.startswith("default_"), mode
        keys = {key.split("#")[0] for key in overrides}  # "network_def#coarse_head": a key inside network_def
        assert keys <= set(config), (mode, keys - set(config))
    for numerator, denominator in RATIOS.values():
        assert {numerator, denominator} <= {*SETTINGS, "baseline", *PART_MODES}, (numerator, denominator)
