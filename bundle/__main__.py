"""Command line of the bundle: ``python -m bundle <command> [--flags]`` (``--help`` after a command lists its flags).

Commands:
    export     trace models/model.pt to TorchScript models/model.ts (see bundle.export)
    evaluate   segment and score labelled cases: Dice, HD95, lesion F1, AVD, ECE, failure AUROC (see bundle.evaluate)
    crossval   train the patient-level cross-validation folds (resumable) and score their pooled out-of-fold
               predictions; --folds all trains the shipped weights on every case (see bundle.crossval)
    benchmark  time and memory of the default inference vs DDPM-1000 vs a deterministic U-Net (see bundle.benchmark)
    benchmark-sweep  sampling time against N and K, JSON and SVG plot (see bundle.sweep)
    sampler-agreement  few-step DDIM vs DDPM-1000 masks on lesion slices of labelled cases (see bundle.sampler_agreement)
    healthy-anatomy  pseudo-FLAIR healthy MNI brains (empty labels) as training anatomy for synthetic MS lesions
                     (see bundle.healthy_anatomy)
    semi-synthetic  real MS lesion masks of other patients inserted into the labelled MS scan, with a datalist
                    (see bundle.semi_synthetic)
    acquisition-variants  labelled cases as thick-slice, tilted-grid, int16 or skull-on scans, with a datalist
                          (see bundle.acquisition_variants)
    review     one HTML page showing a batch of inference outputs, worst uncertainty first (see bundle.review)
    label-serve  a MONAI Label 0.8.5 server for this bundle on 127.0.0.1 (see bundle.label.serve)

Inference and training run through MONAI's own runner, e.g.
``python -m monai.bundle run --config_file configs/inference.yaml``.
"""

from __future__ import annotations

import fire

from bundle.acquisition_variants import acquisition_variants
from bundle.benchmark import benchmark, worker
from bundle.crossval import crossval
from bundle.evaluate import evaluate
from bundle.export import export_torchscript
from bundle.healthy_anatomy import healthy_cases
from bundle.label.serve import label_serve
from bundle.review import review
from bundle.sampler_agreement import sampler_agreement
from bundle.semi_synthetic import semi_synthetic_cases
from bundle.sweep import sweep


def main() -> None:
    fire.Fire(
        {
            "export": export_torchscript,
            "evaluate": evaluate,
            "crossval": crossval,
            "benchmark": benchmark,
            "benchmark-sweep": sweep,
            "sampler-agreement": sampler_agreement,
            "healthy-anatomy": healthy_cases,
            "semi-synthetic": semi_synthetic_cases,
            "acquisition-variants": acquisition_variants,
            "review": review,
            "label-serve": label_serve,
            "benchmark-worker": worker,  # one measurement in its own process (used by benchmark)
        }
    )


if __name__ == "__main__":
    main()
