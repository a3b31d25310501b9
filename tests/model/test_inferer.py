"""DiffusionEnsembleInferer: reproducibility, encoder caching, skipping empty slices, output layout."""

from __future__ import annotations

import nibabel as nib
import pytest
import torch
from conftest import BUNDLE_ROOT, SAMPLE
from monai.data import MetaTensor

from bundle.model.export import load_network
from bundle.model.inferer import DiffusionEnsembleInferer, SliceStackInferer
from bundle.model.scheduler import DDIMScheduler
from bundle.preprocessing.intensity import normalize_to_tissue
from bundle.preprocessing.slices import slice_stacks, stack_to_channels


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


def test_channels_last_is_the_same_arithmetic(network, volume):
    plain = make_inferer(channels_last=False, precision="fp32")(volume, network)
    fast = make_inferer(channels_last=True, precision="fp32")(volume, network)
    assert float((plain - fast).abs().max()) < 1e-4
    assert torch.equal(plain[:, 0] > 0.5, fast[:, 0] > 0.5)


def test_bf16_autocast_keeps_the_mask(network, volume):
    """Stated tolerance of the bf16 speed-up: mask Dice >= 0.99 against float32 (0.9994 on the whole sample)."""
    ref = make_inferer(precision="fp32", num_samples=4, num_inference_steps=4)(volume, network)[:, 0] > 0.5
    bf16 = make_inferer(precision="bf16", num_samples=4, num_inference_steps=4)(volume, network)[:, 0] > 0.5
    assert ref.sum() > 100, "the crop holds tumour, so the comparison means something"
    assert 2 * float((ref & bf16).sum()) / float(ref.sum() + bf16.sum()) >= 0.99


def test_precision_auto_uses_bf16_only_where_the_hardware_has_it(monkeypatch):
    import bundle.model.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.autocast_dtype("auto", "cpu") is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.autocast_dtype("auto", "cpu") is torch.bfloat16
    assert precision.autocast_dtype("fp32", "cpu") is None and precision.autocast_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        make_inferer(precision="fp16")


def test_network_still_trains_after_inference(volume):
    """Validation during training runs the inferer: the weights must not become inference-mode tensors."""
    net, _ = load_network(str(BUNDLE_ROOT))
    make_inferer(num_samples=1, num_inference_steps=1)(volume, net)
    x, t = torch.randn(2, 1, 32, 32), torch.tensor([10, 500])
    loss = net(x, t, torch.rand(2, 3, 32, 32), mask=torch.rand(2, 1, 32, 32))[0].square().mean()
    loss.backward()  # raised "Inference tensors cannot be saved for backward" when the layout changed in inference mode
    assert any(p.grad is not None for p in net.parameters())


class HalfSettledNet(torch.nn.Module):
    """Stand-in: 'no lesion' (x0 = -1, all samples agree) on dark slices; elsewhere x0 = sign(x_t), which keeps each
    sample's own random pattern to the end, so those samples never agree."""

    def __init__(self):
        super().__init__()
        self.denoised = 0

    def encode_image(self, image):
        return image[:, 1:2]  # the centre slice of the stack

    def denoise(self, x_t, timesteps, features):
        self.denoised += x_t.shape[0]
        dark = features.mean(dim=(1, 2, 3), keepdim=True) < 0.5
        return torch.where(dark, -torch.ones_like(x_t), torch.sign(x_t))


def sample_half_settled(num_samples: int, stop_tolerance: float) -> tuple[torch.Tensor, int]:
    """3 dark slices (samples agree) and 3 bright ones (they never do), K = 5: the output and the denoised count."""
    volume = torch.cat([torch.full((1, 1, 16, 16, 3), 0.3), torch.full((1, 1, 16, 16, 3), 1.0)], dim=-1)
    net = HalfSettledNet()
    inferer = make_inferer(num_samples=num_samples, num_inference_steps=5, tissue_threshold=0.2,
                           stop_tolerance=stop_tolerance)
    return inferer(volume, net), net.denoised


