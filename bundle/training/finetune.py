"""Local adaptation: ``python -m bundle finetune --datalist FILE [--output_dir DIR] [--iterations N]``.

Fine-tunes the shipped weights (``models/model.pt``) on a site's few labelled scans (the "training" list of an
MSD-style datalist) with the training recipe (``configs/train.yaml``), no validation, a fifth of its learning rate
and a bounded number of iterations (``configs/finetune.yaml``), in its own process. The final weights are written to
``OUTPUT_DIR/model.pt``; use them with ``python -m monai.bundle run --config_file configs/inference.yaml
--ckpt_path OUTPUT_DIR/model.pt``. Run it again after an interruption: it resumes from the last finished epoch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CONFIGS = ("configs/train.yaml", "configs/crossval_train.yaml", "configs/finetune.yaml")


def finetune(datalist: str, output_dir: str = "runs/finetune", iterations: int = 400, bundle_root: str = ".",
             init_weights: str = "", overrides: str = "") -> str:
    """Fine-tune on ``datalist``'s training list for ``iterations`` (epochs of 100, or one epoch of fewer); returns
    the weights' path.

    ``init_weights``: start from other weights than the shipped ones; ``overrides``: extra ``--key value`` flags
    for the training config."""
    from bundle.evaluation.crossval import newest_state, snapshots
    from bundle.inputs.data import training_datalist
    from bundle.inputs.input_check import exit_on_input_error

    bundle_root, output_dir = os.path.abspath(bundle_root), os.path.abspath(output_dir)
    datalist = os.path.abspath(datalist)
    cases = exit_on_input_error(training_datalist, datalist, "training")
    if not cases:
        raise SystemExit(f"error: {datalist}: its \"training\" list is empty")
    epoch_length = min(iterations, 100)
    if iterations < 1 or iterations % epoch_length:
        raise SystemExit(f"error: --iterations must be below 100 or a multiple of 100, got {iterations}")
    os.makedirs(output_dir, exist_ok=True)
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
               repr([os.path.join(bundle_root, c) for c in CONFIGS]), "--bundle_root", bundle_root,
               "--datalist", datalist, "--output_dir", output_dir, "--epoch_length", str(epoch_length),
               "--max_epochs", str(iterations // epoch_length)]
    if init_weights:
        command += ["--init_weights", os.path.abspath(init_weights)]
    state = newest_state(output_dir)
    if state:
        command += ["--resume_from", state]
    print(f"fine-tuning on {len(cases)} scans for {iterations} iterations -> {output_dir}", flush=True)
    subprocess.run(command + overrides.split(), check=True)
    final = snapshots(output_dir).get(iterations)
    if final is None:
        raise SystemExit(f"error: {output_dir}: no weights at {iterations} iterations after the run")
    weights = os.path.join(output_dir, "model.pt")
    shutil.copyfile(final, weights)
    print(f"weights: {weights}  (inference: --ckpt_path {weights})", flush=True)
    return weights
