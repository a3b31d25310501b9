"""Time of one training step of the diffusion network (batch 16 slice stacks of 96 x 96 x 3), fp32 against bf16
autocast, each with and without channels_last, in interleaved rounds (medians after two warm-up steps per round);
the data pipeline is not included.

    .venv/bin/python bundle/dev/scripts/training_step_time.py [THREADS]

Run from the bundle root. Figures in docs/training.md ("Throughput").
"""

import sys
import time

import torch
from monai.bundle import ConfigParser

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
parser = ConfigParser()
parser.read_config("configs/train.yaml")
parser["bundle_root"] = "."
net, loss = parser.get_parsed_content("network"), parser.get_parsed_content("loss")
prepare, optimizer = parser.get_parsed_content("train#prepare_batch"), parser.get_parsed_content("optimizer")
batch = {"image": torch.randn(16, 3, 96, 96), "label": (torch.rand(16, 1, 96, 96) > 0.9).float()}


def median_step(mode: str, steps: int = 8) -> float:
    """``mode``: "fp32", "bf16" (autocast), "channels_last" (fp32) or "bf16_channels_last"."""
    nhwc = mode.endswith("channels_last")
    net.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        x_t, target, _, kwargs = prepare(batch)
        if nhwc:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
            kwargs["image"] = kwargs["image"].contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
            value = loss(net(x_t, **kwargs), target)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


MODES = ("fp32", "bf16", "channels_last", "bf16_channels_last")
results = {mode: [] for mode in MODES}
for _ in range(2):  # interleaved rounds, so a drift of the machine's speed hits every mode alike
    for mode in MODES:
        results[mode].append(median_step(mode))
for mode in MODES:
    print(f"{mode}: {min(results[mode]):.3f} s per step (best of the rounds' medians)")
