"""Three-plane review PNG: FLAIR with lesion contours (top row) and the uncertainty heat map (bottom row).

Panels are shown in radiological convention whatever the input orientation: the volume is reoriented to RAS by its
affine (``nibabel.orientations``), then axial and coronal show the patient's right on the viewer's left and
superior/anterior at the top; sagittal shows anterior on the left. Each panel is scaled to square millimetres.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import torch
from monai.transforms import MapTransform
from PIL import Image, ImageDraw
from scipy import ndimage

from bundle.inputs.data import case_name

PRED_COLOUR, TRUTH_COLOUR = (255, 40, 40), (40, 220, 40)
PANEL_MM = 1.0  # display pixel size
MAX_UNCERTAINTY = 0.5  # std of binary samples is at most 0.5: full red


def to_ras(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``volume`` with its voxel axes permuted and flipped to the closest RAS order."""
    return nib.orientations.apply_orientation(volume, nib.orientations.io_orientation(affine))


def ras_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes in mm along the RAS-ordered axes of ``to_ras``."""
    ornt = nib.orientations.io_orientation(affine)
    return np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[ornt[:, 0].astype(int).argsort()]


def _planes(volume: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal, sagittal slices of a RAS volume through ``centre``, as display arrays (row 0 at the top)."""
    i, j, k = centre
    return [volume[::-1, ::-1, k].T, volume[::-1, j, ::-1].T, volume[i, ::-1, ::-1].T]


def _plane_spacings(spacing: np.ndarray) -> list[tuple[float, float]]:
    """(row, column) pixel size in mm of each of ``_planes``."""
    sx, sy, sz = spacing
    return [(sy, sx), (sz, sx), (sz, sy)]


def _contour(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def review_centre(masks: list[np.ndarray], uncertainty: np.ndarray) -> tuple[int, int, int]:
    """Voxel the planes cross: centre of the largest lesion, else the most uncertain voxel, else the middle."""
    union = np.zeros(uncertainty.shape, bool)
    for mask in masks:
        union |= mask
    if union.any():
        labels, n = ndimage.label(union)
        largest = 1 + int(np.argmax(ndimage.sum_labels(union, labels, range(1, n + 1))))
        return tuple(int(round(c)) for c in ndimage.center_of_mass(labels == largest))
    if uncertainty.max() > 0:
        return tuple(int(c) for c in np.unravel_index(int(np.argmax(uncertainty)), uncertainty.shape))
    return tuple(s // 2 for s in uncertainty.shape)


def _heat(level: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """'Hot' colours (black-red-yellow-white) for ``level`` in [0, 1], over the dimmed FLAIR where it is low."""
    level = np.clip(level, 0, 1)
    hot = np.stack([np.clip(3 * level - k, 0, 1) for k in range(3)], axis=-1) * 255
    alpha = np.clip(4 * level, 0, 1)[..., None]
    return (0.4 * gray[..., None] * (1 - alpha) + hot * alpha).astype(np.uint8)


def _panel(rgb: np.ndarray, pixel_mm: tuple[float, float]) -> Image.Image:
    rows, cols = rgb.shape[:2]
    size = (max(1, round(cols * pixel_mm[1] / PANEL_MM)), max(1, round(rows * pixel_mm[0] / PANEL_MM)))
    return Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.NEAREST)


def save_review_png(
    image: np.ndarray,
    affine: np.ndarray,
    pred: np.ndarray,
    uncertainty: np.ndarray,
    path: str,
    title: str = "",
    truth: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """Write the three-plane PNG of one case; returns the RAS voxel the planes cross.

    ``image``, ``pred`` (bool), ``uncertainty`` and optional ``truth`` (bool) share one 3D grid with ``affine``.
    Top row: FLAIR with predicted (red) and true (green) contours; bottom row: uncertainty in 'hot' colours
    (dim FLAIR at 0, red, yellow, white at ``MAX_UNCERTAINTY``).
    """
    truth = np.zeros(np.shape(pred), bool) if truth is None else truth
    flair, pred, truth, uncertainty = (to_ras(np.asarray(v), affine) for v in (image, pred, truth, uncertainty))
    centre = review_centre([pred, truth], uncertainty)
    hi = float(np.percentile(flair, 99.5)) or 1.0
    top, bottom = [], []
    planes = zip(*(_planes(v, centre) for v in (flair, pred, truth, uncertainty)))
    for (flair_2d, pred_2d, truth_2d, unc_2d), pixel_mm in zip(planes, _plane_spacings(ras_spacing(affine))):
        gray = (np.clip(flair_2d / hi, 0, 1) * 255).astype(np.float32)
        contours = np.repeat(gray[..., None], 3, axis=-1).astype(np.uint8)
        contours[_contour(truth_2d.astype(bool))] = TRUTH_COLOUR
        contours[_contour(pred_2d.astype(bool))] = PRED_COLOUR
        heat_rgb = _heat(unc_2d / MAX_UNCERTAINTY, gray)
        top.append(_panel(contours, pixel_mm))
        bottom.append(_panel(heat_rgb, pixel_mm))
    header = 16
    width = sum(p.width for p in top) + 4 * (len(top) - 1)
    height = header + max(p.height for p in top) + 4 + max(p.height for p in bottom)
    sheet = Image.new("RGB", (width, height), (0, 0, 0))
    x = 0
    for t, b in zip(top, bottom):
        sheet.paste(t, (x, header))
        sheet.paste(b, (x, header + max(p.height for p in top) + 4))
        x += t.width + 4
    caption = f"{title}  (patient R on the left; top: lesion contours, bottom: uncertainty)"
    ImageDraw.Draw(sheet).text((2, 2), caption, fill=(255, 255, 255))
    sheet.save(path)
    return centre


class ReviewPNGd(MapTransform):
    """Write ``<output_dir>/<case>_review.png`` from the model's output on the preprocessed (RAS, head-cropped) grid.

    ``pred_key`` holds channel 0 = mean of the N soft masks (lesion where > 0.5), channel 1 = their std.
    """

    def __init__(self, output_dir: str, image_key: str = "image", pred_key: str = "pred") -> None:
        super().__init__(keys=[image_key, pred_key])
        self.output_dir, self.image_key, self.pred_key = output_dir, image_key, pred_key

    def __call__(self, data):
        image, pred = data[self.image_key], data[self.pred_key]
        case = case_name(image.meta.get("filename_or_obj", ""))
        prob, std = (torch.as_tensor(pred[c]).detach().float().cpu().numpy() for c in (0, 1))
        os.makedirs(self.output_dir, exist_ok=True)
        save_review_png(
            torch.as_tensor(image[0]).detach().float().cpu().numpy(),
            np.asarray(torch.as_tensor(image.affine).double().cpu()),
            prob > 0.5,
            std,
            os.path.join(self.output_dir, f"{case}_review.png"),
            title=case,
        )
        return data
