"""Speed and memory of the inference path as a user runs it: ``python -m bundle benchmark --output FILE.json``.

For each input (``--inputs``; default: four real kinds, ``DEFAULT_INPUTS``) and each whole-path mode, one warm-up
process and then ``repeats`` processes each run the inference config once on that input, exactly as
``python -m monai.bundle run --config_file configs/inference.yaml`` does. The wall time of a process, from its start
to its exit after the outputs are written, is the time a user waits; inside it ``bundle.evaluation.stages`` splits
it into loading, reorientation and resampling, brain extraction, bias field, sampling, inversion, writing, the review
PNG and the rest (startup: interpreter, imports, config, weights). Reported: the median, minimum and maximum of the
whole times, the median of each stage, and the highest peak RSS (``getrusage``; CUDA peak on a GPU).

Whole-path modes:
a. ``default``: the shipped config;
g. ``baseline``: the deterministic U-Net baseline's whole path (``configs/baseline_inference.yaml`` merged over the
   inference config, ``models/baseline.pt``): same reading, preprocessing, inversion and writing, one U-Net instead
   of the sampler;
d.-l. ``default_<variant>`` (optional, ``--modes``): the default with the settings of ``SETTINGS[mode]`` (speed
   settings off, all K steps, no mirroring, no input corrections, glibc's malloc defaults, no brain extraction,
   whole slices, 16 or 2 slices per batch, tiles over each slice's tissue box, sampling only where a coarse head
   finds candidates), so each one's cost is a ratio measured in the same run.

Part-path modes, on the first input only (timed inside the process, after the preprocessing):
b. ``ddpm1000``: the same weights sampled by DDPM ancestral sampling over all T = 1000 steps (DDIM with eta = 1 over
   every timestep, ``bundle.model.reference``; same N and speed settings), timed on ``ddpm_slices`` tissue slices
   and scaled by the number of tissue slices (the output says so); no warm-up (it is the slowest by far);
c. ``unet``: one forward pass of a deterministic MONAI U-Net of similar parameter count (random weights) over every
   tissue slice stack of the preprocessed volume.

With ``rounds`` > 1 the modes are measured in turn, round after round (a b a b ...), and each mode's times are
pooled, so a slow drift of the machine's speed falls on every mode alike. Ratios (``RATIOS``) are of medians
measured in the same run: per input for the whole-path modes, on the first input for ``ddpm1000`` and ``unet``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from bundle.evaluation.crossval import MODELS as CROSSVAL_MODELS
from bundle.memory import keep_freed_memory

SHARED_DATA = os.path.join("..", "shared", "data")  # relative to the bundle root
# input kind -> path relative to the bundle root
DEFAULT_INPUTS = {
    "mni_1mm": os.path.join(SHARED_DATA, "open_ms_data", "cross_sectional_mni", "patient26_FLAIR.nii.gz"),
    "sample": os.path.join("docs", "sample", "BRATS_474_flair.nii.gz"),
    "native_skull_on_4mm": os.path.join(
        SHARED_DATA, "open_ms_data", "longitudinal_raw", "patient01_study1_FLAIR.nii.gz"
    ),
    "brats_240": os.path.join(SHARED_DATA, "brats2018_flair", "Brats18_CBICA_AAB_1_flair.nii.gz"),
}
DEFAULT_INPUT = DEFAULT_INPUTS["mni_1mm"]
MODES = ("default", "baseline", "ddpm1000", "unet")
PART_MODES = ("ddpm1000", "unet")  # timed inside the process, on the first input only
# the default and the default with config overrides (the optional default_* modes above): ratios in the same run
SETTINGS = {
    "default": {},
    "default_plain": {"channels_last": False, "precision": "fp32"},
    "default_all_steps": {"stop_tolerance": 0.0},
    "default_unmirrored": {"mirror": False},
    "default_uncorrected": {"bias_field_correction": False, "input_smoothing_sigma": [0.0, 0.0, 0.0]},
    "default_glibc_defaults": {"keep_freed_memory": False},
    "default_unstripped": {"skull_strip": False},
    "default_whole_slices": {"tile_size": 0},
    "default_slice_batch_16": {"slice_batch_size": 16},
    "default_slice_batch_2": {"slice_batch_size": 2},
    "default_tissue_boxes": {"tile_box": 4},
    "default_samples_4": dict(CROSSVAL_MODELS["samples_4"]["infer_overrides"]),  # docs/results.md rule 12
    "default_samples_4_tissue_boxes": dict(CROSSVAL_MODELS["samples_4_tissue_boxes"]["infer_overrides"]),  # rule 13
    "default_tissue_boxes_steps_4": dict(CROSSVAL_MODELS["tissue_boxes_steps_4"]["infer_overrides"]),  # rule 16
    # the coarse-to-fine candidate (docs/results.md rule 4): the shipped weights with a coarse head trained on them
    # (`python -m bundle crossval train --model hybrid --folds all`), sampled only in the head's region of interest
    "default_coarse_roi": {
        **CROSSVAL_MODELS["hybrid"]["infer_overrides"],
        "ckpt_path": f"$@bundle_root + '/{CROSSVAL_MODELS['hybrid']['output_dir']}/fold_all/net_model_iteration=500.pt'",
    },
}
BASELINE_CONFIGS = ("inference.yaml", "baseline_inference.yaml")
# report key -> (numerator mode, denominator mode) of the median times, written when both modes were measured
RATIOS = {
    "ratio_ddpm1000_over_default": ("ddpm1000", "default"),
    "ratio_default_over_unet": ("default", "unet"),
    "ratio_plain_over_default": ("default_plain", "default"),
    "ratio_all_steps_over_default": ("default_all_steps", "default"),
    "ratio_default_over_unmirrored": ("default", "default_unmirrored"),
    "ratio_default_over_uncorrected": ("default", "default_uncorrected"),
    "ratio_glibc_defaults_over_default": ("default_glibc_defaults", "default"),
    "ratio_default_over_baseline": ("default", "baseline"),
    "ratio_default_over_unstripped": ("default", "default_unstripped"),
    "ratio_default_over_whole_slices": ("default", "default_whole_slices"),
    "ratio_slice_batch_16_over_default": ("default_slice_batch_16", "default"),
    "ratio_slice_batch_2_over_default": ("default_slice_batch_2", "default"),
    "ratio_default_over_tissue_boxes": ("default", "default_tissue_boxes"),
    "ratio_default_over_coarse_roi": ("default", "default_coarse_roi"),
    "ratio_default_over_samples_4": ("default", "default_samples_4"),
    "ratio_default_over_samples_4_tissue_boxes": ("default", "default_samples_4_tissue_boxes"),
    "ratio_default_over_tissue_boxes_steps_4": ("default", "default_tissue_boxes_steps_4"),
}


def _parser(bundle_root: str, device: str, configs: tuple[str, ...] = ("inference.yaml",)):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([os.path.join(bundle_root, "configs", name) for name in configs])
    parser.update({"bundle_root": bundle_root, "device": f"$torch.device('{device}')"})
    return parser


def _preprocessed(parser, path: str, device: str) -> torch.Tensor:
    image = parser.get_parsed_content("preprocessing")({"image": path})["image"]
    return torch.as_tensor(image)[None].to(device)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _run_default(parser, path: str, device: str, settings: dict | None = None) -> dict:
    """The config in ``parser`` on ``path`` in this process, its outputs into a temporary folder (dev scripts)."""
    parser.update(settings or {})
    with tempfile.TemporaryDirectory(prefix="bench_") as out:
        parser.update({"datalist_files": [{"image": path}], "output_dir": out})
        parser.get_parsed_content("initialize")
        evaluator = parser.get_parsed_content("evaluator")
        evaluator.run()
    return {"settings": settings or {}, "network": type(evaluator.network).__name__}


def _run_whole(mode: str, path: str, device: str, bundle_root: str) -> dict:
    """One whole run of the inference config on ``path`` as ``monai.bundle run`` does it, with its stage times."""
    from monai.bundle import run

    from bundle.evaluation.stages import StageTimer

    configs = BASELINE_CONFIGS if mode == "baseline" else ("inference.yaml",)
    settings = SETTINGS.get(mode, {})
    with tempfile.TemporaryDirectory(prefix="bench_") as out, StageTimer().installed() as timer:
        run(config_file=[os.path.join(bundle_root, "configs", name) for name in configs], bundle_root=bundle_root,
            output_dir=out, sample_image=path, device=f"$torch.device('{device}')", **settings)
        _sync(device)
        written = sorted(os.listdir(out))
    called = {stage: sorted(names) for stage, names in timer.called.items()}
    return {"settings": settings, "stages": dict(timer.seconds), "called": called, "written": written}


def _run_ddpm(parser, path: str, device: str, slices: int, steps: int) -> dict:
    from bundle.model.reference import load_network, reference_sampler, sample_slices
    from bundle.preprocessing.slices import tissue_slices

    keep_freed_memory(parser["keep_freed_memory"])  # the allocator settings of the default
    network = load_network(parser)
    volume = _preprocessed(parser, path, device)[0]
    tissue = tissue_slices(volume)
    chunk = tissue[len(tissue) // 2 - slices // 2 :][:slices]
    _sync(device)
    start = time.perf_counter()
    sample_slices(reference_sampler(parser, steps), volume, chunk, network)  # DDPM = DDIM, eta 1, all steps
    _sync(device)
    return {"timed_s": time.perf_counter() - start, "timed_slices": len(chunk), "tissue_slices": len(tissue),
            "scale": len(tissue) / len(chunk), "steps": steps}


def _run_unet(parser, path: str, device: str) -> dict:
    from monai.networks.nets import UNet

    from bundle.model.inferer import SliceStackInferer

    channels = parser["image_channels"] * (2 * parser["context_slices"] + 1)
    keep_freed_memory(parser["keep_freed_memory"])  # the allocator settings of the default
    unet = UNet(2, channels, 1, (16, 32, 64, 128, 256), (2, 2, 2, 2), num_res_units=1, norm="instance").to(device)
    volume = _preprocessed(parser, path, device)
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        SliceStackInferer(parser["context_slices"], slice_batch_size=64)(volume, unet.eval())
    _sync(device)
    return {"timed_s": time.perf_counter() - start, "parameters": sum(p.numel() for p in unet.parameters())}


def worker(mode: str, input: str, device: str, bundle_root: str, ddpm_slices: int = 1, ddpm_steps: int = 1000) -> None:
    """One measurement of ``mode`` on ``input`` in this process; prints one JSON line (used by ``benchmark``)."""
    torch.manual_seed(0)
    if mode == "ddpm1000":
        info = _run_ddpm(_parser(bundle_root, device), input, device, ddpm_slices, ddpm_steps)
    elif mode == "unet":
        info = _run_unet(_parser(bundle_root, device), input, device)
    else:
        info = _run_whole(mode, input, device, bundle_root)
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if device.startswith("cuda"):
        info["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("BENCHMARK " + json.dumps(info))


def _worker_result(
    mode: str, input: str, device: str, bundle_root: str, ddpm_slices: int, ddpm_steps: int
) -> dict:
    """One process measuring ``mode`` on ``input``: its result, with ``wall_s`` from its start to its exit."""
    cmd = [sys.executable, "-m", "bundle", "benchmark-worker", mode, input, device, bundle_root,
           str(ddpm_slices), str(ddpm_steps)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=bundle_root)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCHMARK ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark of {mode} on {input} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"wall_s": wall, **json.loads(lines[-1][len("BENCHMARK "):])}


def _summarise(mode: str, runs: list[dict]) -> dict:
    """The timed runs of one mode on one input -> times, median, range, median per stage and peak memory."""
    from bundle.evaluation.stages import ORDER

    part = mode in PART_MODES
    times = [r["timed_s"] if part else r["wall_s"] for r in runs]
    result = {key: value for key, value in runs[0].items() if key not in ("wall_s", "timed_s", "stages")}
    result.update(times_s=times, median_s=statistics.median(times), min_s=min(times), max_s=max(times))
    for key in ("peak_rss_mb", "cuda_peak_mb"):
        if key in runs[0]:
            result[key] = max(r[key] for r in runs)
    if not part:
        stages = [dict(r["stages"], startup=r["wall_s"] - sum(r["stages"].values())) for r in runs]
        names = [name for name in ORDER if any(name in s for s in stages)]
        result["stages_median_s"] = {name: round(statistics.median(s.get(name, 0.0) for s in stages), 3)
                                     for name in names}
    if mode == "ddpm1000":
        result["timed_median_s"] = result["median_s"]
        result["median_s"] = result["median_s"] * result["scale"]
        result["note"] = (
            f"DDPM ({result['steps']} steps) timed on {result['timed_slices']} of {result['tissue_slices']} tissue "
            f"slices and scaled by {result['scale']:.2f} (time grows linearly with the number of slices)"
        )
    return result


def _input_info(path: str) -> dict:
    import nibabel as nib

    image = nib.load(path)
    spacing = [round(float(z), 3) for z in image.header.get_zooms()[:3]]
    return {"path": path, "shape": list(image.shape), "spacing_mm": spacing}


def machine_reference_s(device: str = "cpu", repeats: int = 5) -> float:
    """Median seconds of a fixed workload in this process (20 fp32 3x3 convolutions, 64 -> 64 channels, batch 8 of
    96 x 96, with the process's torch threads): the machine's speed at the time of a run. Shared and throttled
    machines drift by hours, so whole-path times of two runs compare only together with this figure."""
    torch.manual_seed(0)
    x = torch.randn(8, 64, 96, 96, device=device)
    w = torch.randn(64, 64, 3, 3, device=device)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):  # the first is a warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(20):
                torch.nn.functional.conv2d(x, w, padding=1)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def benchmark(
    output: str,
    inputs: str | list[str] | tuple[str, ...] = (),
    device: str = "",
    repeats: int = 3,
    bundle_root: str = ".",
    ddpm_slices: int = 1,
    modes: tuple[str, ...] = MODES,
    ddpm_steps: int = 1000,
    rounds: int = 1,
) -> dict:
    """Measure the ``modes`` on ``inputs`` (files, or the kinds of ``DEFAULT_INPUTS``; default: all four) and write
    the results to ``output`` (JSON), with a markdown table (``.md``) and the chart of time per stage (``.svg``)
    beside it (``bundle.evaluation.benchmark_report``); returns them.

    ``rounds`` > 1 measures the modes in turn that many times (``repeats`` timed runs each time) and pools the times.
    ``ddpm_steps`` below 1000 is only for smoke tests: the ``ddpm1000`` entry then is not the T = 1000 baseline.
    """
    bundle_root = os.path.abspath(bundle_root)
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or DEFAULT_INPUTS)
    paths = {}
    for item in inputs:
        name = item if item in DEFAULT_INPUTS else os.path.basename(item).split(".")[0]
        paths[name] = os.path.abspath(os.path.join(bundle_root, DEFAULT_INPUTS.get(item, item)))
        if not os.path.isfile(paths[name]):
            raise FileNotFoundError(f"{paths[name]}: benchmark input not found (pass --inputs FILE)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if repeats < 1 or rounds < 1:
        raise ValueError(f"repeats and rounds must be >= 1, got {repeats} and {rounds}")
    unknown = [m for m in modes if m not in (*SETTINGS, "baseline", *PART_MODES)]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; known: {[*SETTINGS, 'baseline', *PART_MODES]}")
    parser = _parser(bundle_root, device)
    reference_before = machine_reference_s(device)
    first = next(iter(paths))
    jobs = [(name, mode) for name in paths for mode in modes if mode not in PART_MODES or name == first]
    measured = {job: [] for job in jobs}
    for _ in range(rounds):
        for name, mode in jobs:
            warm_up = 0 if mode == "ddpm1000" else 1
            for i in range(warm_up + repeats):
                result = _worker_result(mode, paths[name], device, bundle_root, ddpm_slices, ddpm_steps)
                if i >= warm_up:
                    measured[(name, mode)].append(result)
    results = {name: {} for name in paths}
    for (name, mode), runs in measured.items():
        results[name][mode] = _summarise(mode, runs)
    report = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
        or platform.machine(),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "num_samples": parser["num_samples"],
        "num_steps": parser["num_steps"],
        "repeats": repeats,
        "rounds": rounds,
        "inputs": {name: _input_info(path) for name, path in paths.items()},
        "results": results,
        "ratios": {},
        # the machine's own speed at the start and end of the run (machine_reference_s): compare runs with it
        "machine_reference_s": {"before": round(reference_before, 4), "after": round(machine_reference_s(device), 4)},
    }
    for name, by_mode in results.items():
        for key, (numerator, denominator) in RATIOS.items():
            if numerator in by_mode and denominator in by_mode:
                ratio = by_mode[numerator]["median_s"] / by_mode[denominator]["median_s"]
                report["ratios"].setdefault(name, {})[key] = ratio
    from bundle.evaluation.benchmark_report import benchmark_markdown, stage_chart_svg

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(report, f, indent=2)
    stem = os.path.splitext(output)[0]
    with open(stem + ".md", "w") as f:
        f.write(benchmark_markdown(report))
    if any("stages_median_s" in r for by in results.values() for r in by.values()):
        with open(stem + ".svg", "w") as f:
            f.write(stage_chart_svg(report, "default" if "default" in modes else modes[0]))
    return report
