"""Time of each stage of the inference path, measured inside one run of the unchanged inference config.

The benchmark wraps, for the duration of one run, the calls the config makes anyway: every top-level transform of
the pre- and postprocessing (MONAI's ``apply_transform``; a transform called inside another, e.g. the inverses
``Invertd`` runs, counts as its caller), the inferer's ``__call__`` and the input check. Each call's wall time is
added to the stage of ``STAGES`` that its transform's class belongs to:

    t_stage = sum over calls c of a transform in that stage of (end_c - start_c)

What no stage covers (interpreter start, imports, config parsing, building the network, reading the weights,
the data loader) is ``startup`` = whole wall time of the process - sum of the stages; the benchmark measures the
whole time from outside the process.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

# transform or function name -> stage; in the order the stages are reported
STAGES = {
    "screen_datalist": "input check",
    "LoadImaged": "loading",
    "EnsureChannelFirstd": "loading",
    "Orientationd": "reorientation and resampling",
    "Spacingd": "reorientation and resampling",
    "BrainExtractiond": "brain extraction",
    "N4BiasFieldCorrectiond": "bias field",
    "Identityd": "bias field",
    "GaussianSmoothd": "smoothing, scaling, cropping",
    "NormalizeToTissued": "smoothing, scaling, cropping",
    "CropForegroundd": "smoothing, scaling, cropping",
    "DivisiblePadd": "smoothing, scaling, cropping",
    "EnsureTyped": "smoothing, scaling, cropping",
    "inferer": "sampling",
    "ReviewPNGd": "review PNG",
    "MaskOutsideBraind": "inversion",
    "Invertd": "inversion",
    "SplitDimd": "inversion",
    "CopyItemsd": "inversion",
    "AsDiscreted": "inversion",
    "LesionReportd": "report",
    "SaveImaged": "writing",
    "PublishCased": "writing",
}
ORDER = ("startup", *dict.fromkeys(STAGES.values()), "other")


def stage_of(function) -> str:
    """The stage of a transform, its bound method (e.g. ``inverse``) or a function: ``STAGES`` by class name."""
    owner = getattr(function, "__self__", function)
    name = getattr(owner, "__name__", None) or type(owner).__name__
    return STAGES.get(name, STAGES.get(type(owner).__name__, "other"))


class StageTimer:
    """Adds the wall time of wrapped calls to their stage; calls made inside a timed call count as the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.called: dict[str, set[str]] = defaultdict(set)  # stage -> class names of what was timed there
        self._depth = 0

    def wrap(self, function, stage: str | None = None):
        """``function`` timed as ``stage`` (default: ``stage_of`` its first argument, the transform applied)."""

        def timed(*args, **kwargs):
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                name = stage or stage_of(args[0])
                self.seconds[name] += time.perf_counter() - start
                self.called[name].add(type(getattr(args[0], "__self__", args[0])).__name__)
                self._depth -= 1

        return timed

    @contextlib.contextmanager
    def installed(self):
        """Wrap MONAI's ``apply_transform`` (as Compose calls it), the inferers and the input check while inside."""
        import monai.transforms.compose as compose

        import bundle.inputs.input_check as input_check
        from bundle.model.inferer import TissueSliceInferer

        originals = [
            (compose, "apply_transform", compose.apply_transform),
            (TissueSliceInferer, "__call__", TissueSliceInferer.__call__),
            (input_check, "screen_datalist", input_check.screen_datalist),
        ]
        compose.apply_transform = self.wrap(compose.apply_transform)
        TissueSliceInferer.__call__ = self.wrap(TissueSliceInferer.__call__, "sampling")
        input_check.screen_datalist = self.wrap(input_check.screen_datalist, "input check")
        try:
            yield self
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)

    def report(self, total: float) -> dict[str, float]:
        """Seconds per stage in ``ORDER``, with ``startup`` = ``total`` - the timed stages."""
        stages = dict(self.seconds)
        stages["startup"] = total - sum(stages.values())
        return {name: round(stages[name], 3) for name in ORDER if name in stages}
