"""A benchmark JSON (``bundle.evaluation.benchmark``) as a markdown table and an SVG chart of the time per stage.

The table has one row per input and whole-path mode: median, minimum and maximum wall time (process start to
written files), peak memory, and the median seconds of each stage; then the ratios. The chart stacks, per input,
the median stage times of the default path in the order of the path.
"""

from __future__ import annotations

from bundle.evaluation.stages import ORDER

COLOURS = ("#9e9e9e", "#bcaaa4", "#8d6e63", "#ffb74d", "#4db6ac", "#64b5f6", "#7986cb", "#e57373", "#ba68c8",
           "#f06292", "#aed581", "#fff176", "#4dd0e1", "#a1887f")


def benchmark_markdown(report: dict) -> str:
    """The report's whole-path results and ratios as markdown."""
    stages = [s for s in ORDER if any(s in r.get("stages_median_s", {}) for by in report["results"].values()
                                     for r in by.values())]
    header = ["input", "mode", "median s", "min-max s", "peak GB", *stages]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_mode in report["results"].items():
        for mode, r in by_mode.items():
            if "stages_median_s" not in r:
                continue
            cells = [name, mode, f"{r['median_s']:.1f}", f"{r['min_s']:.1f}-{r['max_s']:.1f}",
                     f"{r['peak_rss_mb'] / 1024:.1f}", *(f"{r['stages_median_s'].get(s, 0.0):.1f}" for s in stages)]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if "machine_reference_s" in report:
        ref = report["machine_reference_s"]
        lines.append(f"Machine reference (fixed convolution workload, median s): {ref['before']:.3f} at the start, "
                     f"{ref['after']:.3f} at the end of the run.\n")
    for name, ratios in report.get("ratios", {}).items():
        lines.append(f"- {name}: " + ", ".join(f"{key} = {value:.2f}" for key, value in ratios.items()))
    for name, by_mode in report["results"].items():
        for mode in ("ddpm1000", "unet"):
            if mode in by_mode:
                note = by_mode[mode].get("note", "one forward pass over every tissue slice stack")
                lines.append(f"- {name}, {mode}: {by_mode[mode]['median_s']:.1f} s ({note})")
    return "\n".join(lines) + "\n"


def stage_chart_svg(report: dict, mode: str = "default") -> str:
    """Horizontal stacked bars: per input, the median seconds of each stage of ``mode``, with a legend."""
    rows = [(name, by[mode]["stages_median_s"]) for name, by in report["results"].items() if mode in by]
    stages = [s for s in ORDER if any(s in r for _, r in rows)]
    longest = max((sum(r.values()) for _, r in rows), default=1.0) or 1.0
    left, top, width, bar = 150, 40, 560, 22
    height = top + len(rows) * (bar + 12) + 30 + 16 * ((len(stages) + 3) // 4)
    scale = width / longest
    device = report.get("device_name") or report.get("device", "")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" '
             f'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{left}" y="18" font-weight="bold">{mode}: median seconds per stage, process start to written '
             f'files ({report.get("threads", "?")} threads, {device})</text>']
    for i, (name, times) in enumerate(rows):
        y, x = top + i * (bar + 12), float(left)
        parts.append(f'<text x="{left - 6}" y="{y + bar / 2 + 4}" text-anchor="end">{name}</text>')
        for stage in stages:
            w = times.get(stage, 0.0) * scale
            colour = COLOURS[ORDER.index(stage) % len(COLOURS)]
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}"><title>{stage}: '
                         f'{times.get(stage, 0.0):.1f} s</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar / 2 + 4}">{sum(times.values()):.1f} s</text>')
    legend_top = top + len(rows) * (bar + 12) + 14
    for j, stage in enumerate(stages):
        x, y = left + (j % 4) * 150, legend_top + (j // 4) * 16
        colour = COLOURS[ORDER.index(stage) % len(COLOURS)]
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{y}">{stage}</text>')
    parts.append("</svg>\n")
    return "".join(parts)
