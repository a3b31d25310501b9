"""One HTML page for reviewing a batch: ``python -m bundle review OUT_DIR`` writes ``OUT_DIR/review.html``.

Cases are read from the ``<case>_report.json`` files of an inference run and shown worst first: flagged cases
before the others, then by the case uncertainty score (1 - estimated Dice, the review rule's main term), then by
uncertain volume (mL of voxels whose sample std exceeds ``uncertain_voxel_threshold``). Each row shows the case's
``<case>_review.png`` (three planes, lesion contours, uncertainty), and the failed inputs of ``failures.json`` are
listed on top.
"""

from __future__ import annotations

import glob
import html
import json
import os

REPORT_SUFFIX = "_report.json"


def load_reports(output_dir: str) -> list[dict]:
    """Every case report in ``output_dir``, each with its ``case`` name added, worst uncertainty first."""
    reports = []
    for path in glob.glob(os.path.join(output_dir, f"*{REPORT_SUFFIX}")):
        with open(path) as f:
            report = json.load(f)
        report["case"] = os.path.basename(path)[: -len(REPORT_SUFFIX)]
        reports.append(report)
    return sorted(reports, key=review_priority)


def review_priority(report: dict) -> tuple:
    """Sort key: flagged first, then higher case uncertainty score, larger uncertain volume, higher lesion uncertainty,
    then name."""
    return (
        not report.get("review_required", True),
        -float(report.get("uncertainty_score") or 0.0),
        -float(report.get("uncertain_volume_ml") or 0.0),
        -float(report.get("mean_uncertainty_in_lesions") or 0.0),
        report["case"],
    )


def _row(report: dict, output_dir: str) -> str:
    e = html.escape
    flag = '<b class="flag">review</b>' if report.get("review_required") else "ok"
    image = f"{report['case']}_review.png"
    picture = f'<img src="{e(image)}" alt="{e(report["case"])}">'
    if not os.path.exists(os.path.join(output_dir, image)):
        picture = "(no review image)"
    return (
        f"<tr><td><b>{e(report['case'])}</b><br>{flag}<br>"
        f"lesions: {report.get('lesion_count')}<br>volume: {report.get('lesion_volume_ml')} mL<br>"
        f"uncertainty score: {report.get('uncertainty_score')} (estimated Dice {report.get('estimated_dice')})<br>"
        f"uncertain: {report.get('uncertain_volume_ml')} mL<br>"
        f"lesion uncertainty: {report.get('mean_uncertainty_in_lesions')}<br>"
        f"<small>{e(str(report.get('input', '')))}<br>rule: {e(str(report.get('review_rule', '')))}</small></td>"
        f"<td>{picture}</td></tr>"
    )


def review(output_dir: str) -> str:
    """Write ``output_dir/review.html`` for the batch in ``output_dir``; returns its path."""
    if not os.path.isdir(output_dir):
        raise SystemExit(f"error: {output_dir}: not a folder (pass an inference output folder)")
    reports = load_reports(output_dir)
    failures_path = os.path.join(output_dir, "failures.json")
    failures = []
    if os.path.exists(failures_path):
        with open(failures_path) as f:
            failures = json.load(f)
    if not reports and not failures:
        raise SystemExit(f"error: {output_dir}: no *_report.json files (not an inference output folder?)")
    flagged = sum(bool(r.get("review_required")) for r in reports)
    failed = "".join(f"<li>{html.escape(f['path'])}: {html.escape(f['error'])}</li>" for f in failures)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Lesion review: {html.escape(output_dir)}</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{vertical-align:top;padding:6px;border-bottom:1px solid #ccc}}
img{{max-width:900px}} .flag{{color:#c00}} .failed{{color:#c00}}</style></head><body>
<h1>Lesion segmentation review</h1>
<p>{len(reports)} cases, {flagged} flagged for review, {len(failures)} failed inputs; worst uncertainty first.
Images: patient right on the left; top row lesion contours (red), bottom row per-voxel uncertainty (std of the
sampled masks: dark = samples agree, red/yellow/white = they disagree).</p>
{f'<h2 class="failed">Failed inputs</h2><ul class="failed">{failed}</ul>' if failures else ""}
<table>{"".join(_row(r, output_dir) for r in reports)}</table>
</body></html>
"""
    path = os.path.join(output_dir, "review.html")
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
