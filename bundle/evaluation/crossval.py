"""Patient-level cross-validation over every labelled real case: ``python -m bundle crossval <train|score|all>``.

``configs/crossval.json`` lists each case with its patient, kind ("ms" or "glioma") and fold; all scans of a patient
share a fold (MS: one patient per fold, i.e. leave-one-patient-out over the 4 MS patients; gliomas: 6 per fold).
For fold k the training list is every case of the other folds, MS scans repeated ``ms_repeats`` times so that about
as many MS as glioma volumes are drawn; the held-out list is fold k.

* ``train``: trains each fold with ``configs/train.yaml`` + ``configs/crossval_train.yaml`` (other models:
  ``MODELS``) into ``OUTPUT_DIR/fold_k``, one process per fold, resumed from its newest training state, so the
  command can be run again after an interruption; the weights are kept every ``snapshot_iterations`` iterations
  for the learning curve (``net_*iteration=<N>.pt``).
* ``score``: segments each fold's held-out cases with that fold's weights (``--iterations``: which snapshot; 0 =
  the newest common one) through the inference config, scores them with ``python -m bundle evaluate``'s metrics,
  and pools the out-of-fold predictions: ``OUTPUT_DIR/score_<iterations>/metrics.json`` and ``metrics.md``, one
  table per kind. No choice is made on a held-out fold: the weights are the snapshot's, not the best on it.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import torch
from monai.bundle import ConfigParser

from bundle.evaluation.evaluate import read_config
from bundle.inputs.data import case_name
from bundle.outputs.files import write_json_atomic, write_text_atomic

FOLDS_FILE = "configs/crossval.json"
# the 1.5x wider network of docs/results.md rule 9 (the shipped width: 16; 16, 32, 64)
WIDE_NETWORK = {"network_def#feature_channels": 24, "network_def#encoder_channels": [24, 48, 96],
                "network_def#denoiser_channels": [24, 48, 96]}


def config_flags(settings: dict) -> str:
    """``--key value`` flags for ``monai.bundle run`` from config ``settings`` (values as compact JSON)."""
    return " ".join(f"--{key} {json.dumps(value, separators=(',', ':'))}" for key, value in settings.items())


# the configs each model is trained and segmented with; ``infer_overrides``: inference keys set for its scoring
MODELS = {
    "diffusion": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml"),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {},
        "output_dir": "runs/cv",
        "compare": ("baseline",),  # its learning curve is drawn beside this one's
    },
    # the speed candidate: the diffusion folds' own snapshots, each slice tiled only over its tissue box
    # (``tile_box``; scored into OUTPUT_DIR/tissue_boxes_score_<N>; trains nothing of its own)
    "tissue_boxes": {
        "train": (),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {"tile_box": 4},
        "output_dir": "runs/cv",
        "score_prefix": "tissue_boxes_score",
    },
    # the speed candidate of docs/results.md rule 12: the diffusion folds' own snapshots sampled with 4 masks, not 8
    # (scored into OUTPUT_DIR/samples_4_score_<N>; trains nothing of its own)
    "samples_4": {
        "train": (),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {"num_samples": 4},
        "output_dir": "runs/cv",
        "score_prefix": "samples_4_score",
    },
    # rule 13: both speed settings together (scored into OUTPUT_DIR/samples_4_tissue_boxes_score_<N>)
    "samples_4_tissue_boxes": {
        "train": (),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {"num_samples": 4, "tile_box": 4},
        "output_dir": "runs/cv",
        "score_prefix": "samples_4_tissue_boxes_score",
    },
    # rule 16: 4 DDIM steps (not 5) over tissue boxes, N = 8 (scored into OUTPUT_DIR/tissue_boxes_steps_4_score_<N>)
    "tissue_boxes_steps_4": {
        "train": (),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {"num_steps": 4, "tile_box": 4},
        "output_dir": "runs/cv",
        "score_prefix": "tissue_boxes_steps_4_score",
    },
    "baseline": {
        "train": ("configs/train.yaml", "configs/baseline_train.yaml", "configs/crossval_train.yaml"),
        "infer": ("configs/inference.yaml", "configs/baseline_inference.yaml"),
        "infer_overrides": {"intensity_method": "mode"},  # trained with configs/train.yaml's scale
        "output_dir": "runs/cv_baseline",
    },
    # the coarse-to-fine candidate: a coarse head trained on each fold's diffusion weights (``--base_iterations``),
    # the diffusion sampled only in its region of interest
    "hybrid": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml", "configs/coarse_head.yaml"),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {"network_def#coarse_head": True, "roi_threshold": 0.1, "roi_margin": 4},
        "output_dir": "runs/cv_hybrid",
        "init_from": "diffusion",
    },
    # the same weights' coarse head alone, deterministic (scored into OUTPUT_DIR/coarse_score_<N>)
    "coarse": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml", "configs/coarse_head.yaml"),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {
            "network_def#coarse_head": True, "num_samples": 1, "num_steps": 0,
            "inferer": {"_target_": "bundle.model.inferer.CoarseHeadInferer", "context_slices": "@context_slices",
                        "slice_batch_size": "@slice_batch_size", "tile_size": "@tile_size",
                        "mirror": "$bundle.flags.as_bool(@mirror, 'mirror')"},
        },
        "output_dir": "runs/cv_hybrid",
        "init_from": "diffusion",
        "score_prefix": "coarse_score",
    },
    # the faint-lesion candidate (docs/results.md rule 7): each diffusion fold's training state at ``branch_at``
    # iterations copied and trained on with fainter labelled and synthetic lesions, everything else identical
    "faint_lesions": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml"),
        "train_overrides": "--faint_lesion_prob 0.3 --train#augmentation#0#ratio_range [1.15,1.7]",
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {},
        "output_dir": "runs/cv_faint",
        "branch_from": "diffusion",
        "branch_at": 2000,
    },
    # lesion-balanced crops (docs/results.md rule 17): branched like faint_lesions, every lesion an equally likely
    # patch centre whatever its size
    "balanced_crops": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml"),
        "train_overrides": "--lesion_balanced_crops true",
        "infer": ("configs/inference.yaml",),
        "infer_overrides": {},
        "output_dir": "runs/cv_balanced",
        "branch_from": "diffusion",
        "branch_at": 2000,
    },
    # the wider network (docs/results.md rule 9), from scratch, weights kept every 500 iterations so that it can be
    # scored at the iterations that cost the CPU of the default's snapshots
    "wide": {
        "train": ("configs/train.yaml", "configs/crossval_train.yaml"),
        "train_overrides": config_flags({**WIDE_NETWORK, "snapshot_iterations": 500}),
        "infer": ("configs/inference.yaml",),
        "infer_overrides": dict(WIDE_NETWORK),
        "output_dir": "runs/cv_wide",
    },
}
KINDS = ("ms", "glioma")
ALL = "all"  # the "fold" trained on every case but the embedded sample: the weights to ship
# the patient of the embedded sample (docs/sample, configs/inference.yaml sample_image), left out of the weights to
# ship so that the README's first command shows a scan they never saw
SAMPLE_PATIENT = "BRATS_474"
SHIP_ITERATIONS = 20_000  # their length (docs/results.md rule 3), the cosine learning rate spread over all of it


def read_folds(folds_file: str) -> list[dict]:
    """The cases of ``folds_file`` with absolute paths; checks that every patient lies in one fold."""
    with open(folds_file) as f:
        cases = json.load(f)["cases"]
    base = os.path.dirname(os.path.abspath(folds_file))
    fold_of: dict[str, int] = {}
    for case in cases:
        for key in ("image", "label"):
            case[key] = os.path.normpath(os.path.join(base, case[key]))
        if fold_of.setdefault(case["patient"], case["fold"]) != case["fold"]:
            raise ValueError(f"{folds_file}: patient {case['patient']} is in folds {fold_of[case['patient']]} "
                             f"and {case['fold']}")
        if case["kind"] not in KINDS:
            raise ValueError(f"{folds_file}: {case['image']}: kind must be one of {KINDS}, got {case['kind']!r}")
    return cases


def fold_datalist(cases: list[dict], fold: int | str, ms_repeats: int = 3) -> dict:
    """MSD-style datalist of ``fold``: training = the other folds (MS scans ``ms_repeats`` times), validation and
    testing = the fold's own cases. ``fold`` "all": every case but the embedded sample's for training (the shipped
    weights), the MS cases as validation and testing (not held out)."""
    train = [c for c in cases if c["fold"] != fold and not (fold == ALL and c["patient"] == SAMPLE_PATIENT)]
    held = [c for c in cases if c["fold"] == fold or (fold == ALL and c["kind"] == "ms")]
    pair = lambda c: {"image": c["image"], "label": c["label"]}  # noqa: E731
    training = [pair(c) for c in train for _ in range(ms_repeats if c["kind"] == "ms" else 1)]
    return {"description": f"cross-validation fold {fold}", "training": training,
            "validation": [pair(c) for c in held], "testing": [pair(c) for c in held]}


def snapshots(fold_dir: str) -> dict[int, str]:
    """{iterations: path} of the weight snapshots ``net_*iteration=<iterations>.pt`` in ``fold_dir``."""
    found = {}
    for path in glob.glob(os.path.join(fold_dir, "net_*.pt")):
        match = re.fullmatch(r"net_.*iteration=(\d+)\.pt", os.path.basename(path))
        if match:
            found[int(match.group(1))] = path
    return found


def state_epoch(path: str) -> int:
    """The epoch of a training state ``resume_checkpoint_epoch=<epoch>.pt``."""
    return int(re.findall(r"(\d+)\.pt$", path)[0])


def newest_state(fold_dir: str) -> str:
    """The newest full training state in ``fold_dir`` ("" if none), to resume from."""
    states = glob.glob(os.path.join(fold_dir, "resume_checkpoint_*.pt"))
    return max(states, key=state_epoch) if states else ""


def seconds_per_iteration(fold_dir: str, tag: str = "train_loss") -> float | None:
    """Median wall-clock seconds between consecutive training iterations in ``fold_dir``'s TensorBoard logs (one
    event file per training process; the median ignores pauses and restarts); None without logs. The CPU budget a
    snapshot cost is about this times its iterations, on the machine and load of the run."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    gaps = []
    for path in glob.glob(os.path.join(fold_dir, "events.out.tfevents.*")):
        times = [event.wall_time for event in EventFileLoader(path).Load()
                 if event.HasField("summary") and any(v.tag == tag for v in event.summary.value)]
        gaps += [b - a for a, b in zip(times, times[1:])]
    return round(sorted(gaps)[len(gaps) // 2], 3) if gaps else None


def branch_states(base_dir: str, output_dir: str, folds: list, iterations: int, epoch_length: int) -> None:
    """Copy each fold's training state at ``iterations`` from ``base_dir`` into ``output_dir`` (a branch of the same
    run, trained on with other settings), unless that fold already has a state of its own there."""
    for fold in folds:
        target = os.path.join(output_dir, f"fold_{fold}")
        if newest_state(target):
            continue
        if iterations % epoch_length:
            raise SystemExit(f"error: {iterations} iterations is not a multiple of the epoch length {epoch_length}")
        name = f"resume_checkpoint_epoch={iterations // epoch_length}.pt"
        source = os.path.join(base_dir, f"fold_{fold}", name)
        if not os.path.isfile(source):
            raise SystemExit(f"error: {source} not found: the branch needs the training state at {iterations} "
                             f"iterations")
        os.makedirs(target, exist_ok=True)
        shutil.copy2(source, os.path.join(target, name))
        print(f"fold {fold}: branched from {source}", flush=True)


def newest_common_snapshot(output_dir: str, folds: list) -> int:
    """The largest iteration count at which every fold of ``folds`` in ``output_dir`` has a weight snapshot."""
    common = set.intersection(*[set(snapshots(os.path.join(output_dir, f"fold_{k}"))) for k in folds])
    if not common:
        raise SystemExit(f"error: no weight snapshot common to folds {folds} in {output_dir}")
    return max(common)


def folds_of(cases: list[dict], folds) -> list:
    """The folds to work on: ``folds`` (a fold number, a list of them, or "all": the weights to ship)
    or, when not given, every cross-validation fold."""
    every = sorted({c["fold"] for c in cases})
    if folds is None or folds == "":
        return every
    if folds == ALL:
        return [ALL]
    if isinstance(folds, str):
        folds = json.loads(folds)
    chosen = [int(folds)] if isinstance(folds, int) else [int(f) for f in folds]
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        raise SystemExit(f"error: no fold {unknown} in the folds file (folds: {every})")
    return chosen


def train_folds(cases: list[dict], output_dir: str, bundle_root: str, folds=None, ms_repeats: int = 3,
                config_file: list[str] | tuple[str, ...] = MODELS["diffusion"]["train"], overrides: str = "",
                until: int = 0, init_dir: str = "", init_iterations: int = 0) -> None:
    """Train (or resume) each fold in its own process, up to ``until`` iterations (0: the config's whole run);
    ``overrides``: extra ``--key value`` flags for the config; ``init_dir``: start each fold from the same fold's
    weight snapshot at ``init_iterations`` there (``--init_weights``). A config that trains on given weights (its own
    ``init_weights``: a coarse head) trains fold "all" from those (the shipped ``models/model.pt``) for its own
    length."""
    configs = [f if os.path.isabs(f) else os.path.join(bundle_root, f) for f in config_file]
    config = read_config(bundle_root, configs)
    epoch_length = int(config["epoch_length"])
    on_given_weights = "init_weights" in config
    if until % epoch_length:
        raise SystemExit(f"error: --until {until} is not a multiple of the epoch length {epoch_length}")
    for fold in folds_of(cases, folds):
        fold_dir = os.path.join(output_dir, f"fold_{fold}")
        os.makedirs(fold_dir, exist_ok=True)
        datalist = os.path.join(fold_dir, "datalist.json")
        write_json_atomic(datalist, fold_datalist(cases, fold, ms_repeats))
        state = newest_state(fold_dir)
        if until and state and state_epoch(state) * epoch_length >= until:
            print(f"fold {fold}: already at {state_epoch(state) * epoch_length} iterations", flush=True)
            continue
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", repr(configs),
                   "--bundle_root", bundle_root, "--datalist", datalist, "--output_dir", fold_dir,
                   "--ckpt_dir", fold_dir]
        if state:
            command += ["--resume_from", state]
        if init_dir and fold != ALL:
            init = snapshots(os.path.join(init_dir, f"fold_{fold}")).get(init_iterations)
            if init is None:
                raise SystemExit(
                    f"error: {init_dir}/fold_{fold} has no weight snapshot at {init_iterations} iterations"
                )
            command += ["--init_weights", init]
        command += ["--stop_after_epoch", str(until // epoch_length)]
        if fold == ALL and not on_given_weights and "--max_epochs" not in overrides.split():
            command += ["--max_epochs", str(SHIP_ITERATIONS // epoch_length)]
        command += overrides.split()
        print(f"fold {fold}: {'resuming from ' + os.path.basename(state) if state else 'training'} -> {fold_dir}",
              flush=True)
        subprocess.run(command, check=True)


def pooled_summary(results: list[dict]) -> dict:
    """``bundle.evaluation.evaluate.summarise`` over all pooled cases and per kind."""
    from bundle.evaluation.evaluate import summarise

    summary = {"all": summarise(results)}
    for kind in KINDS:
        chosen = [r for r in results if r["kind"] == kind]
        if chosen:
            summary[kind] = summarise(chosen)
    return summary


def score_folds(cases: list[dict], output_dir: str, bundle_root: str, iterations: int = 0, folds=None,
                samples: int = 0, steps: int = 0, config_file=MODELS["diffusion"]["infer"],
                infer_overrides: dict | None = None, score_prefix: str = "score") -> dict:
    """Segment each fold's held-out cases with its snapshot and pool the scores (module docstring); a fold already
    scored (its ``metrics.json`` written) is read, not run again, so an interrupted scoring resumes;
    ``infer_overrides``: inference config keys to set (written to ``score_<N>/overrides.yaml``, merged last)."""
    from bundle.evaluation.evaluate import evaluate

    chosen = folds_of(cases, folds)
    if ALL in chosen:
        raise SystemExit("error: the model trained on every case has no held-out cases to score")
    iterations = iterations or newest_common_snapshot(output_dir, chosen)
    score_dir = os.path.join(output_dir, f"{score_prefix}_{iterations}")
    os.makedirs(score_dir, exist_ok=True)
    config_file = list(config_file)
    if infer_overrides:
        config_file.append(os.path.join(score_dir, "overrides.yaml"))
        ConfigParser.export_config_file(dict(infer_overrides), config_file[-1], fmt="yaml")
    results = []
    for fold in chosen:
        fold_dir = os.path.join(output_dir, f"fold_{fold}")
        fold_metrics = os.path.join(score_dir, f"fold_{fold}", "metrics.json")
        if os.path.isfile(fold_metrics):  # scored before an interruption: evaluate wrote it last, so it is complete
            with open(fold_metrics) as f:  # (its snapshot may be gone: models/in_training keeps scores, not snapshots)
                fold_result = json.load(f)
            print(f"fold {fold}: already scored ({fold_metrics})", flush=True)
        else:
            ckpt = snapshots(fold_dir).get(iterations)
            if ckpt is None:
                raise SystemExit(f"error: {fold_dir} has no weight snapshot at {iterations} iterations")
            datalist = os.path.join(score_dir, f"fold_{fold}_heldout.json")
            write_json_atomic(datalist, fold_datalist(cases, fold))
            fold_result = evaluate(datalist, os.path.join(score_dir, f"fold_{fold}"), samples=samples, steps=steps,
                                   bundle_root=bundle_root, config_file=config_file, ckpt=ckpt, worst=0)
        held = {case_name(c["image"]): c for c in cases if c["fold"] == fold}
        for case in fold_result["cases"]:
            source = held[case["id"]]
            results.append({**case, "fold": fold, "kind": source["kind"], "patient": source["patient"]})
    timing = {str(fold): seconds_per_iteration(os.path.join(output_dir, f"fold_{fold}")) for fold in chosen}
    result = {"iterations": iterations, "mean": pooled_summary(results), "cases": results,
              "settings": {"folds": chosen, "samples": samples, "steps": steps, "config_file": config_file},
              "train_seconds_per_iteration": timing}
    write_json_atomic(os.path.join(score_dir, "metrics.json"), result)
    write_text_atomic(os.path.join(score_dir, "metrics.md"), pooled_markdown(result))
    return result


def pooled_markdown(result: dict) -> str:
    """One table per kind: cases, then the mean."""
    from bundle.evaluation.evaluate import FAILURE_DICE, METRICS, MISSED_FAILURE_DICE

    cols = [*METRICS, "uncertainty_score", "review_required"]
    out = [f"Pooled out-of-fold predictions, snapshot at {result['iterations']} iterations\n"]
    for kind in KINDS:
        chosen = [c for c in result["cases"] if c["kind"] == kind]
        if not chosen:
            continue
        out += [f"\n## {kind}\n", "| case | fold | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
        out += [f"| {c['id']} | {c['fold']} | " + " | ".join(str(c.get(k)) for k in cols) + " |" for c in chosen]
        mean = result["mean"][kind]
        out.append("| **mean** | | " + " | ".join(str(mean.get(k, "")) for k in METRICS) + " | | |")
        out.append(f"\nfailure AUROC (Dice < {FAILURE_DICE}): {mean['failure_auroc']}; AURC: {mean['aurc']}; "
                   f"cases with Dice < {MISSED_FAILURE_DICE} not flagged: {mean['unflagged_failures']}")
    timing = {k: v for k, v in result.get("train_seconds_per_iteration", {}).items() if v is not None}
    if timing:
        out.append("\ntraining, median seconds per iteration (fold: s): "
                   + ", ".join(f"{k}: {v}" for k, v in timing.items()))
    return "\n".join(out) + "\n"


def fit_review_rule(cases: list[dict], config: dict, tie: float = 0.005) -> dict:
    """The review rule fitted on pooled out-of-fold cases (docs/results.md, "Review flag"): for each ``case_score``
    candidate its AURC, failure AUROC (Dice < 0.5) and the threshold that leaves no case with Dice < 0.3 unflagged
    (midway between the lowest score of such a case not caught by the rest of the rule and the next lower case
    score); the candidate with the lowest AURC is chosen (one within ``tie`` loses to the one listed earlier).
    When every such case is caught by the rest of the rule, the limit stays the config's ``max_case_uncertainty``.
    ``config``: the inference config's ``max_lesion_uncertainty``, ``max_case_uncertainty``,
    ``lesion_volume_range_ml``, ``brain_volume_range_ml``."""
    from monai.metrics import compute_roc_auc

    from bundle.evaluation.evaluate import FAILURE_DICE, MISSED_FAILURE_DICE, aurc
    from bundle.outputs.report import CASE_SCORES, case_score, implausible_case

    caught = [
        implausible_case(c.get("mean_uncertainty_in_lesions") or 0.0, c.get("predicted_volume_ml") or 0.0,
                         c.get("brain_volume_ml"), config["max_lesion_uncertainty"],
                         config["lesion_volume_range_ml"], config["brain_volume_range_ml"])
        for c in cases
    ]
    dice = [c["dice"] for c in cases]
    candidates = {}
    for kind in CASE_SCORES:
        scores = [case_score(c.get("estimated_dice"), c.get("sample_agreement"),
                             c.get("lesion_fraction_at_brain_edge"), kind) for c in cases]
        if any(v is None for v in scores):
            continue
        missed = [v for v, d, k in zip(scores, dice, caught) if d < MISSED_FAILURE_DICE and not k]
        if missed:
            below = [v for v in scores if v < min(missed)]
            threshold = (min(missed) + max(below)) / 2 if below else None  # None: only flagging everything helps
        else:
            threshold = config["max_case_uncertainty"]  # nothing to catch: the limit stays as it is
        failures = [d < FAILURE_DICE for d in dice]
        auroc = None
        if 0 < sum(failures) < len(failures):
            auroc = float(compute_roc_auc(torch.tensor(scores), torch.tensor(failures, dtype=torch.float)))
        flagged = [k or (threshold is None) or v > threshold for v, k in zip(scores, caught)]
        candidates[kind] = {
            "aurc": round(aurc(scores, dice), 4), "failure_auroc": None if auroc is None else round(auroc, 4),
            "max_case_uncertainty": None if threshold is None else round(threshold, 4),
            "coverage": round(1 - sum(flagged) / len(flagged), 4),
            "flagged_successes": sum(f and d >= FAILURE_DICE for f, d in zip(flagged, dice)),
            "unflagged_failures": sum(not f and d < MISSED_FAILURE_DICE for f, d in zip(flagged, dice)),
        }
    best = min(candidates[k]["aurc"] for k in candidates)
    chosen = next(k for k in CASE_SCORES if k in candidates and candidates[k]["aurc"] <= best + tie)
    return {"chosen": chosen, "candidates": candidates, "cases": len(cases), "caught_by_the_rest": sum(caught)}


def review_settings(bundle_root: str, config_files=("configs/inference.yaml",)) -> dict:
    """The inference config's review-rule settings that ``fit_review_rule`` reads."""
    config = read_config(bundle_root, list(config_files))
    keys = ("max_lesion_uncertainty", "max_case_uncertainty", "lesion_volume_range_ml", "brain_volume_range_ml")
    return {key: config[key] for key in keys}


def flagged_cases(review_rule: dict) -> int:
    """How many of its cases a fitted review rule (``fit_review_rule``'s result) flags with its chosen case score."""
    return round((1 - review_rule["candidates"][review_rule["chosen"]]["coverage"]) * review_rule["cases"])


CURVES = (("ms", "dice", "#c00"), ("ms", "lesion_f1", "#f80"), ("glioma", "dice", "#06c"))


def learning_curve(output_dir: str, folds: list | None = None, prefix: str = "score") -> list[dict]:
    """[{"iterations", "ms", "glioma", "all"}, ...] from every ``<prefix>_<N>/metrics.json`` in ``output_dir``; with
    ``folds``, only the snapshots scored on all of them (not one fold's score while the others are still training)."""
    points = []
    for path in glob.glob(os.path.join(output_dir, f"{prefix}_[0-9]*", "metrics.json")):
        with open(path) as f:
            result = json.load(f)
        if folds is not None and sorted(result.get("settings", {}).get("folds", [])) != sorted(folds):
            continue
        points.append({"iterations": result["iterations"], **result["mean"]})
    return sorted(points, key=lambda p: p["iterations"])


def learning_curve_svg(series: dict[str, list[dict]], title: str) -> str:
    """Pooled out-of-fold MS Dice, MS lesion F1 and glioma Dice against training iterations, as an SVG line chart:
    ``series`` {model: learning_curve points}, the first model drawn solid, the others dashed."""
    left, top, width, height = 60, 30, 440, 200
    every = [p for points in series.values() for p in points]
    xmax = max(p["iterations"] for p in every) * 1.05 or 1
    sx = lambda x: left + width * x / xmax  # noqa: E731
    sy = lambda y: top + height * (1 - y)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="680" height="280" font-family="sans-serif" '
             f'font-size="11"><rect width="680" height="280" fill="white"/>'
             f'<text x="{left + width / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.2f}</text><line x1="{left}" '
                     f'x2="{left + width}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>')
    for n in sorted({p["iterations"] for p in every}):
        parts.append(f'<text x="{sx(n):.1f}" y="{top + height + 16}" text-anchor="middle">{n}</text>')
    row = 0
    for m, (model, points) in enumerate(series.items()):
        dash = "" if m == 0 else ' stroke-dasharray="5,3"'
        for kind, metric, colour in CURVES:
            xy = [(sx(p["iterations"]), sy(p[kind][metric])) for p in points
                  if p.get(kind) and p[kind].get(metric) is not None]
            if not xy:
                continue
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in xy]
            parts.append(f'<line x1="{left + width + 12}" x2="{left + width + 32}" y1="{top + 16 + 16 * row}" '
                         f'y2="{top + 16 + 16 * row}" stroke="{colour}" stroke-width="2"{dash}/><text '
                         f'x="{left + width + 36}" y="{top + 20 + 16 * row}" fill="{colour}">{model} {kind} {metric}'
                         f'</text>')
            row += 1
    parts.append(f'<text x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">training iterations '
                 f'(batch 16)</text></svg>\n')
    return "".join(parts)


def crossval(
    stage: str = "all",
    model: str = "diffusion",
    output_dir: str = "",
    folds_file: str = FOLDS_FILE,
    folds=None,
    bundle_root: str = ".",
    ms_repeats: int = 3,
    iterations: int = 0,
    samples: int = 0,
    steps: int = 0,
    overrides: str = "",
    until: int = 0,
    base_iterations: int = 0,
) -> dict | None:
    """``train`` the folds (resumable), ``score`` their pooled out-of-fold predictions, ``all`` (both), draw the
    ``curve`` (score and curve also write OUTPUT_DIR/learning_curve.json and .svg from every scored snapshot), or
    fit the review ``rule`` on a scored snapshot (``fit_review_rule``; OUTPUT_DIR/score_<N>/review_rule.json).

    ``--folds 2`` or ``--folds "[0,1]"``: only those folds; ``--folds all``: train on every case but the embedded
    sample's for ``SHIP_ITERATIONS`` (the weights to ship, ``OUTPUT_DIR/fold_all``; longer: ``--overrides
    "--max_epochs 60"``).
    ``--overrides "--max_epochs 10"``: training config flags. ``--until N``: train each fold only up to N
    iterations (all folds advance in turn; run again with a larger N to go on). ``--iterations N``: score the
    snapshot at N iterations (0: the newest all folds have).
    ``--samples``/``--steps`` 0: the inference config's N and K. ``--model baseline``: the deterministic U-Net
    baseline on the same folds, data and augmentation; ``--model hybrid``: a coarse head trained on each fold's
    diffusion snapshot at ``--base_iterations`` (0: the newest all folds have; ``--folds all``: on the shipped
    weights, for the benchmark), the diffusion sampled only in its region of interest; ``--model coarse``: that
    head alone; ``--model tissue_boxes``: the diffusion snapshots scored with tiles over each slice's tissue box;
    ``--model faint_lesions``: the diffusion folds' states at 2,000 iterations trained on with fainter lesions;
    ``--model balanced_crops``: the same states trained on with lesion-balanced patch centres;
    ``--model wide``: a 1.5x wider network (``MODELS``); ``--output_dir`` defaults to the model's.
    """
    if stage not in ("train", "score", "all", "curve", "rule"):
        raise SystemExit(f"error: stage must be train, score, all, curve or rule, got {stage!r}")
    if model not in MODELS:
        raise SystemExit(f"error: model must be one of {sorted(MODELS)}, got {model!r}")
    preset = MODELS[model]
    bundle_root = os.path.abspath(bundle_root)
    folds_file = folds_file if os.path.isabs(folds_file) else os.path.join(bundle_root, folds_file)
    cases = read_folds(folds_file)
    output_dir = os.path.abspath(output_dir or os.path.join(bundle_root, preset["output_dir"]))
    if stage in ("train", "all") and not preset["train"]:
        raise SystemExit(f"error: --model {model} trains nothing of its own; score it on {preset['output_dir']}")
    if stage in ("train", "all"):
        init_dir, init_iterations = "", 0
        if preset.get("init_from") and folds != ALL:  # fold "all" starts from the shipped weights
            init_dir = os.path.join(bundle_root, MODELS[preset["init_from"]]["output_dir"])
            init_iterations = base_iterations or newest_common_snapshot(init_dir, folds_of(cases, folds))
        if preset.get("branch_from"):
            epoch_length = int(read_config(bundle_root, list(preset["train"]))["epoch_length"])
            branch_states(os.path.join(bundle_root, MODELS[preset["branch_from"]]["output_dir"]), output_dir,
                          folds_of(cases, folds), preset["branch_at"], epoch_length)
        overrides = " ".join(filter(None, [preset.get("train_overrides", ""), overrides]))
        train_folds(cases, output_dir, bundle_root, folds, ms_repeats, preset["train"], overrides, until,
                    init_dir, init_iterations)
    result = None
    every_fold = folds_of(cases, None)
    prefix = preset.get("score_prefix", "score")  # the model's own scores: OUTPUT_DIR/<prefix>_<N>
    if stage == "rule":
        points = learning_curve(output_dir, every_fold, prefix)
        if not points:
            raise SystemExit(f"error: no snapshot scored on every fold in {output_dir}/{prefix}_<N>")
        n = iterations or points[-1]["iterations"]
        with open(os.path.join(output_dir, f"{prefix}_{n}", "metrics.json")) as f:
            scored = json.load(f)["cases"]
        result = fit_review_rule(scored, review_settings(bundle_root, preset["infer"]))
        result["iterations"] = n
        write_json_atomic(os.path.join(output_dir, f"{prefix}_{n}", "review_rule.json"), result)
        print(json.dumps(result, indent=1))
        return None
    if stage in ("score", "all"):
        result = score_folds(cases, output_dir, bundle_root, iterations, folds, samples, steps, preset["infer"],
                             preset["infer_overrides"], prefix)
    points = learning_curve(output_dir, every_fold)
    if points and stage != "train" and prefix == "score":
        write_json_atomic(os.path.join(output_dir, "learning_curve.json"), points)
        series = {model: points}
        for other in preset.get("compare", ()):  # drawn dashed beside it, where scored
            other_points = learning_curve(os.path.join(bundle_root, MODELS[other]["output_dir"]), every_fold)
            if other_points:
                series[other] = other_points
        title = f"{' vs '.join(series)}: pooled out-of-fold score against training iterations"
        write_text_atomic(os.path.join(output_dir, "learning_curve.svg"), learning_curve_svg(series, title))
    return result
