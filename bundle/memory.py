"""glibc allocator settings that keep freed memory in the process for reuse (Linux CPU inference speed).

Every denoising step frees and re-allocates activations of the same sizes. With glibc's defaults an allocation above
the mmap threshold is a fresh ``mmap`` whose pages the kernel zero-fills on first touch, and freeing memory at the
top of the heap beyond the trim threshold hands it back at once; on the 2-core CPU this kernel work took more time
than the model (``python -m bundle benchmark --modes "['default','default_glibc_defaults']"`` measures it).
``keep_freed_memory`` sets

    M_MMAP_THRESHOLD = 2**31 - 1   (every block below 2 GiB comes from the heap, not from its own mmap)
    M_TRIM_THRESHOLD = unlimited   (the heap is never shrunk while the process runs)

so the heap grows to the peak once and is reused by every later step and case. It changes where memory comes from,
not what is computed: outputs are bit-identical. The cost is that the peak (3.7 GB instead of 2.6 GB on a
182x218x182 volume) stays held until the process exits; ``keep_freed_memory: false`` in configs/inference.yaml
keeps glibc's defaults, for a long-lived host process that must give memory back between cases.
"""

from __future__ import annotations

import ctypes
import logging
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 2**31 - 1  # mallopt takes a C int
NEVER_TRIM = -1  # read by glibc as the largest size_t

logger = logging.getLogger(__name__)


def _glibc():
    """The C library when it is glibc (Linux), else None (macOS, Windows, musl: nothing to tune)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL("libc.so.6")


def keep_freed_memory(enabled: bool = True) -> bool:
    """Apply the settings above to this process when ``enabled`` and the C library is glibc; True when applied."""
    libc = _glibc() if enabled else None
    if libc is None:
        return False
    applied = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    if not applied:
        logger.warning("glibc refused the malloc settings of bundle.memory; inference runs with its defaults")
    return applied
