"""Command line of the bundle: ``python -m bundle <command> [--flags]`` (``--help`` after a command lists its flags).

Commands:
    evaluate     segment and score labelled cases: Dice, HD95, lesion F1, AVD, ECE, failure AUROC
                 (see bundle.evaluation.evaluate)
    crossval     train the patient-level cross-validation folds (resumable) and score their pooled out-of-fold
                 predictions; --folds all trains the shipped weights on every case (see bundle.evaluation.crossval)
    benchmark    time and memory of the default inference vs DDPM-1000 vs a deterministic U-Net
                 (see bundle.evaluation.benchmark)
    review       one HTML page showing a batch of inference outputs, worst uncertainty first (see bundle.outputs.review)
    finetune     adapt the shipped weights to a site's few labelled scans, in bounded time on a CPU
                 (see bundle.training.finetune)
    export       trace models/model.pt to TorchScript models/model.ts (see bundle.model.export)
    label-serve  a MONAI Label 0.8.5 server for this bundle on 127.0.0.1 (see bundle.label.serve)

Inference and training run through MONAI's own runner, e.g.
``python -m monai.bundle run --config_file configs/inference.yaml``; the MONAI Deploy app is
``python -m bundle.deploy``.
Developer experiments have their own command line: ``python -m bundle.dev``.
"""

from __future__ import annotations

import fire

from bundle.evaluation.benchmark import benchmark, worker
from bundle.evaluation.crossval import crossval
from bundle.evaluation.evaluate import evaluate
from bundle.label.serve import label_serve
from bundle.model.export import export_torchscript
from bundle.outputs.review import review
from bundle.training.finetune import finetune


def main() -> None:
    fire.Fire(
        {
            "evaluate": evaluate,
            "crossval": crossval,
            "benchmark": benchmark,
            "review": review,
            "finetune": finetune,
            "export": export_torchscript,
            "label-serve": label_serve,
            "benchmark-worker": worker,  # one measurement in its own process (used by benchmark)
        }
    )


if __name__ == "__main__":
    main()
