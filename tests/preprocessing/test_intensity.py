"""Intensity scaling: the parenchyma of a head with skull, scalp and CSF lands at 1 with the histogram peak."""

from __future__ import annotations

import pytest
import torch

from bundle.preprocessing.intensity import NormalizeToTissued, normalize_to_tissue


def head(with_skull: bool) -> torch.Tensor:
    """A (1, 40, 40, 40) volume: air 0, parenchyma ~ N(200, 10), plus (with skull) 20 % CSF/scalp at 60-140."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(1, 40, 40, 40)
    x[:, 5:35, 5:35, 5:35] = 200 + 10 * torch.randn(1, 30, 30, 30, generator=g)
    if with_skull:  # a low-intensity shell: above the volume mean, so it counts as "tissue" for the median
        shell = torch.zeros(40, 40, 40, dtype=torch.bool)
        shell[5:35, 5:35, 5:35] = True
        shell[9:31, 9:31, 9:31] = False
        x[0][shell] = 60 + 80 * torch.rand(int(shell.sum()), generator=g)
    return x


def parenchyma_level(x: torch.Tensor) -> float:
    return float(x[0, 15:25, 15:25, 15:25].median())


def test_mode_puts_parenchyma_at_one_with_or_without_skull():
    for with_skull in (False, True):
        assert parenchyma_level(normalize_to_tissue(head(with_skull), method="mode")) == pytest.approx(1.0, abs=0.03)


def test_median_is_pulled_down_by_skull_and_csf():
    """The failure mode "mode" fixes: with skull the median scaling makes normal parenchyma look bright."""
    assert parenchyma_level(normalize_to_tissue(head(False))) == pytest.approx(1.0, abs=0.03)
    assert parenchyma_level(normalize_to_tissue(head(True))) > 1.1


def test_scale_invariance_and_method_check():
    x = head(True)
    torch.testing.assert_close(normalize_to_tissue(x, method="mode"), normalize_to_tissue(7.5 * x, method="mode"))
    with pytest.raises(ValueError, match="method must be one of"):
        NormalizeToTissued(keys="image", method="mean")
