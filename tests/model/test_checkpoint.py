"""Checkpoint checks give one line naming the file; the RNG state round-trips through a weights-only checkpoint."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from bundle.model.checkpoint import RNGState, check_checkpoint, load_weights


@pytest.fixture
def net():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a readable checkpoint"),
        (b"garbage" * 10, "not a readable checkpoint"),
        ("other", "does not match the network: 2 missing (e.g. 1.bias), 1 unexpected (e.g. extra)"),
        ("shape", "does not match the network: 1 of other shape (e.g. 0.weight)"),
        ("list", "holds list, expected a state dict"),
    ],
)
def test_bad_checkpoints_are_one_clear_line(tmp_path, net, content, problem):
    path = tmp_path / "ckpt.pt"
    state = net.state_dict()
    if content == "other":
        torch.save({"0.weight": state["0.weight"], "0.bias": state["0.bias"], "extra": torch.zeros(1)}, path)
    elif content == "shape":
        torch.save(dict(state, **{"0.weight": torch.zeros(5, 3)}), path)
    elif content == "list":
        torch.save([1, 2], path)
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as err:
        check_checkpoint(str(path), net)
    assert str(err.value).startswith(f"error: {path}: ") and problem in str(err.value) and "\n" not in str(err.value)


def test_good_and_nested_checkpoints_pass(tmp_path, net):
    torch.save(net.state_dict(), tmp_path / "a.pt")
    torch.save({"model": net.state_dict(), "rng": RNGState().state_dict()}, tmp_path / "b.pt")
    assert check_checkpoint(str(tmp_path / "a.pt"), net).endswith("a.pt")
    assert check_checkpoint(str(tmp_path / "b.pt"), net, key="model").endswith("b.pt")
    with pytest.raises(SystemExit, match="has no 'model' entry"):
        check_checkpoint(str(tmp_path / "a.pt"), net, key="model")
    with pytest.raises(SystemExit, match="checkpoint not found"):
        check_checkpoint(str(tmp_path / "none.pt"), net)


def test_load_weights_loads_checked_weights_in_eval_mode(tmp_path, net):
    trained = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    loaded = load_weights(fresh, str(tmp_path / "w.pt"))
    assert not loaded.training and torch.equal(loaded[2].weight, trained[2].weight)
    with pytest.raises(SystemExit, match="does not match the network"):
        load_weights(net, str(tmp_path / "w.pt"))  # other layout: one line, not a load_state_dict traceback


def test_rng_state_round_trip(tmp_path):
    state = RNGState()
    torch.save({"rng": state.state_dict()}, tmp_path / "r.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(1)  # move every generator on
    state.load_state_dict(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
