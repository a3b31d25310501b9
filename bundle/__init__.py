"""Custom components of the discrepancy-conditioned diffusion lesion-segmentation bundle.

The configs in ``configs/`` are the pipeline; these modules hold the parts MONAI does not provide.
"""

from bundle import (  # noqa: F401
    augment,
    bias_field,
    brain_extraction,
    checkpoint,
    data,
    flags,
    inferer,
    input_check,
    intensity,
    losses,
    memory,
    network,
    prepare_batch,
    report,
    scheduler,
    slices,
    synthesis,
)