def test_adaptive_stopping_stops_only_settled_slices_and_changes_nothing_else():
    """Slices whose samples agree leave after step 2; the others get all K steps and the same result as without it."""
    (full, full_count), (adaptive, adaptive_count) = sample_half_settled(4, 0.0), sample_half_settled(4, 0.05)
    assert torch.equal(adaptive, full)
    assert full_count == 6 * 4 * 5
    assert adaptive_count == 3 * 4 * 2 + 3 * 4 * 5  # 3 dark slices stop after 2 of the 5 steps


def test_adaptive_stopping_needs_samples_to_agree():
    """With N = 1 there is no agreement to measure: every slice runs all K steps, as without adaptive stopping."""
    (full, full_count), (adaptive, adaptive_count) = sample_half_settled(1, 0.0), sample_half_settled(1, 0.05)
    assert torch.equal(adaptive, full)
    assert adaptive_count == full_count == 6 * 1 * 5


def test_adaptive_stopping_keeps_the_mask_of_the_shipped_model(network):
    """Stated tolerance: with tau = 0.1 the mask Dice against all K steps is >= 0.99 on real slices of the sample."""
    data = normalize_to_tissue(torch.as_tensor(nib.load(SAMPLE).get_fdata(), dtype=torch.float32)[None])
    volume = data[..., [30, 45, 62, 90]][None]  # two slices without and two with tumour
    ref = make_inferer(num_samples=4, num_inference_steps=5)(volume, network)[:, 0] > 0.5
    fast = make_inferer(num_samples=4, num_inference_steps=5, stop_tolerance=0.1)(volume, network)[:, 0] > 0.5
    assert ref.sum() > 500, "the tumour slices hold lesion, so the comparison means something"
    assert 2 * float((ref & fast).sum()) / float(ref.sum() + fast.sum()) >= 0.99
    with pytest.raises(ValueError, match="stop_tolerance"):
        make_inferer(stop_tolerance=0.5)


class LeftHalfNet(torch.nn.Module):
    """Marks the left half of every slice it is shown (first in-plane axis), whatever the image: not mirror-symmetric."""

    def encode_image(self, image):
        return image[:, :1]

    def denoise(self, x_t, timesteps, features):
        left = torch.arange(x_t.shape[-2], device=x_t.device)[:, None] < x_t.shape[-2] // 2
        return torch.where(left, 1.0, -1.0).expand_as(x_t).clone()


class CopyNet(NoisyEchoNet):
    """x0 = the image itself, voxel by voxel (a mirror-equivariant predictor)."""

    def denoise(self, x_t, timesteps, features):
        return features.clamp(-1, 1)


def test_mirror_averages_the_two_views_and_maps_masks_back(volume):
    """Odd samples see the mirrored slices: a predictor that marks 'the left half of what it sees' then marks the
    left half in even samples and, mapped back, the right half in odd ones (p = 0.5 everywhere, spread 0.5);
    a voxel-wise predictor gives the same result with and without mirroring; one sample is never mirrored."""
    plain = make_inferer(num_samples=4)(volume, LeftHalfNet())
    mirrored = make_inferer(num_samples=4, mirror=True)(volume, LeftHalfNet())
    tissue = plain[0, 0].amax(dim=(0, 1)) > 0  # slices that were predicted (the 2 empty ones stay 0)
    assert torch.equal(plain[0, 0, :32][..., tissue], torch.ones(32, 64, int(tissue.sum())))
    torch.testing.assert_close(mirrored[0, 0][..., tissue], torch.full((64, 64, int(tissue.sum())), 0.5))
    torch.testing.assert_close(mirrored[0, 1][..., tissue], torch.full((64, 64, int(tissue.sum())), 0.5))
    torch.testing.assert_close(
        make_inferer(num_samples=4, mirror=True)(volume, CopyNet()), make_inferer(num_samples=4)(volume, CopyNet()))
    one = make_inferer(num_samples=1, mirror=True)(volume, LeftHalfNet())  # one sample: nothing to mirror
    assert torch.equal(one, make_inferer(num_samples=1)(volume, LeftHalfNet()))


