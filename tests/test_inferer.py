"""DiffusionEnsembleInferer: reproducibility, encoder caching, skipping empty slices, output layout."""

from __future__ import annotations

import torch
from monai.data import MetaTensor

from bundle.export import load_network
from bundle.inferer import DiffusionEnsembleInferer
from bundle.intensity import normalize_to_tissue
from bundle.scheduler import DDIMScheduler
from bundle.slices import slice_stacks, stack_to_channels
from conftest import BUNDLE_ROOT, SAMPLE

import nibabel as nib
import pytest


@pytest.fixture(scope="module")
def network():
    net, _ = load_network(str(BUNDLE_ROOT))
    return net


@pytest.fixture(scope="module")
def volume():
    """A real 64 x 64 x 6 crop of the sample through the tumour, plus 2 empty slices: (1, 1, 64, 64, 8)."""
    data = torch.as_tensor(nib.load(SAMPLE).get_fdata(), dtype=torch.float32)[None]
    data = normalize_to_tissue(data)[:, 32:96, 32:96, 60:66]
    return torch.cat([data, torch.zeros(1, 64, 64, 2)], dim=-1)[None]


def make_inferer(**kwargs):
    args = dict(num_samples=3, num_inference_steps=3, seed=7, eta=0.0)
    args.update(kwargs)
    return DiffusionEnsembleInferer(DDIMScheduler(prediction_type="sample"), **args)


class NoisyEchoNet(torch.nn.Module):
    """Stand-in denoiser whose x0 estimate depends on x_t, so the seed of x_T shows in the output."""

    def encode_image(self, image):
        return image[:, :1]

    def denoise(self, x_t, timesteps, features):
        return torch.tanh(x_t + features)


def test_same_seed_gives_identical_output(network, volume):
    for eta in (0.0, 1.0):
        a = make_inferer(eta=eta)(volume, network)
        assert torch.equal(a, make_inferer(eta=eta)(volume, network))


def test_seed_controls_the_samples(volume):
    a = make_inferer()(volume, NoisyEchoNet())
    assert torch.equal(a, make_inferer()(volume, NoisyEchoNet()))
    assert not torch.equal(a, make_inferer(seed=8)(volume, NoisyEchoNet()))


def test_output_layout_and_ranges(network, volume):
    out = make_inferer()(MetaTensor(volume), network)
    assert isinstance(out, MetaTensor) and out.shape == (1, 2, 64, 64, 8)
    prob, unc = out[0, 0], out[0, 1]
    assert prob.min() >= 0 and prob.max() <= 1 and unc.min() >= 0 and unc.max() <= 0.5
    assert torch.count_nonzero(out[..., 6:]) == 0  # empty slices are skipped, not sampled


def test_image_encoder_runs_once_per_slice_not_per_step(network, volume):
    calls = {"encode": 0, "denoise": 0}

    class Counting(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def encode_image(self, x):
            calls["encode"] += x.shape[0]
            return self.net.encode_image(x)

        def denoise(self, x, t, f):
            calls["denoise"] += x.shape[0]
            return self.net.denoise(x, t, f)

    make_inferer(num_samples=4, num_inference_steps=5, slice_batch_size=4)(volume, Counting(network))
    assert calls == {"encode": 6, "denoise": 6 * 4 * 5}  # 6 tissue slices x N x K denoiser calls


def test_slice_stacks_match_training_layout():
    vol = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    stacks = slice_stacks(vol, torch.tensor([0, 2]), context_slices=1)
    assert stacks.shape == (2, 6, 3, 4)
    torch.testing.assert_close(stacks[1], stack_to_channels(vol[..., 1:4]))
    torch.testing.assert_close(stacks[0], stack_to_channels(vol[..., [0, 0, 1]]))  # edge slice repeated
