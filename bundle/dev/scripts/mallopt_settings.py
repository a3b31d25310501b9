"""The README inference command under other glibc malloc settings.

    MALLOPT=MMAP_THRESHOLD,TRIM_THRESHOLD,TOP_PAD /usr/bin/time -f "%e s wall, %S s system, %R minor faults" \\
        python bundle/dev/scripts/mallopt_settings.py OUTPUT_DIR

calls ``mallopt`` with the three values (C ints; -1 = unlimited) and then runs
``python -m monai.bundle run --config_file configs/inference.yaml --output_dir OUTPUT_DIR --keep_freed_memory false``
in this process (``keep_freed_memory: false`` so that the config does not override the values under test). Without
``MALLOPT`` nothing is changed: glibc's defaults. Run from the bundle root.
"""

import ctypes
import os
import runpy
import sys

# glibc malloc.h; not imported from bundle.memory, because importing the bundle loads torch before mallopt runs
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3

if os.environ.get("MALLOPT"):
    libc = ctypes.CDLL("libc.so.6")
    mmap_threshold, trim_threshold, top_pad = (int(v) for v in os.environ["MALLOPT"].split(","))
    for param, value in ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad)):
        if libc.mallopt(param, value) != 1:
            sys.exit(f"mallopt({param}, {value}) refused")
sys.argv = ["monai.bundle", "run", "--config_file", "configs/inference.yaml", "--output_dir", sys.argv[1],
            "--keep_freed_memory", "false"]
runpy.run_module("monai.bundle", run_name="__main__")
