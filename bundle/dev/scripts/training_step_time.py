"""Time of one training step of the diffusion network (batch 16 slice stacks of 96 x 96 x 3), fp32 against bf16
autocast and channels_last, medians after two warm-up steps; the data pipeline is not included.

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
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        x_t, target, _, kwargs = prepare(batch)
        if mode == "channels_last":
            x_t = x_t.contiguous(memory_format=torch.channels_last)
            kwargs["image"] = kwargs["image"].contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            value = loss(net(x_t, **kwargs), target)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


for mode in ("fp32", "bf16", "fp32", "bf16"):
    print(f"{mode}: {median_step(mode):.3f} s per step")
net.to(memory_format=torch.channels_last)
print(f"channels_last (fp32): {median_step('channels_last'):.3f} s per step")
