"""``python -m bundle label-serve --studies DIR [--port P]``: MONAI Label 0.8.5 (monaibundle app) serving this bundle.

1. ``bundle/label/setup.sh`` creates ``.venv-label`` once (MONAI Label needs pydicom < 3 and numpy < 2).
2. The app folder ``.label_app/`` is assembled: the monaibundle sample app shipped inside the monailabel wheel, and
   in ``model/lesion_diffusion`` a copy of this bundle whose configs are the bundle's own with MONAI Label
   adaptations (``label_inference_config``, ``label_train_config``).
3. ``monailabel start_server`` runs offline on 127.0.0.1: ``zoo_source=github`` makes the app use the local bundle
   folder instead of asking the model zoo (the default source, monaihosting, always calls the network).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from monai.bundle import ConfigParser

from bundle.evaluation.evaluate import read_config

BUNDLE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_NAME = "lesion_diffusion"
LABEL_VENV = os.path.join(BUNDLE_ROOT, ".venv-label")
WRITERS = ("SaveImaged", "bundle.outputs.overlay.ReviewPNGd", "bundle.outputs.report.LesionReportd", "bundle.outputs.report.PublishCased")


def label_inference_config(num_samples: int | None = None, num_steps: int | None = None) -> dict:
    """configs/inference.yaml for MONAI Label: ``image_path`` hidden from MONAI's transforms, no file writers
    (MONAI Label writes the label), and ``pred`` = the binary lesion mask."""
    parser = read_config(BUNDLE_ROOT, "configs/inference.yaml")
    parser["preprocessing"]["transforms"].insert(0, {"_target_": "bundle.label.transforms.StashKeyd",
                                                     "keys": "image_path"})
    post = [t for t in parser["postprocessing"]["transforms"] if t["_target_"] not in WRITERS]
    post += [{"_target_": "bundle.label.transforms.LesionMaskAsPredd"},
             {"_target_": "bundle.label.transforms.StashKeyd", "keys": "image_path", "restore": True}]
    parser["postprocessing"]["transforms"] = post
    if num_samples:
        parser["num_samples"] = num_samples
    if num_steps:
        parser["num_steps"] = num_steps
    return parser.get()


def label_train_config(epoch_length: int | None = None) -> dict:
    """configs/train.yaml for MONAI Label with the local-adaptation recipe of ``python -m bundle finetune``
    (configs/finetune.yaml: start from the served weights, its learning rate, no synthetic lesions), validating (and
    saving models/model.pt) after every epoch, since MONAI Label asks for few epochs."""
    parser = read_config(BUNDLE_ROOT, "configs/train.yaml")
    finetune = ConfigParser.load_config_file(os.path.join(BUNDLE_ROOT, "configs", "finetune.yaml"))
    for key in ("init_weights", "learning_rate", "synthesis_prob", "initialize"):
        parser[key] = finetune[key]
    parser["val_interval"] = 1
    if epoch_length:
        parser["epoch_length"] = epoch_length
    return parser.get()


def build_app(app_dir: str, num_samples: int | None, num_steps: int | None, epoch_length: int | None) -> str:
    """Assemble the monaibundle app with this bundle in ``app_dir/model/lesion_diffusion``; returns ``app_dir``."""
    sample_app = os.path.join(LABEL_VENV, "monailabel", "sample-apps", "monaibundle")
    if not os.path.isdir(sample_app):
        raise SystemExit(f"error: {sample_app}: monaibundle sample app missing (rerun bash bundle/label/setup.sh)")
    shutil.rmtree(app_dir, ignore_errors=True)
    shutil.copytree(sample_app, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    model = os.path.join(app_dir, "model", MODEL_NAME)
    shutil.copytree(os.path.join(BUNDLE_ROOT, "bundle"), os.path.join(model, "bundle"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(BUNDLE_ROOT, "models"), os.path.join(model, "models"))
    os.makedirs(os.path.join(model, "configs"))
    for name in ("metadata.json", "logging.conf"):
        shutil.copy(os.path.join(BUNDLE_ROOT, "configs", name), os.path.join(model, "configs", name))
    shutil.copy(os.path.join(BUNDLE_ROOT, "LICENSE"), os.path.join(model, "LICENSE"))
    ConfigParser.export_config_file(label_inference_config(num_samples, num_steps),
                                    os.path.join(model, "configs", "inference.yaml"), fmt="yaml")
    ConfigParser.export_config_file(label_train_config(epoch_length), os.path.join(model, "configs", "train.yaml"),
                                    fmt="yaml")
    return app_dir


def label_serve(
    studies: str,
    port: int = 8000,
    num_samples: int | None = None,
    num_steps: int | None = None,
    epoch_length: int | None = None,
    app_dir: str = os.path.join(BUNDLE_ROOT, ".label_app"),
) -> None:
    """Set up (once), assemble the app and run the MONAI Label server on 127.0.0.1:``port`` until stopped.

    ``--num_samples``/``--num_steps`` override N and K of the served model (fewer = faster interactive labels),
    ``--epoch_length`` the iterations per training epoch.
    """
    if not os.path.isdir(studies):
        raise SystemExit(f"error: {studies}: --studies is not a folder")
    subprocess.run(["bash", os.path.join(BUNDLE_ROOT, "bundle", "label", "setup.sh")], check=True)
    build_app(app_dir, num_samples, num_steps, epoch_length)
    command = [
        os.path.join(LABEL_VENV, "bin", "monailabel"), "start_server", "--app", app_dir,
        "--studies", os.path.abspath(studies), "--host", "127.0.0.1", "--port", str(port),
        "--conf", "models", MODEL_NAME, "--conf", "zoo_source", "github", "--conf", "sam2", "false",
        "--conf", "preload", "false",
    ]
    print(" ".join(command), flush=True)
    # the monailabel launcher calls `python` from PATH and puts the working folder on PYTHONPATH
    env = dict(os.environ, VIRTUAL_ENV=LABEL_VENV, PATH=os.pathsep.join([os.path.join(LABEL_VENV, "bin"),
                                                                       os.environ.get("PATH", "")]))
    env.pop("PYTHONPATH", None)
    os.chdir(app_dir)
    os.execve(command[0], command, env)