def test_baseline_mirror_averages_the_view_and_the_mirrored_view(volume):
    """A 'network' that is confident on the left half of what it sees gives p = 0.5 everywhere once mirrored back."""

    class LeftHalfLogits(torch.nn.Module):
        def forward(self, stacks):
            return 20.0 * LeftHalfNet().denoise(stacks[:, :1], None, None)

    left_half_logits = LeftHalfLogits()
    plain = SliceStackInferer(context_slices=1)(volume, left_half_logits)
    mirrored = SliceStackInferer(context_slices=1, mirror=True)(volume, left_half_logits)
    tissue = plain[0, 0].amax(dim=(0, 1)) > 0
    assert plain[0, 0, :32][..., tissue].min() > 0.99 and plain[0, 0, 32:][..., tissue].max() < 0.01
    torch.testing.assert_close(mirrored[0, 0][..., tissue], torch.full((64, 64, int(tissue.sum())), 0.5))


class PointwiseNet(torch.nn.Module):
    """A 'network' whose output at a pixel depends on that pixel only, so tiling must not change it."""

    def forward(self, stacks):
        return 3 * stacks[:, 1:2] - 1


def test_tiles_cover_every_pixel_and_blend_back_exactly(volume):
    whole = SliceStackInferer(channels_last=False)(volume, PointwiseNet())
    for tile_size, overlap in ((24, 0.25), (40, 0.5), (96, 0.25)):  # smaller and larger than the 64 x 64 slices
        tiled = SliceStackInferer(channels_last=False, tile_size=tile_size, tile_overlap=overlap)(volume, PointwiseNet())
        torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiles_give_the_network_the_training_field_of_view(network, volume):
    """Each denoiser call sees tile x tile inputs; the output keeps its layout, ranges and determinism."""
    sizes = []
    original = network.denoise

    def spy(x_t, timesteps, features):
        sizes.append(tuple(x_t.shape[-2:]))
        return original(x_t, timesteps, features)

    network.denoise = spy
    try:
        out = make_inferer(tile_size=32)(volume, network)
    finally:
        network.denoise = original
    assert set(sizes) == {(32, 32)}
    assert out.shape == (1, 2, 64, 64, 8) and 0 <= out.min() and out[:, 0].max() <= 1 and out[:, 1].max() <= 0.5
    assert torch.equal(out, make_inferer(tile_size=32)(volume, network))
    assert not torch.equal(out, make_inferer()(volume, network))  # whole slices: other statistics, other masks
    with pytest.raises(ValueError, match="tile_size"):
        make_inferer(tile_size=-1)


def test_slice_batch_size_changes_memory_not_samples(network):
    """x_T is drawn slice after slice whatever the batching, so 1 or 4 slices per batch (96 x 96 tiles, adaptive
    stopping on) give the same samples: equal up to float arithmetic that depends on the batch, and the same mask."""
    data = normalize_to_tissue(torch.as_tensor(nib.load(SAMPLE).get_fdata(), dtype=torch.float32)[None])
    volume = data[..., [45, 62, 70, 90]][None]  # whole 128 x 128 slices: 4 tiles each
    settings = {"num_samples": 4, "num_inference_steps": 5, "stop_tolerance": 0.1, "tile_size": 96}
    one, four = (make_inferer(slice_batch_size=b, **settings)(volume, network) for b in (1, 4))
    torch.testing.assert_close(one, four, atol=1e-4, rtol=0)
    assert torch.equal(one[:, 0] > 0.5, four[:, 0] > 0.5) and (one[:, 0] > 0.5).sum() > 500
    assert not torch.equal(one, make_inferer(slice_batch_size=1, **{**settings, "seed": 8})(volume, network))


