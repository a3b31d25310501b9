"""``bundle.outputs.progress``: the batch's bar and case lines, and the --debug switch."""

from __future__ import annotations

import io
import json

import torch
from ignite.engine import Engine
from monai.data import MetaTensor

from bundle.outputs.progress import BatchProgress, case_line, debug_requested


def test_debug_is_read_from_the_command_line():
    assert not debug_requested(["run", "--config_file", "x.yaml"])
    assert debug_requested(["run", "--debug", "true"]) and debug_requested(["run", "--debug=True"])
    assert not debug_requested(["run", "--debug", "false", "--x", "1"]) and debug_requested(["run", "--debug"])


def test_one_line_per_finished_case_and_a_bar_over_the_batch(tmp_path):
    reports = {"a": {"lesion_count": 3, "lesion_volume_ml": 12.345, "review_required": False},
               "b": {"lesion_count": 0, "lesion_volume_ml": 0.0, "review_required": True}}
    for case, content in reports.items():
        (tmp_path / f"{case}_report.json").write_text(json.dumps(content))
    cases = [[{"image": MetaTensor(torch.zeros(1), meta={"filename_or_obj": f"/in/{c}.nii.gz"})}] for c in reports]
    engine = Engine(lambda engine, batch: batch)
    printed = io.StringIO()
    progress = BatchProgress(str(tmp_path), file=printed)
    progress.attach(engine)
    engine.run(cases)
    lines = [line for line in printed.getvalue().replace("\r", "\n").splitlines() if line.startswith(("a:", "b:"))]
    assert lines == ["a: 3 lesions, 12.3 mL, no review flag", "b: 0 lesions, 0.0 mL, REVIEW REQUIRED"]
    assert progress.bar.n == 2 and progress.bar.total == 2
    assert engine.logger.level >= 30  # the engine's INFO lines are off without --debug
    assert case_line({}, "c") == "c: 0 lesions, 0.0 mL, no review flag"  # a case whose report is missing
