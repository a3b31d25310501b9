"""TorchScript export: trace ``encode_image``, ``denoise`` and ``forward`` (and ``coarse_logits`` where the network
has a coarse head) of the trained network.

The traced module keeps the two-method interface the inferer uses (f^I once, then the denoiser per step), so
``DiffusionEnsembleInferer`` runs on ``torch.jit.load("models/model.ts")`` exactly as on the eager network. The
bundle's metadata and inference config are stored inside the file, as ``monai.bundle ckpt_export`` does.
"""

from __future__ import annotations

import json
import os

import torch
from monai.bundle import ConfigParser
from monai.data.torchscript_utils import save_net_with_metadata


def load_network(bundle_root: str = ".", config_file: str = "configs/inference.yaml", ckpt: str = "models/model.pt"):
    """The eager network of ``config_file`` with the weights of ``ckpt`` (paths relative to ``bundle_root``)."""
    parser = ConfigParser()
    parser.read_config(os.path.join(bundle_root, config_file))
    parser["bundle_root"] = bundle_root
    network = parser.get_parsed_content("network_def")
    state = torch.load(os.path.join(bundle_root, ckpt), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return network.eval(), parser


def example_inputs(network, height: int = 64, width: int = 64, batch: int = 2) -> dict[str, tuple[torch.Tensor, ...]]:
    """Random example inputs for each traced method (``coarse_logits`` too when the network has a coarse head)."""
    g = torch.Generator().manual_seed(0)
    channels = network.image_channels * (2 * network.context_slices + 1)
    image = torch.rand((batch, channels, height, width), generator=g)
    x_t = torch.randn((batch, 1, height, width), generator=g)
    t = torch.tensor([500] * batch, dtype=torch.long)
    features = torch.randn((batch, network.feature_channels, height, width), generator=g)
    inputs = {"encode_image": (image,), "denoise": (x_t, t, features), "forward": (x_t, t, image)}
    if getattr(network, "coarse_head", None) is not None:
        inputs["coarse_logits"] = (features,)
    return inputs


def export_torchscript(
    bundle_root: str = ".",
    config_file: str = "configs/inference.yaml",
    ckpt: str = "models/model.pt",
    output: str = "models/model.ts",
) -> str:
    """Trace the network in ``ckpt`` and save it (with metadata and config) to ``output``; returns its path."""
    network, parser = load_network(bundle_root, config_file, ckpt)
    with torch.no_grad():
        traced = torch.jit.trace_module(network, example_inputs(network), check_trace=True)
    with open(os.path.join(bundle_root, "configs", "metadata.json")) as f:
        meta = json.load(f)
    output_path = os.path.join(bundle_root, output)
    save_net_with_metadata(
        traced,
        output_path[: -len(".ts")] if output_path.endswith(".ts") else output_path,
        include_config_vals=False,
        append_timestamp=False,
        meta_values=meta,
        more_extra_files={"inference.json": json.dumps(parser.get()).encode()},
    )
    return output_path
