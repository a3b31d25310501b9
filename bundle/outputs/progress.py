"""What a batch prints: one progress bar over the cases (elapsed time, estimate of what is left) and one line per
finished case (name, lesion count, lesion volume, review flag), instead of library warnings and engine logs.

``quiet_libraries`` runs when ``bundle`` is imported (the config's ``imports``), unless the command line says
``--debug true``: it hides library warnings that mean nothing to a user (deprecations, a missing optional GPU
DICOM decoder). ``BatchProgress`` is an ignite handler of the inference config; with it the evaluator's own INFO
log lines are hidden too (``--debug true`` keeps them). MONAI's notice that a config is executed as code is printed
by ``monai.bundle run`` itself before the bundle's code runs, and stays: it is a security notice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

from tqdm import tqdm

from bundle.inputs.data import case_name

NOISY_LOGGERS = ("monai.data.nvimgcodec_pydicom_plugin",)


def debug_requested(argv: list[str] | None = None) -> bool:
    """Whether the command line has ``--debug`` followed by a true value (or ``--debug`` last / ``--debug=true``)."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--debug":
            return i + 1 == len(argv) or argv[i + 1].lower() in ("true", "1", "yes")
        if arg.startswith("--debug="):
            return arg.split("=", 1)[1].lower() in ("true", "1", "yes")
    return False


def quiet_libraries(debug: bool = False) -> None:
    """Hide the library warnings and log lines of ``NOISY_LOGGERS`` that mean nothing to a user; ``debug``: keep all."""
    if debug:
        return
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def case_line(report: dict, case: str) -> str:
    """One line per finished case: name, lesion count, volume, review flag."""
    flag = "REVIEW REQUIRED" if report.get("review_required") else "no review flag"
    return f"{case}: {report.get('lesion_count', 0)} lesions, {report.get('lesion_volume_ml', 0.0):.1f} mL, {flag}"


class BatchProgress:
    """Ignite handler: a tqdm bar over the batch's cases and one ``case_line`` per finished case, read from the
    report the case published in ``output_dir``; ``debug`` false also hides the engine's INFO lines."""

    def __init__(self, output_dir: str, debug: bool = False, file=None) -> None:
        self.output_dir, self.debug, self.file = output_dir, debug, file
        self.bar = None

    def attach(self, engine) -> None:
        from ignite.engine import Events

        if not self.debug:
            engine.logger.setLevel(logging.WARNING)
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.case_done)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine) -> None:
        self.bar = tqdm(total=engine.state.epoch_length, unit="case", desc="cases", file=self.file or sys.stderr,
                        dynamic_ncols=True)

    def case_done(self, engine) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        for output in outputs:
            case = case_name(output["image"].meta.get("filename_or_obj", ""))
            path = os.path.join(self.output_dir, f"{case}_report.json")
            report = {}
            if os.path.isfile(path):
                with open(path) as f:
                    report = json.load(f)
            self.bar.write(case_line(report, case), file=self.file or sys.stderr)
            self.bar.update(1)

    def completed(self, engine) -> None:
        if self.bar is not None:
            self.bar.close()
