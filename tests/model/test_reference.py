"""``bundle.model.reference``: the DDPM reference sampler and slice sampling with the config's sampler."""

from __future__ import annotations

import torch
from conftest import BUNDLE_ROOT
from test_inferer import NoisyEchoNet

from bundle.evaluation.evaluate import read_config
from bundle.model.inferer import DiffusionEnsembleInferer
from bundle.model.reference import config_sampler, reference_sampler, sample_slices
from bundle.model.scheduler import DDIMScheduler
from bundle.preprocessing.slices import tissue_slices


def test_the_reference_runs_every_step_even_when_the_config_stops_early(tmp_path):
    """Adaptive stopping in the config applies to the few-step DDIM sampler, never to the DDPM reference."""
    (tmp_path / "adaptive.yaml").write_text("stop_tolerance: 0.1\n")
    parser = read_config(str(BUNDLE_ROOT), ["configs/inference.yaml", str(tmp_path / "adaptive.yaml")])
    parser["bundle_root"] = str(BUNDLE_ROOT)
    ddim, ddpm = config_sampler(parser, 5, 0.0), reference_sampler(parser, 1000)
    assert (ddim.stop_tolerance, ddim.num_inference_steps, ddim.eta) == (0.1, 5, 0.0)
    assert (ddpm.stop_tolerance, ddpm.num_inference_steps, ddpm.eta) == (0.0, 1000, 1.0)
    assert ddpm.num_samples == ddim.num_samples and ddpm.seed == ddim.seed


def test_slices_are_sampled_as_the_whole_volume_inferer_samples_them():
    """``sample_slices`` (the DDPM benchmark's and the sampler agreement's path) gives on the chosen slices what the
    whole-volume inferer gives there: same noise, same steps; another seed gives other samples."""
    volume = torch.rand(1, 32, 32, 5) + 0.5
    sampler = DiffusionEnsembleInferer(
        DDIMScheduler(prediction_type="sample"), num_samples=4, num_inference_steps=3, seed=3
    )
    whole = sampler(volume[None], NoisyEchoNet())[0]
    slices = tissue_slices(volume)
    sliced = sample_slices(sampler, volume, slices, NoisyEchoNet())  # (S, 2, H, W)
    torch.testing.assert_close(sliced, whole[..., slices].permute(3, 0, 1, 2))
    assert sliced[:, 1].amax() > 0  # the samples differ, so the check covers the uncertainty too
    sampler.seed = 4
    assert not torch.allclose(sample_slices(sampler, volume, slices, NoisyEchoNet()), sliced)
