"""Let the PyPI (CUDA-built) torchvision wheel import on CPU-only torch.

Its _C.so links libtorch_cuda.so and cannot load; torchvision then still registers fake kernels
for torchvision::nms/qnms unconditionally, which fails because the ops were never defined.
Defining the two schemas before torchvision is imported makes `import torchvision` work
(pure-python parts: utils, transforms, models; the C++ ops such as nms stay unavailable).
"""
import importlib.abc
import sys


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        for op in ("nms", "qnms"):
            try:
                schema = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
                torch.library.define(f"torchvision::{op}", schema)
            except RuntimeError:
                pass  # already defined (e.g. a working _C was loaded)
        return None  # let the normal finders import torchvision


sys.meta_path.insert(0, _Hook())
