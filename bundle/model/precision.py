"""Numerical precision of inference: which autocast dtype to use on a device.

``"auto"`` picks bfloat16 where the hardware computes it natively (CUDA GPUs with bf16 support; CPUs with AVX512-BF16
or AMX) and float32 elsewhere, since emulated bf16 on an older CPU is slower than float32. The network output is
cast back to float32 before each DDIM step, so only the network's arithmetic changes (tests/model/test_inferer.py
holds the mask to Dice >= 0.99 against float32; ``python -m bundle benchmark --modes "['default','default_plain']"``
measures the speed).
"""

from __future__ import annotations

import torch
from monai.inferers import Inferer

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True if the CPU advertises AVX512-BF16 or AMX-BF16 (Linux ``/proc/cpuinfo`` flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The dtype to autocast the network to on ``device`` for ``precision``; None = plain float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device_type = torch.device(device).type
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device_type == "cpu" and cpu_has_native_bf16() else None


class AutocastInferer(Inferer):
    """Training forward pass under CPU bf16 autocast where the CPU computes bf16 natively (``autocast_dtype``).

    On the project's 2-core CPU (AMX) one training iteration of the diffusion network takes about half the time in
    bf16 (docs/training.md). On CUDA nothing changes here: MONAI's ``amp`` flag of the trainer handles it.
    The weights, the optimiser and the loss stay float32.
    """

    def __init__(self, precision: str = "auto") -> None:
        super().__init__()
        autocast_dtype(precision, "cpu")  # checks the name
        self.precision = precision

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs):
        dtype = autocast_dtype(self.precision, inputs.device) if inputs.device.type == "cpu" else None
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return network(inputs, *args, **kwargs)
