"""Base of the random training transforms that change an (image, label) pair together."""

from __future__ import annotations

from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform


class RandImageLabeld(RandomizableTransform, MapTransform):
    """A random map transform on exactly two keys, (image key, label key), applied with probability ``prob``."""

    def __init__(self, keys: KeysCollection, prob: float) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image, label), got {self.keys}")
