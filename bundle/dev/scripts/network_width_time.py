"""Cost of a wider diffusion network on the CPU: parameters, one training step (batch 16 slice stacks of 96 x 96 x 3,
bf16 autocast as ``train_precision: auto``) and one forward pass without gradient as sampling makes it (32 noisy masks
of 96 x 96 with their slice stacks, bf16), for the shipped widths (1x) and wider ones; medians of interleaved rounds after a
warm-up, so the ratios come from one run.

    .venv/bin/python bundle/dev/scripts/network_width_time.py [ROUNDS]

Run from the bundle root on an otherwise idle machine. Figures in docs/training.md ("A wider network").
"""

import statistics
import sys
import time

import torch
from monai.bundle import ConfigParser

WIDTHS = {"1x": 1.0, "1.5x": 1.5, "2x": 2.0}
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def build(factor: float):
    parser = ConfigParser()
    parser.read_config("configs/train.yaml")
    parser["bundle_root"] = "."
    for key in ("encoder_channels", "denoiser_channels"):
        parser[f"network_def#{key}"] = [int(c * factor) for c in parser[f"network_def#{key}"]]
    parser["network_def#feature_channels"] = int(parser["network_def#feature_channels"] * factor)
    net = parser.get_parsed_content("network")
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    return net, parser.get_parsed_content("loss"), parser.get_parsed_content("train#prepare_batch"), optimizer


def train_step(net, loss, prepare, optimizer, batch) -> float:
    start = time.perf_counter()
    x_t, target, _, kwargs = prepare(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(net(x_t, **kwargs), target)
    optimizer.zero_grad()
    value.backward()
    optimizer.step()
    return time.perf_counter() - start


def denoise_call(net, prepare, batch) -> float:
    x_t, _, _, kwargs = prepare(batch)
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        net(x_t, **kwargs)
    return time.perf_counter() - start


torch.manual_seed(0)
train_batch = {"image": torch.randn(16, 3, 96, 96), "label": (torch.rand(16, 1, 96, 96) > 0.9).float()}
infer_batch = {"image": torch.randn(32, 3, 96, 96), "label": (torch.rand(32, 1, 96, 96) > 0.9).float()}
nets = {name: build(factor) for name, factor in WIDTHS.items()}
times = {name: {"train": [], "infer": []} for name in nets}
for round_ in range(ROUNDS + 1):  # round 0: warm-up
    for name, (net, loss, prepare, optimizer) in nets.items():
        net.train()
        t = train_step(net, loss, prepare, optimizer, train_batch)
        net.eval()
        i = denoise_call(net, prepare, infer_batch)
        if round_:
            times[name]["train"].append(t)
            times[name]["infer"].append(i)
base = {k: statistics.median(times["1x"][k]) for k in ("train", "infer")}
print("| width | parameters | training step (s) | ratio | forward, no gradient (s) | ratio |")
print("|---|---|---|---|---|---|")
for name, (net, *_) in nets.items():
    params = sum(p.numel() for p in net.parameters())
    t, i = (statistics.median(times[name][k]) for k in ("train", "infer"))
    print(f"| {name} | {params / 1e6:.2f} M | {t:.3f} | {t / base['train']:.2f} | {i:.3f} | {i / base['infer']:.2f} |")
