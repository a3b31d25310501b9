"""Training through ``python -m monai.bundle run`` on real glioma volumes: checkpoint, resume, DDP config."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from bundle.export import load_network
from conftest import BUNDLE_ROOT, GLIOMA, require_shared, run_bundle

SMALL_RUN = [
    "--patch_size", "32", "--patches_per_volume", "2", "--volumes_per_batch", "2", "--epoch_length", "2",
    "--val_interval", "1", "--val_num_samples", "1", "--val_num_steps", "1", "--num_workers", "0",
]


@pytest.fixture
def datalist(tmp_path):
    require_shared(GLIOMA)
    case = lambda i: {"image": str(GLIOMA / f"BRATS_{i}_flair.nii.gz"), "label": str(GLIOMA / f"BRATS_{i}_label.nii.gz")}
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": [case(460), case(461)], "validation": [case(472)]}))
    return path


def train(datalist, out, *extra, config="configs/train.yaml", launcher=("monai.bundle",)):
    return run_bundle(
        *launcher, "run", "--config_file", config, "--datalist", str(datalist),
        "--output_dir", str(out), "--ckpt_dir", str(out), *SMALL_RUN, *extra,
    )


def test_training_writes_a_loadable_best_checkpoint_and_resumes(datalist, tmp_path):
    out = tmp_path / "run"
    train(datalist, out, "--max_epochs", "1")
    state = torch.load(out / "model.pt", weights_only=True)  # plain state dict
    network, _ = load_network(str(BUNDLE_ROOT))
    network.load_state_dict(state)  # strict: every key of the configured network
    resume = sorted(out.glob("resume_checkpoint_epoch=1.pt"))
    assert resume, f"no resume checkpoint in {list(out.iterdir())}"
    full = torch.load(resume[0], weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer"} <= set(full)
    assert full["trainer"]["iteration"] == 2  # one epoch of two iterations

    proc = train(datalist, out, "--max_epochs", "2", "--resume_from", str(resume[0]))
    log = proc.stdout + proc.stderr
    assert "Epoch: 2/2" in log and "Epoch: 1/2" not in log, "resume must continue at epoch 2"
    assert (out / "resume_checkpoint_epoch=2.pt").exists()


def test_multi_gpu_config_runs_ddp_on_two_cpu_processes(datalist, tmp_path):
    """The DDP overrides run as-is under torchrun (gloo backend on CPU); only rank 0 writes checkpoints."""
    out = tmp_path / "ddp"
    config = "['configs/train.yaml','configs/multi_gpu_train.yaml']"
    train(
        datalist, out, "--max_epochs", "1", config=config,
        launcher=("torch.distributed.run", "--nproc_per_node=2", "--master_port=29531", "-m", "monai.bundle"),
    )
    assert (out / "model.pt").exists() and (out / "resume_checkpoint_epoch=1.pt").exists()
    torch.load(out / "model.pt", weights_only=True)
