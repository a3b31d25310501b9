"""Command line of the bundle: ``python -m bundle <command> [--flags]``.

Commands:
    export     trace models/model.pt to TorchScript models/model.ts (see bundle.export)
    evaluate   segment and score labelled cases: Dice, HD95, lesion F1, AVD, ECE, failure AUROC (see bundle.evaluate)
    benchmark  time and memory of the default inference vs DDPM-1000 vs a deterministic U-Net (see bundle.benchmark)

Inference and training run through MONAI's own runner, e.g.
``python -m monai.bundle run --config_file configs/inference.yaml``.
"""

from __future__ import annotations

import fire

from bundle.benchmark import benchmark as run_benchmark
from bundle.benchmark import worker as benchmark_worker
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
    key: str = "testing",
) -> dict:
    """Score the "testing" cases of an MSD-style ``datalist`` into ``output_dir``; prints the means.

    ``--config_file "['configs/inference.yaml','configs/baseline_inference.yaml']"`` scores the baseline;
    ``--ckpt FILE`` replaces the config's weights (e.g. an ablation's model.pt); ``--key validation`` scores
    another list of the datalist.
    """
    return evaluate_datalist(
        datalist, output_dir, samples=samples, steps=steps, bundle_root=bundle_root, worst=worst,
        config_file=config_file, ckpt=ckpt, key=key,
    )["mean"]


def benchmark(
    output: str,
    input: str = "",
    device: str = "",
    repeats: int = 3,
    bundle_root: str = ".",
    ddpm_slices: int = 2,
    ddpm_steps: int = 1000,
) -> dict:
    """Median wall time and peak memory of the default inference, DDPM-1000 and a U-Net pass; writes ``output``."""
    report = run_benchmark(output, input=input, device=device, repeats=repeats, bundle_root=bundle_root,
                           ddpm_slices=ddpm_slices, ddpm_steps=ddpm_steps)
    return {k: v for k, v in report.items() if k != "results"} | {
        f"{mode}_median_s": round(r["median_s"], 3) for mode, r in report["results"].items()
    }


def main() -> None:
    fire.Fire({"export": export, "evaluate": evaluate, "benchmark": benchmark, "benchmark-worker": benchmark_worker})


if __name__ == "__main__":
    main()
