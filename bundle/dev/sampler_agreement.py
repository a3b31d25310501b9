"""Does few-step DDIM give the mask that DDPM with all T = 1000 steps gives? Measured on lesion slices of labelled cases.

``python -m bundle.dev sampler-agreement --datalist FILE [--key validation] [--slices 4] [--steps "[5,10]"] --output FILE.json``

The reference is DDPM ancestral sampling over all T steps (``bundle.model.reference``). All samplers run with the
inference config's N, network, speed settings and seed. Per case the image is preprocessed as for inference, the
label resampled onto that grid, and the ``slices`` axial tissue slices with the largest lesion area are sampled by
DDIM with each K of ``steps`` and by DDPM; the JSON gives, over those slices, the Dice of each mask to the label
(``dice_ddpm``, ``dice_ddim<K>``) and between each DDIM mask and the DDPM one (``dice_ddim<K>_vs_ddpm``).
Only slices, because T = 1000 over a whole volume takes about two hours per case on two CPU cores.
"""

from __future__ import annotations

import os
import statistics

import torch
from monai.metrics import DiceMetric
from monai.transforms import LoadImage

from bundle.evaluation.evaluate import label_on_image_grid, labelled_datalist, read_config, set_weights
from bundle.model.reference import config_sampler, load_network, reference_sampler, sample_slices
from bundle.outputs.files import write_json_atomic
from bundle.preprocessing.slices import tissue_slices


def _dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return DiceMetric(include_background=True, ignore_empty=False)(pred[None, None].float(), truth[None, None].float()).item()


def lesion_slices(volume: torch.Tensor, label: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` tissue slices of ``volume`` (C, H, W, D) with the most lesion voxels in ``label`` (1, H, W, D)."""
    tissue = tissue_slices(volume)
    area = (label[0] > 0).sum(dim=(0, 1))[tissue]
    order = torch.argsort(area, descending=True, stable=True)[:count]
    return tissue[order[area[order] > 0]].sort().values


def sampler_agreement(
    datalist: str,
    output: str,
    key: str = "validation",
    slices: int = 4,
    steps: int | list[int] | tuple[int, ...] = (),
    reference_steps: int = 1000,
    bundle_root: str = ".",
    config_file: str | list[str] = "configs/inference.yaml",
    ckpt: str = "",
) -> dict:
    """DDIM with K = each of ``steps`` (default: the config's K) vs DDPM-``reference_steps`` on the lesion slices
    of each case of the ``key`` list; writes and returns the JSON described in the module docstring. ``ckpt``: other
    weights."""
    bundle_root = os.path.abspath(bundle_root)
    parser = read_config(bundle_root, config_file)
    parser["bundle_root"] = bundle_root
    set_weights(parser, ckpt)
    device = parser.get_parsed_content("device")
    network = load_network(parser)
    preprocessing = parser.get_parsed_content("preprocessing")
    config = parser.get_parsed_content("inferer")
    ddim_steps = [int(k) for k in ([steps] if isinstance(steps, int) else steps)] or [config.num_inference_steps]
    samplers = {f"ddim{k}": config_sampler(parser, k, config.eta) for k in ddim_steps}
    samplers["ddpm"] = reference_sampler(parser, reference_steps)
    cases = []
    for case in labelled_datalist(datalist, key):
        volume = preprocessing({"image": case["image"]})["image"]
        label = label_on_image_grid(LoadImage(image_only=True, ensure_channel_first=True)(case["label"]), volume)
        chosen = lesion_slices(volume, label, slices)
        truth = label[0][..., chosen] > 0
        volume = volume.as_tensor().to(device)
        masks = {
            name: (sample_slices(sampler, volume, chosen.to(device), network)[:, 0] > 0.5).permute(1, 2, 0).cpu()
            for name, sampler in samplers.items()
        }
        scores = {"image": case["image"], "slices": chosen.tolist(), "dice_ddpm": round(_dice(masks["ddpm"], truth), 4)}
        for k in ddim_steps:
            scores[f"dice_ddim{k}"] = round(_dice(masks[f"ddim{k}"], truth), 4)
            scores[f"dice_ddim{k}_vs_ddpm"] = round(_dice(masks[f"ddim{k}"], masks["ddpm"]), 4)
        cases.append(scores)
        print(scores, flush=True)
    result = {
        "num_samples": config.num_samples,
        "ddim_steps": ddim_steps,
        "ddim_eta": config.eta,
        "reference_steps": reference_steps,
        "slices_per_case": slices,
        "precision": config.precision,
        "channels_last": config.channels_last,
        "mirror": config.mirror,
        "device": str(device),
        "cases": cases,
        "mean": {k: round(statistics.mean(c[k] for c in cases), 4) for k in cases[0] if k.startswith("dice")}
        if cases
        else {},
    }
    write_json_atomic(output, result)
    return result
