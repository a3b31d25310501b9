"""Command line of the bundle: ``python -m bundle <command> [--flags]``.

Commands:
    export     trace models/model.pt to TorchScript models/model.ts (see bundle.export)
    evaluate   segment and score labelled cases: Dice, HD95, lesion F1, AVD, ECE, failure AUROC (see bundle.evaluate)

Inference and training run through MONAI's own runner, e.g.
``python -m monai.bundle run --config_file configs/inference.yaml``.
"""

from __future__ import annotations

import fire

from bundle.evaluate import evaluate as evaluate_datalist
from bundle.export import export_torchscript


def export(bundle_root: str = ".", ckpt: str = "models/model.pt", output: str = "models/model.ts") -> str:
    """Trace the network weights in ``ckpt`` into a TorchScript file ``output``; prints its path."""
    return export_torchscript(bundle_root=bundle_root, ckpt=ckpt, output=output)


def evaluate(
    datalist: str,
    output_dir: str,
    samples: int = 8,
    steps: int = 10,
    bundle_root: str = ".",
    worst: int = 3,
    config_file: str | list = "configs/inference.yaml",
    ckpt: str = "",
) -> dict:
    """Score the "testing" cases of an MSD-style ``datalist`` into ``output_dir``; prints the means.

    ``--config_file "['configs/inference.yaml','configs/baseline_inference.yaml']"`` scores the baseline;
    ``--ckpt FILE`` replaces the config's weights (e.g. an ablation's model.pt).
    """
    return evaluate_datalist(
        datalist, output_dir, samples=samples, steps=steps, bundle_root=bundle_root, worst=worst,
        config_file=config_file, ckpt=ckpt,
    )["mean"]


def main() -> None:
    fire.Fire({"export": export, "evaluate": evaluate})


if __name__ == "__main__":
    main()
