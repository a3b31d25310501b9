"""Cohort tables of a batch: ``cohort.csv`` (one row per case: counts and volumes, also per location) and
``lesions.csv`` (one row per lesion, with its location).

Both are built from what the batch has published in its output folder, the ``<case>_report.json`` files and
``failures.json``, and rewritten atomically (temporary file, then rename) each time a case is published and when the
batch ends, so the tables of an interrupted run always match the files it has published (and a run resumed with
``--skip_existing`` lists the earlier cases too). Failed inputs are rows of ``cohort.csv`` with their reason.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os

from bundle.outputs.files import write_text_atomic
from bundle.outputs.locations import LOCATIONS

REPORT_SUFFIX = "_report.json"
COHORT_COLUMNS = (
    "case", "status", "lesion_count", "lesion_volume_ml",
    *(f"{place}_{what}" for place in LOCATIONS for what in ("count", "volume_ml")),
    "case_score", "case_score_value", "review_required", "brain_volume_ml", "failure_reason",
)
LESION_COLUMNS = ("case", "lesion_id", "volume_ml", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "location",
                  "mean_uncertainty")


def _csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# rows of each report already read, by path: (mtime_ns, size) when read, case row, lesion rows; a batch rewrites
# its tables after every case, so without it a batch of N cases would parse N^2 / 2 reports
_READ: dict[str, tuple[tuple[int, int], dict, list[dict]]] = {}


def report_rows(path: str) -> tuple[dict, list[dict]]:
    """(case row, lesion rows) of one published ``<case>_report.json``; read again only when the file changed."""
    stat = os.stat(path)
    stamp = (stat.st_mtime_ns, stat.st_size)
    if path in _READ and _READ[path][0] == stamp:
        return _READ[path][1], _READ[path][2]
    case = os.path.basename(path)[: -len(REPORT_SUFFIX)]
    with open(path) as f:
        report = json.load(f)
    score = report.get("case_score", "estimated_dice")
    row = {
        "case": case, "status": "ok", "lesion_count": report["lesion_count"],
        "lesion_volume_ml": report["lesion_volume_ml"], "case_score": score,
        "case_score_value": report.get(score), "review_required": report["review_required"],
        "brain_volume_ml": report.get("brain_volume_ml"), "failure_reason": "",
        **{f"{place}_{what}": value[what] for place, value in report.get("locations", {}).items()
           for what in ("count", "volume_ml")},
    }
    lesions = []
    for i, lesion in enumerate(report.get("lesions", []), start=1):
        x, y, z = lesion["centroid_mm"]
        lesions.append({"case": case, "lesion_id": i, "volume_ml": lesion["volume_ml"], "centroid_x_mm": x,
                        "centroid_y_mm": y, "centroid_z_mm": z, "location": lesion.get("location", ""),
                        "mean_uncertainty": lesion["mean_uncertainty"]})
    _READ[path] = (stamp, row, lesions)
    return row, lesions


def cohort_rows(output_dir: str) -> tuple[list[dict], list[dict]]:
    """(case rows, lesion rows) of everything published in ``output_dir``, cases in name order, failures last."""
    cases, lesions = [], []
    for path in sorted(glob.glob(os.path.join(os.path.abspath(output_dir), "*" + REPORT_SUFFIX))):
        row, rows = report_rows(path)
        cases.append(dict(row))
        lesions += [dict(r) for r in rows]
    failures_file = os.path.join(output_dir, "failures.json")
    if os.path.isfile(failures_file):
        with open(failures_file) as f:
            for failure in json.load(f):
                cases.append({"case": os.path.basename(os.path.normpath(failure["path"])), "status": "failed",
                              "failure_reason": failure["error"]})
    return cases, lesions


def write_cohort_tables(output_dir: str) -> None:
    """Rewrite ``cohort.csv`` and ``lesions.csv`` in ``output_dir`` from its published files (module docstring)."""
    cases, lesions = cohort_rows(output_dir)
    write_text_atomic(os.path.join(output_dir, "lesions.csv"), _csv_text(LESION_COLUMNS, lesions))
    write_text_atomic(os.path.join(output_dir, "cohort.csv"), _csv_text(COHORT_COLUMNS, cases))
