"""MONAI Label 0.8.5 serves the bundle offline: infer returns a label on the input grid, train runs an epoch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import BUNDLE_ROOT, GLIOMA, SHARED_DATA, require_shared

MS_IMAGE = SHARED_DATA / "open_ms_data" / "cross_sectional_mni" / "patient26_FLAIR.nii.gz"
MS_LABEL = SHARED_DATA / "open_ms_data" / "cross_sectional_mni" / "patient26_lesion_mask.nii.gz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, data: bytes | None = None, timeout: int = 900) -> bytes:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    method = "POST" if data is not None or "/infer/" in url else "GET"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method),
                                timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_shared(MS_IMAGE, MS_LABEL, GLIOMA)
    root = tmp_path_factory.mktemp("label")
    studies = root / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    shutil.copy(MS_IMAGE, studies / MS_IMAGE.name)
    shutil.copy(MS_LABEL, studies / "labels" / "final" / MS_IMAGE.name)
    shutil.copy(GLIOMA / "BRATS_472_flair.nii.gz", studies / "BRATS_472_flair.nii.gz")
    shutil.copy(GLIOMA / "BRATS_472_label.nii.gz", studies / "labels" / "final" / "BRATS_472_flair.nii.gz")
    port, app = _free_port(), root / "app"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bundle", "label-serve", "--studies", str(studies), "--port", str(port),
         "--num_samples", "2", "--num_steps", "2", "--epoch_length", "3", "--app_dir", str(app)],
        cwd=BUNDLE_ROOT, env=dict(os.environ, PYTHONPATH=str(BUNDLE_ROOT)), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 1500  # the first start creates .venv-label (about 1-2 min)
    while True:
        try:
            info = json.loads(_request(f"{url}/info/", timeout=10))
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(f"MONAI Label server did not start:\n{(root / 'server.log').read_text()[-4000:]}")
            time.sleep(3)
    yield url, info, studies, app
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    log.close()


def test_server_lists_the_bundle_with_its_label(server):
    _, info, _, _ = server
    assert info["models"]["lesion_diffusion"]["labels"] == {"lesion": 1}
    assert info["models"]["lesion_diffusion"]["type"] == "segmentation"


def test_infer_returns_a_binary_label_on_the_input_grid_that_finds_the_ms_lesions(server, tmp_path):
    url, _, studies, _ = server
    image_id = MS_IMAGE.name[: -len(".nii.gz")]
    (tmp_path / "label.nii.gz").write_bytes(_request(f"{url}/infer/lesion_diffusion?image={image_id}&output=image"))
    label, source = nib.load(tmp_path / "label.nii.gz"), nib.load(MS_IMAGE)
    assert label.shape == source.shape
    np.testing.assert_allclose(label.affine, source.affine, atol=1e-4)
    mask = np.asarray(label.dataobj)
    assert set(np.unique(mask)) <= {0, 1} and mask.any()
    truth = np.asarray(nib.load(MS_LABEL).dataobj) > 0
    assert (mask.astype(bool) & truth).sum() > 100, "the real MS lesions are (partly) found"


def test_train_runs_an_epoch_and_updates_the_served_model(server):
    url, _, _, app = server
    model = app / "model" / "lesion_diffusion" / "models" / "model.pt"
    before = torch.load(model, map_location="cpu", weights_only=True)
    request = {"max_epochs": 1, "device": "cpu", "val_split": 0.5, "multi_gpu": False}
    _request(f"{url}/train/lesion_diffusion?run_sync=true", data=json.dumps(request).encode(), timeout=1200)
    (resume,) = (app / "model" / "lesion_diffusion" / "runs" / "train").glob("resume_checkpoint_*.pt")
    trainer = torch.load(resume, map_location="cpu", weights_only=True)["trainer"]
    assert trainer["max_epochs"] == 1 and trainer["iteration"] == trainer["epoch_length"] == 3
    after = torch.load(model, map_location="cpu", weights_only=True)
    assert any(not torch.equal(before[k], after[k]) for k in before), "validation saved the trained weights"


def test_label_training_follows_the_finetune_recipe():
    """MONAI Label's /train starts from the served weights with configs/finetune.yaml's learning rate and without
    synthetic lesions, validating every epoch; the rest is the training recipe."""
    from monai.bundle import ConfigParser

    from bundle.label.serve import label_train_config

    config = label_train_config(epoch_length=3)
    finetune = ConfigParser.load_config_file(str(BUNDLE_ROOT / "configs" / "finetune.yaml"))
    assert config["learning_rate"] == finetune["learning_rate"] and config["synthesis_prob"] == 0.0
    assert config["val_interval"] == 1 and config["epoch_length"] == 3
    assert config["init_weights"] == "$@bundle_root + '/models/model.pt'"  # the served model's own copy
    assert any("load_state_dict" in step and "@init_weights" in step for step in config["initialize"])
