"""Speed and memory benchmark: ``python -m bundle benchmark [--device cpu|cuda] [--input FILE] --output FILE.json``.

Measures, on one FLAIR volume (default: the real 182x218x182 1 mm MS scan of ../shared), after one warm-up run,
the median of ``repeats`` runs (wall time) and the peak memory of:

a. ``default``: the whole default inference path (load, preprocessing, N samples x K DDIM steps, inversion,
   saving the three outputs), via the bundle's inference config;
b. ``ddpm1000``: the same weights sampled like the original seed notes, DDPM ancestral sampling over all
   T = 1000 steps (DDIM with eta = 1 over every timestep, see ``bundle.model.reference``; same N and speed
   settings as a); timed on ``ddpm_slices`` tissue slices (N samples each) and scaled by the number of tissue
   slices of the volume (the output says so);
c. ``unet``: one forward pass of a deterministic MONAI U-Net of similar parameter count (the baseline
   architecture with instance normalisation; random weights) over every tissue slice stack of the same
   preprocessed volume;
d. ``default_plain`` (optional, ``--modes``): path a with the speed settings off (contiguous NCHW, float32), so
   the gain of channels_last + bf16 is a ratio measured in the same run;
e. ``default_all_steps`` (optional, ``--modes``): path a without adaptive stopping (``stop_tolerance`` = 0: every
   slice runs all K steps; see ``bundle.model.inferer``), so its gain is a ratio measured in the same run.
f. ``default_unmirrored`` (optional, ``--modes``): path a with mirror ensembling off (``mirror`` = false), so the
   cost of mirroring is a ratio measured in the same run.
g. ``baseline`` (optional, ``--modes``): the whole inference path of the deterministic baseline
   (``configs/baseline_inference.yaml`` merged over the inference config, ``models/baseline.pt``): the same reading,
   preprocessing, inversion and saving as a, one U-Net instead of the sampler. a / g is the cost of diffusion as a
   user sees it; a / c compares a whole path with a bare forward pass.
h. ``default_uncorrected`` (optional, ``--modes``): path a without the default input corrections (no N4 bias-field
   correction, no input smoothing), so their cost is a ratio measured in the same run.
i. ``default_glibc_defaults`` (optional, ``--modes``): path a with ``keep_freed_memory`` = false, glibc's own malloc
   settings that return freed memory to the kernel after every step (see ``bundle.memory``), so the gain of keeping
   it is a ratio measured in the same run.
j. ``default_unstripped`` (optional, ``--modes``): path a with ``skull_strip`` = false, so the cost of brain
   extraction (deepbet runs; on a skull-stripped input the scan passes unchanged) is a ratio measured in the same run.
k. ``default_whole_slices`` (optional, ``--modes``): path a with ``tile_size`` = 0 (whole slices instead of tiles of
   the training patch size), so the cost of tiling is a ratio measured in the same run.
l. ``default_slice_batch_16`` (optional, ``--modes``): path a with ``slice_batch_size`` = 16, so the time and peak
   memory of the batch size are compared in the same run.

Each measurement runs in its own process so its peak RSS (``getrusage``) and CUDA peak are its own. With
``rounds`` > 1 the modes are measured in turn, round after round (a b a b ...), and each mode's times are pooled, so
a slow drift of the machine's speed falls on every mode alike instead of on whichever ran first. The JSON holds
the times, the ratios b/a and a/c, N, K, device name, torch version and thread count.
"""

from __future__ import annotations

import functools
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

from bundle.memory import keep_freed_memory

DEFAULT_INPUT = os.path.join("..", "shared", "data", "open_ms_data", "cross_sectional_mni", "patient26_FLAIR.nii.gz")
MODES = ("default", "ddpm1000", "unet")
# path a (default) and path a with config overrides (the optional default_* modes above): ratios in the same run
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
    parser.update(settings or {})
    with tempfile.TemporaryDirectory(prefix="bench_") as out:
        parser.update({"datalist_files": [{"image": path}], "output_dir": out})
        parser.get_parsed_content("initialize")
        evaluator = parser.get_parsed_content("evaluator")
        evaluator.run()
    return {"settings": settings or {}, "network": type(evaluator.network).__name__}


