"""Cross-validation: patient-level folds over every labelled real case, fold datalists, snapshots, pooled scores."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from conftest import BUNDLE_ROOT, SHARED_DATA, require_shared

from bundle.evaluation.crossval import (
    ALL,
    FOLDS_FILE,
    SAMPLE_PATIENT,
    fold_datalist,
    folds_of,
    pooled_markdown,
    pooled_summary,
    read_folds,
    seconds_per_iteration,
    snapshots,
)
from bundle.model.precision import AutocastInferer


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
    everything = fold_datalist(cases, ALL, ms_repeats=1)  # the weights to ship: every case but the sample's
    assert len(everything["training"]) == 29
    assert not any(SAMPLE_PATIENT in t["image"] for t in everything["training"])
    assert (BUNDLE_ROOT / "docs" / "sample" / f"{SAMPLE_PATIENT}_flair.nii.gz").exists()


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


def test_seconds_per_iteration_is_the_median_step_of_the_training_logs(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    assert seconds_per_iteration(str(tmp_path)) is None
    for run, (start, step_s) in enumerate(((1000.0, 0.5), (5000.0, 0.6))):  # two processes: a run and its resume
        writer = SummaryWriter(str(tmp_path), filename_suffix=f".{run}")
        for i in range(6):
            writer.add_scalar("train_loss", 1.0, i, walltime=start + i * step_s + (900 if i == 5 else 0))
            writer.add_scalar("other", 1.0, i, walltime=start + 0.01)  # another tag: not counted
        writer.close()
    # gaps: 4 x 0.5 and 1 x 900.5 from the first process, 4 x 0.6 and 1 x 900.6 from the second; the pause between
    # the processes is not a gap
    assert seconds_per_iteration(str(tmp_path)) == 0.6


def test_pooled_summary_is_per_kind():
    rows = [{"kind": "ms", "dice": 0.2, "hd95": 5.0, "lesion_f1": 0.5, "avd_ml": 1.0, "ece": 0.01,
             "uncertainty_score": 0.6},
            {"kind": "glioma", "dice": 0.9, "hd95": 3.0, "lesion_f1": 1.0, "avd_ml": 2.0, "ece": 0.02,
             "uncertainty_score": 0.1}]
    summary = pooled_summary(rows)
    assert summary["ms"]["dice"] == 0.2 and summary["glioma"]["dice"] == 0.9
    assert summary["all"]["dice"] == pytest.approx(0.55)
    assert summary["all"]["failure_auroc"] == 1.0  # the failing case has the higher score
    rows = [dict(r, id=r["kind"] + "_case", fold=0, review_required=r["kind"] == "ms") for r in rows]
    table = pooled_markdown({"iterations": 2000, "mean": pooled_summary(rows), "cases": rows})
    assert "| ms_case | 0 | 0.2 | 5.0 | 0.5 | 1.0 | 0.01 | 0.6 | True |" in table
    assert "| **mean** | | 0.9 | 3.0 | 1.0 | 2.0 | 0.02 | | |" in table
    assert "AUROC (Dice < 0.5): None; AURC: 0.8; cases with Dice < 0.3 not flagged: 0" in table  # MS: flagged


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_inferer_runs_the_training_forward_in_the_asked_precision(precision, dtype):
    net = torch.nn.Conv2d(1, 1, 3)
    out = AutocastInferer(precision)(torch.randn(2, 1, 8, 8), net)
    assert out.dtype == dtype
    with pytest.raises(ValueError, match="precision"):
        AutocastInferer("fp8")


def test_learning_curve_reads_every_scored_snapshot(tmp_path):
    from bundle.evaluation.crossval import learning_curve, learning_curve_svg

    for n, ms in ((4000, 0.5), (2000, 0.3)):
        (tmp_path / f"score_{n}").mkdir()
        mean = {"ms": {"dice": ms, "lesion_f1": 0.4}, "glioma": {"dice": 0.8, "lesion_f1": 0.9}, "all": {}}
        (tmp_path / f"score_{n}" / "metrics.json").write_text(json.dumps({"iterations": n, "mean": mean}))
    points = learning_curve(str(tmp_path))
    assert [p["iterations"] for p in points] == [2000, 4000] and points[1]["ms"]["dice"] == 0.5
    for n, folds in ((2000, [0, 1, 2, 3]), (4000, [0])):  # 4000 scored on one fold so far: not a point yet
        path = tmp_path / f"score_{n}" / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "settings": {"folds": folds}}))
    assert [p["iterations"] for p in learning_curve(str(tmp_path), [0, 1, 2, 3])] == [2000]
    svg = learning_curve_svg({"diffusion": points}, "t")
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and ">4000<" in svg and "stroke-dasharray" not in svg
    svg = learning_curve_svg({"diffusion": points, "baseline": points[:1]}, "t")  # the second model dashed
    assert svg.count("<polyline") == 6 and svg.count('stroke-dasharray="5,3"') == 6  # 3 lines + 3 legend keys
    assert ">baseline ms dice<" in svg and ">diffusion glioma dice<" in svg


def test_review_rule_is_fitted_so_that_no_dice_below_0_3_goes_unflagged():
    from bundle.evaluation.crossval import fit_review_rule

    config = {"max_lesion_uncertainty": 0.25, "max_case_uncertainty": 0.4, "lesion_volume_range_ml": [0.5, 300.0],
              "brain_volume_range_ml": [800.0, 2400.0]}
    row = lambda dice, est, agree, vol=10.0: {  # noqa: E731
        "dice": dice, "estimated_dice": est, "sample_agreement": agree, "lesion_fraction_at_brain_edge": 0.0,
        "predicted_volume_ml": vol, "brain_volume_ml": 1400.0, "mean_uncertainty_in_lesions": 0.05}
    cases = [row(0.9, 0.95, 0.97), row(0.85, 0.9, 0.95), row(0.7, 0.8, 0.9), row(0.6, 0.85, 0.6),
             row(0.9, 0.7, 0.95),  # a good mask whose samples agree, though its probabilities are soft
             row(0.2, 0.75, 0.5),  # a failure the estimated Dice hardly sees, the sample agreement does
             row(0.0, 1.0, 1.0, vol=0.0)]  # nothing found: only the lesion-load part of the rule catches it
    rule = fit_review_rule(cases, config)
    assert rule["caught_by_the_rest"] == 1
    for kind, fitted in rule["candidates"].items():
        assert fitted["unflagged_failures"] == 0, kind
    agreement = rule["candidates"]["sample_agreement"]
    assert agreement["max_case_uncertainty"] == pytest.approx((0.5 + 0.4) / 2)  # between 1 - 0.5 and 1 - 0.6
    assert rule["chosen"] == "sample_agreement" and agreement["aurc"] < rule["candidates"]["estimated_dice"]["aurc"]
    # the estimated Dice must flag everything from 0.25 up: two more successes flagged than the sample agreement
    assert rule["candidates"]["estimated_dice"]["flagged_successes"] > agreement["flagged_successes"]
    # when the rest of the rule catches every failure, the limit stays the config's
    caught = fit_review_rule([c for c in cases if c["dice"] >= 0.3 or c["predicted_volume_ml"] < 0.5], config)
    assert caught["candidates"]["estimated_dice"]["max_case_uncertainty"] == 0.4


def test_review_rule_is_fitted_on_the_models_own_scores(tmp_path):
    """``crossval rule --model samples_4`` fits the flag on OUTPUT_DIR/samples_4_score_<N>, not on the default's
    score_<N> beside it (rules 12 and 13 compare the two refits)."""
    from bundle.evaluation.crossval import crossval

    row = lambda dice, est: {  # noqa: E731
        "kind": "ms", "fold": 0, "dice": dice, "estimated_dice": est, "sample_agreement": est,
        "lesion_fraction_at_brain_edge": 0.0, "predicted_volume_ml": 10.0, "brain_volume_ml": 1400.0,
        "mean_uncertainty_in_lesions": 0.05}
    for prefix, cases in (("score", [row(0.9, 0.9), row(0.2, 0.9)]), ("samples_4_score", [row(0.9, 0.9), row(0.2, 0.3)])):
        os.makedirs(tmp_path / f"{prefix}_4000")
        (tmp_path / f"{prefix}_4000" / "metrics.json").write_text(json.dumps(
            {"iterations": 4000, "settings": {"folds": [0, 1, 2, 3]}, "mean": {}, "cases": cases}))
    crossval("rule", model="samples_4", output_dir=str(tmp_path), bundle_root=str(BUNDLE_ROOT))
    assert not (tmp_path / "score_4000" / "review_rule.json").exists()
    rule = json.loads((tmp_path / "samples_4_score_4000" / "review_rule.json").read_text())
    assert rule["iterations"] == 4000
    # the failure's own score (0.3 -> case score 0.7) is what the threshold sits below
    assert rule["candidates"]["estimated_dice"]["max_case_uncertainty"] == pytest.approx(0.4)
    with pytest.raises(SystemExit, match="samples_4_tissue_boxes_score"):
        crossval("rule", model="samples_4_tissue_boxes", output_dir=str(tmp_path), bundle_root=str(BUNDLE_ROOT))


def test_hybrid_folds_start_from_the_same_folds_diffusion_snapshot(tmp_path, cases, monkeypatch):
    import bundle.evaluation.crossval as cv

    base = tmp_path / "cv"
    for fold in range(4):
        (base / f"fold_{fold}").mkdir(parents=True)
        for n in (2000, 4000):
            (base / f"fold_{fold}" / f"net_model_iteration={n}.pt").write_bytes(b"")
    (base / "fold_3" / "net_model_iteration=4000.pt").unlink()  # fold 3 is behind
    commands = []
    monkeypatch.setattr(cv.subprocess, "run", lambda command, check: commands.append(command))
    assert cv.newest_common_snapshot(str(base), [0, 1, 2, 3]) == 2000
    cv.train_folds(cases, str(tmp_path / "hybrid"), str(BUNDLE_ROOT), folds=[1, 3],
                   config_file=cv.MODELS["hybrid"]["train"], until=500, init_dir=str(base), init_iterations=2000)
    assert len(commands) == 2
    for fold, command in zip((1, 3), commands):
        init = command[command.index("--init_weights") + 1]
        assert init == str(base / f"fold_{fold}" / "net_model_iteration=2000.pt")
        assert command[command.index("--stop_after_epoch") + 1] == "2"  # 500 iterations of 250
    # fold "all": the head on the shipped weights (the config's init_weights), for the config's 500 iterations
    cv.train_folds(cases, str(tmp_path / "hybrid"), str(BUNDLE_ROOT), folds=cv.ALL,
                   config_file=cv.MODELS["hybrid"]["train"], init_dir=str(base), init_iterations=2000)
    assert "--init_weights" not in commands[-1] and "--max_epochs" not in commands[-1]
    assert commands[-1][commands[-1].index("--output_dir") + 1] == str(tmp_path / "hybrid" / "fold_all")
    with pytest.raises(SystemExit, match="no weight snapshot at 4000"):
        cv.train_folds(cases, str(tmp_path / "hybrid2"), str(BUNDLE_ROOT), folds=[3],
                       config_file=cv.MODELS["hybrid"]["train"], init_dir=str(base), init_iterations=4000)


@pytest.mark.parametrize("model, inferer", [("hybrid", "DiffusionEnsembleInferer"), ("coarse", "CoarseHeadInferer")])
def test_hybrid_and_coarse_inference_overrides_build(model, inferer):
    from bundle.evaluation.crossval import MODELS
    from bundle.evaluation.evaluate import read_config

    parser = read_config(str(BUNDLE_ROOT), list(MODELS[model]["infer"]))
    parser["bundle_root"] = str(BUNDLE_ROOT)
    for key, value in MODELS[model]["infer_overrides"].items():
        parser[key] = value
    built = parser.get_parsed_content("inferer")
    assert type(built).__name__ == inferer
    assert parser.get_parsed_content("network").coarse_head is not None
    if model == "hybrid":
        assert built.roi_threshold == 0.1 and built.roi_margin == 4


@pytest.mark.parametrize("model", ["tissue_boxes", "samples_4", "samples_4_tissue_boxes", "tissue_boxes_steps_4"])
def test_same_weights_candidates_score_the_diffusion_snapshots_and_train_nothing(tmp_path, model):
    """``--model tissue_boxes`` / ``samples_4`` / ``samples_4_tissue_boxes`` / ``tissue_boxes_steps_4`` read the
    diffusion folds' snapshots with their inference settings (the inferer's attributes), into their own score
    folder; asking them to train is refused with one line."""
    from bundle.evaluation.crossval import MODELS, crossval
    from bundle.evaluation.evaluate import read_config

    preset = MODELS[model]
    assert preset["output_dir"] == MODELS["diffusion"]["output_dir"] and preset["score_prefix"] != "score"
    parser = read_config(str(BUNDLE_ROOT), list(preset["infer"]))
    parser["bundle_root"] = str(BUNDLE_ROOT)
    default = parser.get_parsed_content("inferer")
    for key, value in preset["infer_overrides"].items():
        parser[key] = value
    parser.parse()
    inferer = parser.get_parsed_content("inferer")
    attribute = {"num_steps": "num_inference_steps"}  # config key -> inferer attribute, where they differ
    for key, value in preset["infer_overrides"].items():
        name = attribute.get(key, key)
        assert getattr(inferer, name) == value != getattr(default, name), key
    with pytest.raises(SystemExit, match="trains nothing of its own"):
        crossval("train", model=model, output_dir=str(tmp_path), bundle_root=str(BUNDLE_ROOT))


def test_an_interrupted_scoring_resumes_without_scoring_a_finished_fold_again(tmp_path, cases, monkeypatch):
    import json

    import bundle.evaluation.crossval as cv
    import bundle.evaluation.evaluate as ev

    base = tmp_path / "cv"
    for fold in (0, 1):
        (base / f"fold_{fold}").mkdir(parents=True)
    (base / "fold_1" / "net_model_iteration=2000.pt").write_bytes(b"")  # fold 0's snapshot is gone, its score kept
    held = lambda fold: [cv.case_name(c["image"]) for c in cases if c["fold"] == fold]  # noqa: E731
    row = {"dice": 0.5, "hd95": 1.0, "lesion_f1": 0.5, "avd_ml": 1.0, "ece": 0.01, "estimated_dice": 0.6,
           "uncertainty_score": 0.4, "review_required": False}
    done = base / "score_2000" / "fold_0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"cases": [{"id": n, **row} for n in held(0)]}))
    scored = []

    def fake_evaluate(datalist, output_dir, **kwargs):
        scored.append(output_dir)
        return {"cases": [{"id": n, **row} for n in held(1)]}

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    result = cv.score_folds(cases, str(base), str(BUNDLE_ROOT), iterations=2000, folds=[0, 1])
    assert scored == [str(base / "score_2000" / "fold_1")]  # fold 0 was read, not run again
    assert len(result["cases"]) == len(held(0)) + len(held(1))


def test_faint_lesions_branch_from_the_diffusion_states_and_train_on_with_their_flags(tmp_path, monkeypatch):
    import bundle.evaluation.crossval as cv

    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE_ROOT / "configs", root / "configs")
    for fold in range(4):
        (root / "runs" / "cv" / f"fold_{fold}").mkdir(parents=True)
        for epoch in (2, 4):
            (root / "runs" / "cv" / f"fold_{fold}" / f"resume_checkpoint_epoch={epoch}.pt").write_text(str(epoch))
    own = root / "runs" / "cv_faint" / "fold_2" / "resume_checkpoint_epoch=6.pt"  # fold 2 has gone on already
    own.parent.mkdir(parents=True)
    own.write_text("6")
    commands = []
    monkeypatch.setattr(cv.subprocess, "run", lambda command, check: commands.append(command))
    cv.crossval("train", model="faint_lesions", bundle_root=str(root), until=4000,
                folds_file=str(BUNDLE_ROOT / cv.FOLDS_FILE))
    assert [c[c.index("--resume_from") + 1] for c in commands] == [
        str(root / "runs" / "cv_faint" / f"fold_{k}" / f"resume_checkpoint_epoch={6 if k == 2 else 4}.pt")
        for k in range(4)]
    assert (root / "runs" / "cv_faint" / "fold_0" / "resume_checkpoint_epoch=4.pt").read_text() == "4"
    for command in commands:
        flags = command[command.index("--stop_after_epoch"):]
        assert flags == ["--stop_after_epoch", "8", "--faint_lesion_prob", "0.3",
                         "--train#augmentation#0#ratio_range", "[1.15,1.7]"]
    (root / "runs" / "cv" / "fold_1" / "resume_checkpoint_epoch=4.pt").unlink()
    shutil.rmtree(root / "runs" / "cv_faint" / "fold_1")
    with pytest.raises(SystemExit, match="needs the training state at 2000"):
        cv.crossval("train", model="faint_lesions", bundle_root=str(root), folds=1,
                    folds_file=str(BUNDLE_ROOT / cv.FOLDS_FILE))


def test_wide_model_trains_and_segments_the_same_wider_network():
    import fire

    from bundle.evaluation.crossval import MODELS, WIDE_NETWORK
    from bundle.evaluation.evaluate import read_config

    preset = MODELS["wide"]
    flags = preset["train_overrides"].split()
    parsed = {flags[i][2:]: fire.parser.DefaultParseValue(flags[i + 1]) for i in range(0, len(flags), 2)}
    assert parsed == {**WIDE_NETWORK, "snapshot_iterations": 500}  # as `monai.bundle run` (fire) reads the flags
    networks = []
    for configs, settings in ((preset["train"], parsed), (preset["infer"], preset["infer_overrides"])):
        parser = read_config(str(BUNDLE_ROOT), list(configs))
        for key, value in settings.items():
            parser[key] = value
        parser["device"] = "$torch.device('cpu')"
        networks.append(parser.get_parsed_content("network_def"))
    trained, served = networks
    served.load_state_dict(trained.state_dict())  # strict: same layers, same shapes
    assert trained.image_encoder.model[0].conv.unit0.conv.out_channels == 24
    assert sum(p.numel() for p in trained.parameters()) > 1.5 * 1e6  # the shipped width has 0.75 M


def test_the_weights_to_ship_train_for_rule_3s_length_unless_told_otherwise(tmp_path, cases, monkeypatch):
    import bundle.evaluation.crossval as cv

    commands = []
    monkeypatch.setattr(cv.subprocess, "run", lambda command, check: commands.append(command))
    cv.train_folds(cases, str(tmp_path / "cv"), str(BUNDLE_ROOT), folds=cv.ALL, until=4000)
    cv.train_folds(cases, str(tmp_path / "cv"), str(BUNDLE_ROOT), folds=cv.ALL, overrides="--max_epochs 60")
    cv.train_folds(cases, str(tmp_path / "cv"), str(BUNDLE_ROOT), folds=[1], until=4000)
    flags = [c[c.index("--stop_after_epoch"):] for c in commands]
    # 20,000 iterations of 500: the cosine schedule spans the whole run; --until only stops it early (resumably)
    assert flags[0] == ["--stop_after_epoch", "8", "--max_epochs", "40"]
    assert flags[1] == ["--stop_after_epoch", "0", "--max_epochs", "60"]
    assert flags[2] == ["--stop_after_epoch", "8"]  # cross-validation folds keep the config's length
    assert commands[0][commands[0].index("--output_dir") + 1] == str(tmp_path / "cv" / "fold_all")
