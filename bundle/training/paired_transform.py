"""Base of the random training transforms that change an (image, label) pair together."""

from __future__ import annotations

from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform


class RandImageLabeld(RandomizableTransform, MapTransform):
    """A random map transform on exactly two keys, (image key, label key), applied with probability ``prob``.

    Subclasses implement ``apply(d, image_key, label_key)``: the changed copy ``d`` of the data dictionary, called
    after ``randomize`` when the transform is drawn to happen.
    """

    def __init__(self, keys: KeysCollection, prob: float) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image, label), got {self.keys}")

    def apply(self, d: dict, image_key, label_key) -> dict:
        raise NotImplementedError

    def __call__(self, data):
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        image_key, label_key = self.keys
        return self.apply(d, image_key, label_key)