def _run_ddpm(parser, path: str, device: str, slices: int, steps: int) -> dict:
    from bundle.model.reference import load_network, reference_sampler, sample_slices
    from bundle.preprocessing.slices import tissue_slices

    keep_freed_memory(parser["keep_freed_memory"])  # the allocator settings of path a
    network = load_network(parser)
    volume = _preprocessed(parser, path, device)[0]
    tissue = tissue_slices(volume)
    chunk = tissue[len(tissue) // 2 - slices // 2 :][:slices]
    sample_slices(reference_sampler(parser, steps), volume, chunk, network)  # DDPM = DDIM, eta 1, all steps
    return {"timed_slices": len(chunk), "tissue_slices": len(tissue), "scale": len(tissue) / len(chunk), "steps": steps}


def _run_unet(parser, path: str, device: str) -> dict:
    from monai.networks.nets import UNet

    from bundle.model.inferer import SliceStackInferer

    channels = parser["image_channels"] * (2 * parser["context_slices"] + 1)
    keep_freed_memory(parser["keep_freed_memory"])  # the allocator settings of path a
    unet = UNet(2, channels, 1, (16, 32, 64, 128, 256), (2, 2, 2, 2), num_res_units=1, norm="instance").to(device)
    volume = _preprocessed(parser, path, device)
    with torch.inference_mode():
        SliceStackInferer(parser["context_slices"], slice_batch_size=64)(volume, unet.eval())
    return {"parameters": sum(p.numel() for p in unet.parameters())}


def worker(
    mode: str, input: str, device: str, repeats: int, bundle_root: str, ddpm_slices: int, ddpm_steps: int = 1000
) -> None:
    """Warm up once, time ``repeats`` runs of ``mode``; print one JSON line (used by ``benchmark``)."""
    torch.manual_seed(0)
    runs = {
        **{name: functools.partial(_run_default, path=input, device=device, settings=settings)
           for name, settings in SETTINGS.items()},
        "ddpm1000": lambda p: _run_ddpm(p, input, device, ddpm_slices, ddpm_steps),
        "unet": lambda p: _run_unet(p, input, device),
        "baseline": lambda p: _run_default(p, input, device),
    }
    configs = BASELINE_CONFIGS if mode == "baseline" else ("inference.yaml",)
    times, info = [], {}
    for i in range(repeats + 1):
        parser = _parser(bundle_root, device, configs)
        _sync(device)
        start = time.perf_counter()
        info = runs[mode](parser)
        _sync(device)
        if i > 0:  # run 0 is the warm-up
            times.append(time.perf_counter() - start)
    result = {"mode": mode, "times_s": times, **info}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if device.startswith("cuda"):
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("BENCHMARK " + json.dumps(result))


def _worker_result(
    mode: str, input: str, device: str, repeats: int, bundle_root: str, ddpm_slices: int, ddpm_steps: int
) -> dict:
    cmd = [sys.executable, "-m", "bundle", "benchmark-worker", mode, input, device, str(repeats), bundle_root,
           str(ddpm_slices), str(ddpm_steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=bundle_root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCHMARK ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark of {mode} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCHMARK "):])


def _summarise(rounds: list[dict]) -> dict:
    """One mode's worker results (one per round) -> its pooled times, median, range and peak memory."""
    result = dict(rounds[0])
    result["times_s"] = [t for r in rounds for t in r["times_s"]]
    for key in ("peak_rss_mb", "cuda_peak_mb"):
        if key in result:
            result[key] = max(r[key] for r in rounds)
    times = result["times_s"]
    result.update(median_s=statistics.median(times), min_s=min(times), max_s=max(times))
    if result["mode"] == "ddpm1000":
        result["timed_median_s"] = result["median_s"]
        result["median_s"] = result["median_s"] * result["scale"]
        result["note"] = (
            f"DDPM ({result['steps']} steps) timed on {result['timed_slices']} of {result['tissue_slices']} tissue "
            f"slices and scaled by {result['scale']:.2f} (time grows linearly with the number of slices)"
        )
    return result


def benchmark(
    output: str,
    input: str = "",
    device: str = "",
    repeats: int = 3,
    bundle_root: str = ".",
    ddpm_slices: int = 2,
    modes: tuple[str, ...] = MODES,
    ddpm_steps: int = 1000,
    rounds: int = 1,
) -> dict:
    """Measure the ``modes`` on ``input`` and write the results to ``output`` (JSON); returns them.

    ``rounds`` > 1 measures the modes in turn that many times (``repeats`` timed runs each time) and pools the times.
    ``ddpm_steps`` below 1000 is only for smoke tests: the ``ddpm1000`` entry then is not the T = 1000 baseline.
    """
    bundle_root = os.path.abspath(bundle_root)
    input = os.path.abspath(input or os.path.join(bundle_root, DEFAULT_INPUT))
    if not os.path.isfile(input):
        raise FileNotFoundError(f"{input}: benchmark input not found (pass --input FILE)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if repeats < 1 or rounds < 1:
        raise ValueError(f"repeats and rounds must be >= 1, got {repeats} and {rounds}")
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(os.path.join(bundle_root, "configs", "inference.yaml"))
    measured = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            measured[mode].append(_worker_result(mode, input, device, repeats, bundle_root, ddpm_slices, ddpm_steps))
    results = {mode: _summarise(measured[mode]) for mode in modes}
    report = {
        "input": input,
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
        "results": results,
    }
    for name, (numerator, denominator) in RATIOS.items():
        if numerator in results and denominator in results:
            report[name] = results[numerator]["median_s"] / results[denominator]["median_s"]
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(report, f, indent=2)
    return report
