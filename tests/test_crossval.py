"""Cross-validation: patient-level folds over every labelled real case, fold datalists, snapshots, pooled scores."""

from __future__ import annotations

import json
import os

import pytest
import torch

from bundle.crossval import ALL, FOLDS_FILE, fold_datalist, folds_of, pooled_summary, read_folds, snapshots
from bundle.precision import AutocastInferer
from conftest import BUNDLE_ROOT, SHARED_DATA, require_shared


@pytest.fixture(scope="module")
def cases():
    return read_folds(str(BUNDLE_ROOT / FOLDS_FILE))


def test_every_labelled_real_case_is_in_exactly_one_fold_with_its_patient(cases):
    assert len(cases) == 30 and len({c["image"] for c in cases}) == 30
    assert sum(c["kind"] == "ms" for c in cases) == 6 and sum(c["kind"] == "glioma" for c in cases) == 24
    folds = {}
    for c in cases:
        folds.setdefault(c["patient"], set()).add(c["fold"])
    assert all(len(f) == 1 for f in folds.values())  # all scans of a patient in one fold
    ms_patients = {c["patient"] for c in cases if c["kind"] == "ms"}
    assert ms_patients == {"patient26", "P14", "P18", "P39"}
    # leave-one-patient-out for MS: each fold holds exactly one MS patient; gliomas 6 per fold
    for fold in range(4):
        assert len({c["patient"] for c in cases if c["fold"] == fold and c["kind"] == "ms"}) == 1
        assert sum(c["fold"] == fold and c["kind"] == "glioma" for c in cases) == 6
    assert sum(c["patient"] == "P14" for c in cases) == 3


def test_every_listed_file_is_in_shared(cases):
    require_shared(SHARED_DATA)
    missing = [p for c in cases for p in (c["image"], c["label"]) if not os.path.isfile(p)]
    assert not missing


def test_fold_datalist_holds_out_the_fold_and_repeats_ms_scans(cases):
    d = fold_datalist(cases, 1, ms_repeats=3)
    held = {c["image"] for c in cases if c["fold"] == 1}
    train_images = [t["image"] for t in d["training"]]
    assert not held & set(train_images)
    assert {t["image"] for t in d["testing"]} == held == {t["image"] for t in d["validation"]}
    # fold 1 holds P14 (3 scans): 3 MS scans of 3 patients left, each 3 times; 18 gliomas once
    assert len(train_images) == 3 * 3 + 18
    assert all(train_images.count(c["image"]) == 3 for c in cases if c["kind"] == "ms" and c["fold"] != 1)
    everything = fold_datalist(cases, ALL, ms_repeats=1)
    assert len(everything["training"]) == 30


def test_a_patient_in_two_folds_is_refused(tmp_path, cases):
    bad = [dict(c) for c in cases[:2]]
    bad[1]["patient"], bad[1]["fold"] = bad[0]["patient"], bad[0]["fold"] + 1
    path = tmp_path / "folds.json"
    path.write_text(json.dumps({"cases": bad}))
    with pytest.raises(ValueError, match="is in folds"):
        read_folds(str(path))


def test_fold_selection(cases):
    assert folds_of(cases, None) == [0, 1, 2, 3]
    assert folds_of(cases, 2) == [2] and folds_of(cases, "2") == [2]
    assert folds_of(cases, "[0, 3]") == [0, 3] == folds_of(cases, [0, 3])
    assert folds_of(cases, "all") == [ALL]
    with pytest.raises(SystemExit, match="no fold"):
        folds_of(cases, 7)


def test_snapshots_are_found_by_iteration(tmp_path):
    for name in ("net_model_iteration=2000.pt", "net_model_iteration=10000.pt", "resume_checkpoint_epoch=3.pt"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(snapshots(str(tmp_path))) == [2000, 10000]


def test_pooled_summary_is_per_kind():
    rows = [{"kind": "ms", "dice": 0.2, "hd95": 5.0, "lesion_f1": 0.5, "avd_ml": 1.0, "ece": 0.01,
             "uncertainty_score": 0.6},
            {"kind": "glioma", "dice": 0.9, "hd95": 3.0, "lesion_f1": 1.0, "avd_ml": 2.0, "ece": 0.02,
             "uncertainty_score": 0.1}]
    summary = pooled_summary(rows)
    assert summary["ms"]["dice"] == 0.2 and summary["glioma"]["dice"] == 0.9
    assert summary["all"]["dice"] == pytest.approx(0.55)
    assert summary["all"]["failure_auroc"] == 1.0  # the failing case has the higher score


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_inferer_runs_the_training_forward_in_the_asked_precision(precision, dtype):
    net = torch.nn.Conv2d(1, 1, 3)
    out = AutocastInferer(precision)(torch.randn(2, 1, 8, 8), net)
    assert out.dtype == dtype
    with pytest.raises(ValueError, match="precision"):
        AutocastInferer("fp8")


def test_learning_curve_reads_every_scored_snapshot(tmp_path):
    from bundle.crossval import learning_curve, learning_curve_svg

    for n, ms in ((4000, 0.5), (2000, 0.3)):
        (tmp_path / f"score_{n}").mkdir()
        mean = {"ms": {"dice": ms, "lesion_f1": 0.4}, "glioma": {"dice": 0.8, "lesion_f1": 0.9}, "all": {}}
        (tmp_path / f"score_{n}" / "metrics.json").write_text(json.dumps({"iterations": n, "mean": mean}))
    points = learning_curve(str(tmp_path))
    assert [p["iterations"] for p in points] == [2000, 4000] and points[1]["ms"]["dice"] == 0.5
    svg = learning_curve_svg(points, "t")
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and ">4000<" in svg
