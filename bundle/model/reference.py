"""The DDPM reference sampler, and sampling chosen slices of a volume with the inference config's sampler.

DDPM ancestral sampling over all T steps is DDIM with eta = 1 over every timestep (Song et al. 2021, sec. 4.1):

    sigma_t = sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev) = sqrt(beta_tilde_t)   for a_prev = a_{t-1}

(tests/model/test_scheduler.py checks that it draws the same chain as MONAI's ``DDPMScheduler``). The benchmark
times it against the few-step default; ``python -m bundle.dev sampler-agreement`` compares their masks.
"""

from __future__ import annotations

import copy

import torch

from bundle.model.checkpoint import load_weights
from bundle.model.inferer import DiffusionEnsembleInferer
from bundle.model.precision import autocast_dtype


def config_sampler(parser, steps: int, eta: float) -> DiffusionEnsembleInferer:
    """A copy of the inference config's sampler (N, seed, speed settings, its own scheduler) with K = ``steps``."""
    sampler = copy.deepcopy(parser.get_parsed_content("inferer"))
    sampler.num_inference_steps, sampler.eta = steps, eta
    return sampler


def reference_sampler(parser, steps: int) -> DiffusionEnsembleInferer:
    """The DDPM reference: the config's sampler as DDIM with eta = 1 over ``steps`` timesteps, every step on every
    slice (adaptive stopping off whatever the config's ``stop_tolerance``: the reference never stops early)."""
    sampler = config_sampler(parser, steps, eta=1.0)
    sampler.stop_tolerance = 0.0
    return sampler


def sample_slices(sampler: DiffusionEnsembleInferer, volume, slices, network) -> torch.Tensor:
    """``sampler``'s (probability, uncertainty) (S, 2, H, W) on the axial ``slices`` of ``volume`` (C, H, W, D),
    from the sampler's seed."""
    sampler.prepare(volume.device)
    generator = torch.Generator(device=volume.device).manual_seed(sampler.seed)
    sampler.layout_weights(network)
    dtype = autocast_dtype(sampler.precision, volume.device)
    with torch.inference_mode():
        return sampler.predict_slices(volume, slices, network, generator, dtype)


def load_network(parser) -> torch.nn.Module:
    """The inference config's network with its checkpoint (``ckpt_path``) loaded, in eval mode."""
    return load_weights(parser.get_parsed_content("network"), parser.get_parsed_content("ckpt_path"),
                        parser.get_parsed_content("device"))