class CoarseEchoNet(NoisyEchoNet):
    """NoisyEchoNet with a coarse head that sees candidates where the first image channel exceeds ``level``; counts
    the denoised masks."""

    def __init__(self, level: float) -> None:
        super().__init__()
        self.level, self.denoised = level, 0

    def encode_image(self, image):
        return image[:, image.shape[1] // 2 :][:, :1]  # the slice itself, not a neighbour

    def coarse_logits(self, features):
        return 50.0 * (features - self.level)

    def denoise(self, x_t, timesteps, features):
        self.denoised += x_t.shape[0]
        return super().denoise(x_t, timesteps, features)


def test_region_of_interest_bounds_the_sampling_and_skips_slices_without_candidates():
    volume = torch.zeros(1, 1, 32, 32, 4)
    volume[..., :3] = 0.5  # tissue on slices 0-2
    volume[0, 0, 10:14, 10:14, 1] = 1.5  # a bright spot on slice 1 only
    net = CoarseEchoNet(level=1.0)
    out = make_inferer(roi_threshold=0.5, roi_margin=2)(volume, net)
    roi = torch.zeros(32, 32, 4, dtype=torch.bool)
    roi[8:16, 8:16, 1] = True  # the spot dilated by 2 pixels
    assert (out[0, :, ~roi] == 0).all() and (out[0, 0, roi] > 0).any()
    assert net.denoised == 3 * 3  # one slice sampled (N = 3, K = 3), not three
    everywhere = CoarseEchoNet(level=1.0)
    make_inferer()(volume, everywhere)
    assert everywhere.denoised == 3 * 3 * 3
    # no candidates anywhere: nothing sampled, all zero
    none = CoarseEchoNet(level=9.0)
    assert not make_inferer(roi_threshold=0.5)(volume, none).any() and none.denoised == 0
    with pytest.raises(ValueError, match="roi_threshold"):
        make_inferer(roi_threshold=1.5)


def test_coarse_head_inferer_is_the_sigmoid_of_the_head(volume):
    from bundle.model.inferer import CoarseHeadInferer

    net = CoarseEchoNet(level=1.0)
    out = CoarseHeadInferer()(volume, net)
    stacks = volume[0, :, :, :, :6]
    expected = torch.sigmoid(50.0 * (stacks[0] - 1.0))
    assert torch.allclose(out[0, 0, :, :, :6], expected, atol=1e-6) and not out[0, 1].any()


def test_tissue_boxes_tile_only_the_tissue_and_keep_the_result_inside_it():
    """``tile_box``: a slice whose tissue fits one tile is sampled in one window instead of four (the denoiser sees
    fewer masks), the box is grown by the margin and to one tile within the slice, p = sigma = 0 outside it, and
    inside a box that holds the whole slice the result is the plain tiling's."""
    volume = torch.zeros(1, 1, 150, 140, 3)
    volume[0, 0, 30:80, 50:90, :] = 1.0 + 0.1 * torch.rand(50, 40, 3)  # tissue fits one 96 x 96 tile
    plain, boxed = CoarseEchoNet(level=9.0), CoarseEchoNet(level=9.0)
    settings = {"num_samples": 2, "num_inference_steps": 2, "tile_size": 96}
    make_inferer(**settings)(volume, plain)
    cut = make_inferer(tile_box=4, **settings)(volume, boxed)
    assert boxed.denoised * 4 == plain.denoised  # 1 window per slice instead of 2 x 2
    inferer = make_inferer(tile_box=4, **settings)
    stacks = volume[0].permute(3, 0, 1, 2)[:1].repeat(1, 3, 1, 1)
    (rows, cols), = inferer.tissue_boxes(stacks)
    assert (rows.start, rows.stop) == (7, 103) and (cols.start, cols.stop) == (22, 118)  # centred, one tile
    outside = torch.ones(150, 140, dtype=torch.bool)
    outside[rows, cols] = False
    assert not cut[0, :, outside].any() and cut[0, 0].amax() > 0
    assert inferer.tissue_boxes(torch.zeros(1, 3, 150, 140)) == [None]
    near_edge = torch.zeros(1, 3, 150, 140)
    near_edge[:, :, 140:, 130:] = 1.0
    (rows, cols), = inferer.tissue_boxes(near_edge)
    assert (rows.start, rows.stop) == (54, 150) and (cols.start, cols.stop) == (44, 140)  # moved back inside
    whole = torch.ones(1, 1, 150, 140, 2)
    torch.testing.assert_close(make_inferer(tile_box=4, **settings)(whole, CoarseEchoNet(level=9.0)),
                               make_inferer(**settings)(whole, CoarseEchoNet(level=9.0)))
