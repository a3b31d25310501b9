"""Resident memory through the default inference path, per denoiser batch (how the CPU slice batch size was chosen).
Run from the bundle root with ../shared beside it:

    python bundle/dev/scripts/rss_trace.py '{"stop_tolerance": 0.0}'      # config overrides as JSON ('{}': the default)

Runs the default path twice in one process (the first run is the benchmark's warm-up) on the benchmark's default
input (``bundle.evaluation.benchmark.DEFAULT_INPUT``, the 1 mm MS scan) and prints one JSON line: for each ``DiffusionEnsembleInferer.predict`` call its input windows and the RSS before it, the highest
RSS seen inside it (sampled every 5 ms) and after it, and the process's peak RSS (getrusage).
"""

import json
import resource
import sys
import threading
import time

from bundle.evaluation import benchmark
from bundle.model.inferer import DiffusionEnsembleInferer


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))


def main(settings: dict) -> None:
    highest, calls = [0.0], []

    def watch():
        while True:
            highest[0] = max(highest[0], rss_mb())
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    predict = DiffusionEnsembleInferer.predict

    def traced(self, stacks, network, generator):
        before = highest[0] = rss_mb()
        out = predict(self, stacks, network, generator)
        calls.append({"windows": stacks.shape[0], "before_mb": round(before), "inside_mb": round(highest[0]),
                      "after_mb": round(rss_mb())})
        return out

    DiffusionEnsembleInferer.predict = traced
    for run in range(2):
        calls.append({"run": run, "rss_mb": round(rss_mb())})
        benchmark._run_default(benchmark._parser(".", "cpu"), benchmark.DEFAULT_INPUT, "cpu", settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"settings": settings, "calls": calls, "peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))
