"""The network's encoder normalisation switch keeps the shipped weights loadable and changes only the encoders."""

from __future__ import annotations

import torch
from conftest import BUNDLE_ROOT
from torch import nn

from bundle.model.network import DiscrepancyDiffusionSegNet

SHIPPED = dict(encoder_channels=[16, 32, 64], denoiser_channels=[16, 32, 64], norm_num_groups=8)  # configs/*.yaml


def norm_types(module: nn.Module) -> set[type]:
    return {type(m) for m in module.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm))}


def test_default_encoder_norm_is_the_shipped_instance_norm():
    net = DiscrepancyDiffusionSegNet(**SHIPPED)
    net.load_state_dict(torch.load(BUNDLE_ROOT / "models" / "model.pt", weights_only=True))  # strict: same layout
    assert norm_types(net.image_encoder) == norm_types(net.mask_encoder) == {nn.InstanceNorm2d}


def test_batch_norm_encoders_train_and_infer():
    net = DiscrepancyDiffusionSegNet(**SHIPPED, encoder_norm="batch")
    assert norm_types(net.image_encoder) == norm_types(net.mask_encoder) == {nn.BatchNorm2d}
    assert norm_types(net.denoiser) == {nn.GroupNorm}  # the denoiser is untouched
    image = torch.randn(4, 3, 32, 32)
    before = net.image_encoder.model[0].conv.unit0.adn.N.running_mean.clone()
    net.train()
    net.encode_image(image)
    assert not torch.equal(net.image_encoder.model[0].conv.unit0.adn.N.running_mean, before)  # statistics learnt
    net.eval()
    one = net.encode_image(image[:1])
    torch.testing.assert_close(one, net.encode_image(image)[:1])  # eval: no dependence on the rest of the batch
