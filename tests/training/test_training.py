"""Training through ``python -m monai.bundle run`` on real glioma volumes: checkpoint, resume, DDP config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import BUNDLE_ROOT, GLIOMA, require_shared, run_bundle

from bundle.model.export import load_network

SMALL_RUN = [
    "--patch_size", "32", "--patches_per_volume", "2", "--volumes_per_batch", "2",
    "--val_interval", "1", "--val_num_samples", "1", "--val_num_steps", "1", "--num_workers", "0",
    "--synthesis_prob", "0.5",
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
        "--output_dir", str(out), "--ckpt_dir", str(out), "--cache_dir", str(out / "cache"), *SMALL_RUN, *extra,
    )


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(datalist, tmp_path):
    """A real run is killed (SIGKILL) after its first epoch checkpoint and resumed; it loses at most one epoch."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.yaml", "--datalist",
           str(datalist), "--output_dir", str(out), "--ckpt_dir", str(out), "--cache_dir", str(out / "cache"),
           *SMALL_RUN, "--max_epochs", "3",
           "--epoch_length", "6"]
    proc = subprocess.Popen(cmd, cwd=BUNDLE_ROOT, env=dict(os.environ, PYTHONPATH=str(BUNDLE_ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "resume_checkpoint_epoch=1.pt"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into epoch 2
    proc.kill()
    proc.wait()
    assert first.exists(), "the run died before its first checkpoint"
    assert not (out / "resume_checkpoint_epoch=3.pt").exists(), "the run finished before it was killed"

    state = torch.load(out / "model.pt", weights_only=True)  # best weights: a plain state dict
    network, _ = load_network(str(BUNDLE_ROOT))
    network.load_state_dict(state)  # strict: every key of the configured network
    last = max(out.glob("resume_checkpoint_epoch=*.pt"), key=lambda p: p.stat().st_mtime)
    full = torch.load(last, weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer", "rng"} <= set(full)
    done_epochs = full["trainer"]["iteration"] // 6

    resumed = train(datalist, out, "--max_epochs", "3", "--epoch_length", "6", "--resume_from", str(last))
    log = resumed.stdout + resumed.stderr
    assert f"Epoch: {done_epochs + 1}/3" in log and f"Epoch: {done_epochs}/3" not in log
    assert (out / "resume_checkpoint_epoch=3.pt").exists()


def test_corrupt_resume_checkpoint_is_one_clear_line(datalist, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_bundle(
        "monai.bundle", "run", "--config_file", "configs/train.yaml", "--datalist", str(datalist),
        "--output_dir", str(tmp_path), "--cache_dir", str(tmp_path / "cache"), "--resume_from", str(bad), *SMALL_RUN,
        "--epoch_length", "2", check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: not a readable checkpoint")


def test_multi_gpu_config_runs_ddp_on_two_cpu_processes(datalist, tmp_path):
    """The DDP overrides run as-is under torchrun (gloo backend on CPU); only rank 0 writes checkpoints."""
    out = tmp_path / "ddp"
    config = "['configs/train.yaml','configs/multi_gpu_train.yaml']"
    train(
        datalist, out, "--max_epochs", "1", "--epoch_length", "2", config=config,
        launcher=("torch.distributed.run", "--nproc_per_node=2", "--master_port=29531", "-m", "monai.bundle"),
    )
    assert (out / "model.pt").exists() and (out / "resume_checkpoint_epoch=1.pt").exists()
    torch.load(out / "model.pt", weights_only=True)


def test_ema_overlay_saves_the_moving_average_of_the_weights(datalist, tmp_path):
    """configs/ema.yaml: theta_ema <- (1 - m) theta_ema + m theta after each iteration. With one iteration per epoch
    the epoch-2 average must equal (1 - m) * (epoch-1 average) + m * (epoch-2 weights), also across a resume (the
    average is restored, not restarted from the weights); it is what model_final.pt holds."""
    m = 0.3
    out = tmp_path / "ema"
    run = lambda epochs, *extra: train(
        datalist, out, "--max_epochs", str(epochs), "--epoch_length", "1", "--ema_momentum", str(m),
        "--train#resume_saver#n_saved", "2", *extra, config="['configs/train.yaml','configs/ema.yaml']")
    run(1)
    run(2, "--resume_from", str(out / "resume_checkpoint_epoch=1.pt"))
    first = torch.load(out / "resume_checkpoint_epoch=1.pt", weights_only=True)
    last = torch.load(out / "resume_checkpoint_epoch=2.pt", weights_only=True)
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert set(final) == set(last["model"]) == set(last["ema_model"])
    for k, theta in last["model"].items():
        if not theta.is_floating_point():
            continue
        expected = (1 - m) * first["ema_model"][k] + m * theta
        torch.testing.assert_close(last["ema_model"][k], expected, rtol=1e-5, atol=1e-7, msg=k)
        assert torch.equal(final[k], last["ema_model"][k]), k
    moved = [k for k in last["model"] if not torch.equal(last["model"][k], last["ema_model"][k])]
    assert moved, "the average equals the trained weights: the EMA is not applied"


def test_lesion_balanced_crops_train_on_real_volumes(datalist, tmp_path):
    """``--lesion_balanced_crops true`` (docs/results.md rule 17): the balanced crop's index keys are dropped before
    batching, so real volumes train and checkpoint as with the default crop."""
    out = tmp_path / "balanced"
    train(datalist, out, "--max_epochs", "1", "--epoch_length", "2", "--lesion_balanced_crops", "true")
    state = torch.load(out / "resume_checkpoint_epoch=1.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
