"""``bundle.outputs.cohort``: the batch's tables follow what it has published, case by case, failures included."""

from __future__ import annotations

import csv
import json

import torch
from monai.data import MetaTensor

from bundle.inputs.input_check import finish_batch
from bundle.outputs.cohort import write_cohort_tables
from bundle.outputs.report import PublishCased


def report(count: int, flagged: bool) -> dict:
    lesions = [{"volume_ml": 1.5 * (i + 1), "centroid_mm": [1.0 * i, 2.0, -3.0], "mean_uncertainty": 0.1}
               for i in range(count)]
    return {"lesion_count": count, "lesion_volume_ml": sum(les["volume_ml"] for les in lesions), "lesions": lesions,
            "case_score": "estimated_dice", "estimated_dice": 0.8, "review_required": flagged,
            "brain_volume_ml": 1400.0}


def stage(staging, case: str, content: dict) -> dict:
    """A finished case in the staging folder, as the config's transforms leave it for PublishCased."""
    staging.mkdir(parents=True, exist_ok=True)
    (staging / f"{case}_seg.nii.gz").write_bytes(b"x")
    (staging / f"{case}_report.json").write_text(json.dumps(content))
    return {"image": MetaTensor(torch.zeros(1), meta={"filename_or_obj": f"/in/{case}.nii.gz"})}


def rows(path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def test_tables_are_rewritten_as_each_case_is_published(tmp_path):
    staging, out = tmp_path / "out" / ".partial", tmp_path / "out"
    publish = PublishCased(str(staging), str(out))
    publish(stage(staging, "b_case", report(2, True)))
    assert [r["case"] for r in rows(out / "cohort.csv")] == ["b_case"]
    assert len(rows(out / "lesions.csv")) == 2
    # a case staged but not yet published (the run is killed here) is in no table
    stage(staging, "c_case", report(5, False))
    assert [r["case"] for r in rows(out / "cohort.csv")] == ["b_case"] and len(rows(out / "lesions.csv")) == 2
    publish(stage(staging, "a_case", report(1, False)))
    cohort = rows(out / "cohort.csv")
    assert [r["case"] for r in cohort] == ["a_case", "b_case"]
    assert cohort[1]["lesion_count"] == "2" and cohort[1]["lesion_volume_ml"] == "4.5"
    assert cohort[1]["review_required"] == "True" and cohort[1]["case_score_value"] == "0.8"
    lesions = rows(out / "lesions.csv")
    assert [(r["case"], r["lesion_id"], r["volume_ml"]) for r in lesions] == [
        ("a_case", "1", "1.5"), ("b_case", "1", "1.5"), ("b_case", "2", "3.0")]
    assert (lesions[2]["centroid_x_mm"], lesions[2]["centroid_y_mm"], lesions[2]["centroid_z_mm"]) == ("1.0", "2.0",
                                                                                                        "-3.0")
    assert not list(out.glob(".*.tmp"))  # written through a temporary file and renamed


def test_failed_inputs_are_rows_with_their_reason(tmp_path):
    (tmp_path / "ok_report.json").write_text(json.dumps(report(0, False)))
    failures = [{"path": "/in/broken.nii.gz", "error": "/in/broken.nii.gz: not a NIfTI file"}]
    try:
        finish_batch(str(tmp_path), failures, processed=1)
    except SystemExit as exit_:
        assert "1 of 2 cases failed" in str(exit_)
    cohort = rows(tmp_path / "cohort.csv")
    assert [(r["case"], r["status"]) for r in cohort] == [("ok", "ok"), ("broken.nii.gz", "failed")]
    assert cohort[1]["failure_reason"] == "/in/broken.nii.gz: not a NIfTI file" and cohort[0]["lesion_count"] == "0"
    assert rows(tmp_path / "lesions.csv") == []
    write_cohort_tables(str(tmp_path))  # idempotent
    assert rows(tmp_path / "cohort.csv") == cohort


def test_each_report_is_parsed_once_until_it_changes(tmp_path, monkeypatch):
    import bundle.outputs.cohort as cohort

    path = tmp_path / "a_report.json"
    path.write_text(json.dumps(report(1, False)))
    parsed = []
    monkeypatch.setattr(cohort.json, "load", lambda f: parsed.append(f.name) or json.loads(f.read()))
    write_cohort_tables(str(tmp_path))
    write_cohort_tables(str(tmp_path))
    assert len(parsed) == 1 and rows(tmp_path / "cohort.csv")[0]["lesion_count"] == "1"
    path.write_text(json.dumps(report(3, True)))  # rewritten (e.g. the case was run again): read again
    write_cohort_tables(str(tmp_path))
    assert len(parsed) == 2 and rows(tmp_path / "cohort.csv")[0]["lesion_count"] == "3"
