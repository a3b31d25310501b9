"""Custom components of the discrepancy-conditioned diffusion lesion-segmentation bundle.

The configs in ``configs/`` are the pipeline; the subpackages hold the parts MONAI does not provide, by concern:

    inputs         datalists, DICOM series, input screening and output folders
    preprocessing  brain extraction, bias field, intensity normalisation, 2.5D slice stacks
    model          denoiser network, DDIM scheduler, inferers (sampling), precision, checkpoints, TorchScript export
    training       loss, batch preparation, lesion synthesis and the training augmentations
    outputs        per-case report and review flag, review PNG, batch review page
    evaluation     evaluate, cross-validation, benchmark
    deploy, label  MONAI Deploy app (DICOM in, DICOM SEG out) and MONAI Label app
    dev            developer experiments and one-off analyses (not part of the product; ``python -m bundle.dev``)

The top level keeps the command line (``__main__``) and what every part shares (``flags``, ``memory``).
Importing ``bundle`` imports the modules the configs name in ``$bundle.<...>`` expressions.
"""

import bundle.outputs.progress

bundle.outputs.progress.quiet_libraries(bundle.outputs.progress.debug_requested())  # before the libraries load

import bundle.flags  # noqa: F401, E402
import bundle.inputs.data  # noqa: F401, E402
import bundle.inputs.input_check  # noqa: F401, E402
import bundle.memory  # noqa: F401, E402
import bundle.model.checkpoint  # noqa: F401, E402
import bundle.model.inferer  # noqa: F401, E402
import bundle.model.network  # noqa: F401, E402
import bundle.model.scheduler  # noqa: F401, E402
import bundle.outputs.report  # noqa: F401, E402
import bundle.preprocessing.bias_field  # noqa: F401, E402
import bundle.preprocessing.brain_extraction  # noqa: F401, E402
import bundle.preprocessing.intensity  # noqa: F401, E402
import bundle.preprocessing.slices  # noqa: F401, E402
import bundle.training.augment  # noqa: F401, E402
import bundle.training.losses  # noqa: F401, E402
import bundle.training.prepare_batch  # noqa: F401, E402
import bundle.training.synthesis  # noqa: F401, E402
