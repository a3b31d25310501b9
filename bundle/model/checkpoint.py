"""Checkpoint checks and the RNG state that resumable training saves next to model, optimiser and trainer."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from bundle.inputs.input_check import reason


class RNGState:
    """Python, NumPy and torch RNG states as a checkpointable object (``state_dict`` / ``load_state_dict``)."""

    def state_dict(self) -> dict:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return {  # plain containers and tensors only, so the checkpoint loads with weights_only=True
            "python": random.getstate(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict) -> None:
        random.setstate(state["python"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def check_checkpoint(path: str, network: torch.nn.Module, key: str | None = None) -> str:
    """Make sure ``path`` loads and its weights (``state[key]`` if ``key``) fit ``network``; else ``SystemExit``.

    The message is one line naming the file and the problem (unreadable, wrong content, missing or unexpected
    parameters, wrong shapes), instead of a traceback from deep inside ``torch.load``/``load_state_dict``.
    """
    checked_state(path, network, key)
    return path


def checked_state(path: str, network: torch.nn.Module, key: str | None = None, missing_ok: str = "") -> dict:
    """The state dict in ``path`` (``state[key]`` if ``key``), read once and checked as ``check_checkpoint`` says;
    parameters of ``network`` whose names start with ``missing_ok`` (e.g. "coarse_head") may be absent."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean the same to the user
        raise SystemExit(f"error: {path}: not a readable checkpoint ({reason(exc)})") from None
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise SystemExit(f"error: {path}: checkpoint has no '{key}' entry (a full training checkpoint is needed)")
        state = state[key]
    if not isinstance(state, dict):
        raise SystemExit(f"error: {path}: checkpoint holds {type(state).__name__}, expected a state dict")
    expected = network.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not (missing_ok and k.startswith(missing_ok)))
    unexpected = sorted(set(state) - set(expected))
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(shapes)} of other shape (e.g. {shapes[0]})" if shapes else ""]
        raise SystemExit(f"error: {path}: checkpoint does not match the network: " + ", ".join(p for p in parts if p))
    return state


def load_weights(network: torch.nn.Module, path: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """``network`` with the state dict in ``path`` (checked by ``check_checkpoint``) on ``device``, in eval mode."""
    network.load_state_dict(checked_state(path, network))  # the file is read once
    return network.to(device).eval()


def load_torchscript(path: str, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The traced network in ``path`` (``python -m bundle export``), in eval mode; one-line ``SystemExit`` if unusable."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path}: TorchScript model not found (create it with `python -m bundle export`)")
    try:
        network = torch.jit.load(path, map_location=device)
    except Exception as exc:  # torch raises RuntimeError/ValueError for files that are not TorchScript archives
        raise SystemExit(f"error: {path}: not a readable TorchScript model ({reason(exc)})") from None
    for method in ("encode_image", "denoise"):
        if not hasattr(network, method):
            raise SystemExit(f"error: {path}: TorchScript model lacks the '{method}' method the inferer calls")
    return network.eval()
