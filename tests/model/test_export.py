"""``python -m bundle export`` writes a TorchScript model that reloads and matches the eager network."""

from __future__ import annotations

import torch
from conftest import BUNDLE_ROOT, run_bundle

from bundle.model.export import example_inputs, load_network
from bundle.model.inferer import DiffusionEnsembleInferer
from bundle.model.network import DiscrepancyDiffusionSegNet
from bundle.model.scheduler import DDIMScheduler


def test_export_reloads_and_matches_eager(tmp_path):
    target = tmp_path / "model.ts"
    run_bundle("bundle", "export", "--output", str(target))
    traced = torch.jit.load(str(target))
    eager, _ = load_network(str(BUNDLE_ROOT))
    with torch.no_grad():
        for method, args in example_inputs(eager, height=48, width=56, batch=3).items():
            torch.testing.assert_close(getattr(traced, method)(*args), getattr(eager, method)(*args), rtol=1e-4, atol=1e-5)
    volume = torch.rand(1, 1, 32, 40, 3) * 1.5
    inferer = DiffusionEnsembleInferer(
        DDIMScheduler(prediction_type="sample"), num_samples=2, num_inference_steps=2, precision="fp32"
    )
    torch.testing.assert_close(inferer(volume, traced), inferer(volume, eager), rtol=1e-4, atol=1e-4)
    extra = {"metadata.json": ""}
    torch.jit.load(str(target), _extra_files=extra)
    assert b'"version"' in extra["metadata.json"]


def test_a_network_with_a_coarse_head_traces_its_head_and_samples_its_region_of_interest_alike():
    torch.manual_seed(0)
    eager = DiscrepancyDiffusionSegNet(feature_channels=8, encoder_channels=(8, 16), denoiser_channels=(8, 16),
                                       attention_levels=(False, False), norm_num_groups=4, coarse_head=True).eval()
    torch.nn.init.constant_(eager.coarse_head.bias, -1.0)  # a region of interest that is neither empty nor everything
    inputs = example_inputs(eager, height=32, width=32)
    assert "coarse_logits" in inputs
    with torch.no_grad():
        traced = torch.jit.trace_module(eager, inputs)
    volume = torch.rand(1, 1, 32, 32, 3) * 1.5
    inferer = DiffusionEnsembleInferer(DDIMScheduler(prediction_type="sample"), num_samples=2, num_inference_steps=2,
                                       precision="fp32", roi_threshold=0.3, roi_margin=1)
    torch.testing.assert_close(inferer(volume, traced), inferer(volume, eager), rtol=1e-4, atol=1e-4)
