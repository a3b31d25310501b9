"""Overlay PNG for visual review: FLAIR with true (green) and predicted (red) lesion contours, and uncertainty."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def _contour(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def save_overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, uncertainty: np.ndarray, path: str) -> int:
    """Write two panels (contours | uncertainty heat map) of the slice with the most lesion; returns its index.

    The slice is taken along the last voxel axis of the input grid.
    """
    area = (truth | pred).sum(axis=(0, 1))
    index = int(area.argmax()) if area.any() else image.shape[-1] // 2
    flair = image[..., index].astype(np.float32)
    hi = np.percentile(flair, 99.5) or 1.0
    gray = (np.clip(flair / hi, 0, 1) * 255).astype(np.uint8)
    left = np.stack([gray] * 3, axis=-1)
    left[_contour(truth[..., index])] = (0, 255, 0)
    left[_contour(pred[..., index])] = (255, 0, 0)
    heat = np.clip(uncertainty[..., index] / 0.5, 0, 1)
    right = np.stack([gray * (1 - heat) + 255 * heat, gray * (1 - heat), gray * (1 - heat)], axis=-1).astype(np.uint8)
    panel = np.concatenate([np.rot90(left), np.rot90(right)], axis=1)  # side by side, first voxel axis across
    Image.fromarray(np.ascontiguousarray(panel)).resize((panel.shape[1] * 2, panel.shape[0] * 2), Image.NEAREST).save(path)
    return index
