"""The developer queue's two side-by-side cv lanes (``crossval_queue.sh cv2``): every fold of every step is trained
and scored exactly once, never by both lanes at the same time, and both lanes do work. The bundle's commands are
replaced by a stand-in that logs each call and writes the score files the queue checks for."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ROOT / "bundle" / "dev" / "scripts" / "crossval_queue.sh"

FAKE = r'''#!{python}
import json, os, sys, time
args = sys.argv[1:]
if args[0] == "-c":
    exec(args[1]); sys.exit(0)
if args[1] == "bundle.dev":
    sys.exit(0)
command = args[3]
opt = dict(zip(args[4::2], args[5::2]))
model, out = opt["--model"], opt.get("--output_dir", "runs/cv_faint")
fold = opt.get("--folds", "pooled")
start = time.time()
time.sleep(1.0 if (command, model, fold) == ("train", "diffusion", "3") else 0.05)  # one slow fold
if command == "score":
    n = opt["--iterations"]
    prefix = "score" if model in ("diffusion", "faint_lesions", "balanced_crops", "baseline", "wide") else model + "_score"
    target = os.path.join(out, f"{{prefix}}_{{n}}", "" if fold == "pooled" else f"fold_{{fold}}")
    os.makedirs(target, exist_ok=True)
    folds = [0, 1, 2, 3] if fold == "pooled" else [int(fold)]
    json.dump({{"settings": {{"folds": folds}}}}, open(os.path.join(target, "metrics.json"), "w"))
with open("calls.log", "a") as log:
    log.write(json.dumps([command, model, out, fold, opt.get("--iterations", opt.get("--until")),
                          os.environ.get("OMP_NUM_THREADS"), os.getppid(), start, time.time()]) + "\n")
'''


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed")
def test_two_lanes_share_the_folds(tmp_path):
    script = tmp_path / "bundle" / "dev" / "scripts" / "crossval_queue.sh"
    script.parent.mkdir(parents=True)
    shutil.copy(QUEUE, script)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(script), "cv2"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.log").read_text().splitlines()]
    fold_calls = [c for c in calls if c[3] != "pooled" and not (c[0] == "train" and c[4] == "2000"
                                                                  and c[1] == "faint_lesions")]
    # 10 steps of 4 folds, 7 of them trained: each (step, fold) scored once and trained at most once
    scores = [(c[1], c[2], c[4], c[3]) for c in fold_calls if c[0] == "score"]
    assert len(scores) == 40 and len(set(scores)) == 40
    trains = [(c[1], c[2], c[4], c[3]) for c in fold_calls if c[0] == "train"]
    assert len(trains) == 28 and len(set(trains)) == 28
    # the same fold of the same run is never in two processes at once
    by_fold = {}
    for c in fold_calls:
        by_fold.setdefault((c[2], c[3]), []).append((c[7], c[8]))
    for spans in by_fold.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # both lanes worked at the same time (some calls overlap), one thread each, and every step was pooled
    spans = sorted((c[7], c[8]) for c in fold_calls)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert {c[5] for c in fold_calls} == {"1"}
    # the faint-lesion branch copies the states at 2,000 only after all four diffusion folds have them
    branch = [c for c in calls if c[0] == "train" and c[1] == "faint_lesions" and c[4] == "2000"]
    at_2000 = [c for c in calls if c[1] == "diffusion" and c[4] == "2000" and c[3] != "pooled"]
    assert branch and min(c[7] for c in branch) >= max(c[8] for c in at_2000)
    # a step that reads another step's fold on the same directory comes after it (tiles over tissue boxes score the
    # diffusion snapshots at 10,000)
    for k in "0123":
        trained = [c[8] for c in calls if c[:5] == ["train", "diffusion", "runs/cv", k, "10000"]]
        scored = [c[7] for c in calls if c[0] == "score" and c[1] == "tissue_boxes" and c[3] == k]
        assert trained and scored and min(scored) >= max(trained)
    pooled = [c for c in calls if c[3] == "pooled"]
    assert len(pooled) == 10
