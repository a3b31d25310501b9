"""Time of the DDIM ensemble against N and K: ``python -m bundle.dev benchmark-sweep --output F.json --plot F.svg``.

Runs the inference config's sampler (shipped weights; its tiles, mirroring, adaptive stopping and numerics) on
``slices`` central tissue slices of the preprocessed input, for N in ``samples`` at K = ``fixed_steps`` and for K in
``steps`` at N = ``fixed_samples``; each point is the median of ``repeats`` runs after one warm-up. Sampling time
grows as N x K (one denoiser pass of N masks per step; less where adaptive stopping ends slices early), while f^I
runs once per slice and view whatever N and K; the plot shows how close to that it is.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import torch

from bundle.evaluation.benchmark import DEFAULT_INPUT, _parser, _preprocessed, _sync
from bundle.memory import keep_freed_memory
from bundle.model.reference import config_sampler, load_network


def _time(inferer, volume, network, device: str, repeats: int) -> float:
    times = []
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        inferer(volume, network)
        _sync(device)
        if i > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def sweep(
    output: str,
    plot: str = "",
    input: str = "",
    device: str = "",
    slices: int = 16,
    samples: tuple[int, ...] = (1, 2, 4, 8, 16),
    steps: tuple[int, ...] = (1, 2, 5, 10, 20),
    fixed_samples: int = 8,
    fixed_steps: int = 10,
    repeats: int = 3,
    bundle_root: str = ".",
) -> dict:
    """Measure sampling time against N and K; write JSON to ``output`` and, if ``plot``, an SVG chart."""
    from bundle.preprocessing.slices import tissue_slices

    bundle_root = os.path.abspath(bundle_root)
    input = os.path.abspath(input or os.path.join(bundle_root, DEFAULT_INPUT))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    parser = _parser(bundle_root, device)
    keep_freed_memory(parser["keep_freed_memory"])  # the allocator settings of the inference config
    network = load_network(parser)
    volume = _preprocessed(parser, input, device)
    tissue = tissue_slices(volume[0])
    chosen = tissue[len(tissue) // 2 - slices // 2 :][:slices]
    volume = volume[..., chosen]

    def run(n: int, k: int) -> float:
        inferer = config_sampler(parser, k, parser["eta"])  # the config's sampler: tiles, mirror, stopping, numerics
        inferer.num_samples, inferer.slice_batch_size = n, slices
        return _time(inferer, volume, network, device, repeats)

    timed = config_sampler(parser, fixed_steps, parser["eta"])  # its settings are what every point ran with
    report = {
        "input": input, "device": device, "torch_version": torch.__version__, "threads": torch.get_num_threads(),
        "slices": len(chosen), "slice_shape": list(volume.shape[2:4]), "repeats": repeats,
        **{key: getattr(timed, key) for key in ("precision", "channels_last", "tile_size", "mirror", "stop_tolerance")},
        "time_vs_samples": {"steps": fixed_steps, "points": [[n, run(n, fixed_steps)] for n in samples]},
        "time_vs_steps": {"samples": fixed_samples, "points": [[k, run(fixed_samples, k)] for k in steps]},
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(report, f, indent=2)
    if plot:
        with open(plot, "w") as f:
            f.write(svg_chart(report))
    return report


def _panel(points: list, x0: int, title: str, xlabel: str, ymax: float) -> str:
    """One line chart (220 x 160 plot area at x offset ``x0``) of (x, seconds) points, x on a linear axis."""
    left, top, width, height = x0 + 50, 30, 220, 160
    xmax = max(p[0] for p in points)
    sx = lambda x: left + width * x / xmax  # noqa: E731
    sy = lambda y: top + height * (1 - y / ymax)  # noqa: E731
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    ticks = "".join(
        f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>'
        f'<line x1="{left}" x2="{left + width}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>'
        for v in [ymax * i / 4 for i in range(5)]
    )
    marks = "".join(
        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/><text x="{sx(x):.1f}" y="{top + height + 16}" '
        f'text-anchor="middle">{x}</text>' for x, y in points
    )
    return (
        f'<text x="{left + width / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>{ticks}'
        f'<polyline points="{line}" fill="none" stroke="#c00" stroke-width="2"/>{marks}'
        f'<text x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">{xlabel}</text>'
        f'<text x="{x0 + 12}" y="{top + height / 2}" transform="rotate(-90 {x0 + 12} {top + height / 2})" '
        f'text-anchor="middle">seconds</text>'
    )


def svg_chart(report: dict) -> str:
    """Two panels: sampling time against N (K fixed) and against K (N fixed)."""
    by_n, by_k = report["time_vs_samples"], report["time_vs_steps"]
    ymax = max(y for _, y in by_n["points"] + by_k["points"]) * 1.1
    caption = (f"{report['slices']} slices of {report['slice_shape'][0]}x{report['slice_shape'][1]}, "
               f"{report['device']}, {report['threads']} threads, median of {report['repeats']}")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="260" font-family="sans-serif" font-size="11">'
        '<rect width="640" height="260" fill="white"/>'
        + _panel(by_n["points"], 0, f"time vs N (K = {by_n['steps']})", "N samples", ymax)
        + _panel(by_k["points"], 320, f"time vs K (N = {by_k['samples']})", "K DDIM steps", ymax)
        + f'<text x="320" y="254" text-anchor="middle" fill="#555">{caption}</text></svg>\n'
    )
