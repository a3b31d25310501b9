"""Healthy MNI-space brains with FLAIR-like contrast, as training anatomy for synthetic MS lesions.

Without them the synthetic MS lesions of the 0.4.0 weights' recipe land only on glioma brains. Here a real healthy brain T1 in MNI space (default: Colin27, ``ch2bet`` of Debian's ``mricron-data``) gets a
FLAIR-like contrast by a piecewise-linear map of its T1 intensity t through the CSF, grey- and white-matter peaks of
its histogram (p_csf < p_gm < p_wm):

    f(t) = interp(t, [0, p_csf, p_gm, p_wm, max t], [c, c, g, 1, 1]) + n,    n ~ N(0, noise_std^2),    0 outside the brain

with grey-to-white-matter ratio g > 1 and CSF-to-white-matter ratio c < 1 (CSF is dark on FLAIR, grey matter a
little brighter than white matter). Each (g, c) gives one case with an empty label: the brain is healthy, so every
lesion on it in training is a synthetic one (``bundle.training.synthesis.SynthesizeLesionsd``), at the real MNI location of
the real lesion mask.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import nibabel as nib
import numpy as np

from bundle.inputs.data import training_datalist
from bundle.training.head_shell import COLIN27_BRAIN

COLIN27_PEAKS = (30.0, 85.0, 113.0)  # CSF, grey and white matter peaks of ch2bet's T1 histogram (1-unit bins)
CONTRASTS = ((1.12, 0.30), (1.22, 0.20), (1.30, 0.45))  # (g, c): grey/white and CSF/white ratios, one case each


def pseudo_flair(
    t1: np.ndarray, peaks: Sequence[float], gm_ratio: float, csf_ratio: float, noise_std: float = 0.05, seed: int = 0
) -> np.ndarray:
    """FLAIR-like image (white matter = 100) of a skull-stripped T1; voxels <= 0 (outside the brain) stay 0."""
    csf, gm, wm = peaks
    if not 0 < csf < gm < wm:
        raise ValueError(f"peaks must be increasing CSF < grey < white matter T1 intensities, got {tuple(peaks)}")
    top = max(float(t1.max()), wm)
    flair = np.interp(t1, [0, csf, gm, wm, top], [csf_ratio, csf_ratio, gm_ratio, 1.0, 1.0])
    flair = flair + noise_std * np.random.default_rng(seed).standard_normal(t1.shape)
    return (np.where(t1 > 0, np.clip(flair, 0, None), 0) * 100).astype(np.float32)


def healthy_cases(
    output_dir: str,
    t1: str = COLIN27_BRAIN,
    peaks: Sequence[float] = COLIN27_PEAKS,
    contrasts: Sequence[Sequence[float]] = CONTRASTS,
    datalist: str | None = None,
) -> list[dict]:
    """Write one pseudo-FLAIR per contrast and their shared empty label to ``output_dir``; return datalist entries.

    With ``datalist`` (an MSD-style JSON), also write ``output_dir/datalist.json``: that datalist with absolute paths
    and the healthy cases added to its "training" list (train with ``--datalist output_dir/datalist.json``).
    """
    if not os.path.isfile(t1):
        raise FileNotFoundError(f"{t1}: healthy T1 brain not found (Debian/Ubuntu: apt-get install mricron-data)")
    os.makedirs(output_dir, exist_ok=True)
    img = nib.load(t1)
    t1_data = np.asarray(img.dataobj, dtype=np.float32)
    name = os.path.basename(t1).split(".")[0]
    label = os.path.abspath(os.path.join(output_dir, f"{name}_label.nii.gz"))  # healthy: the same empty mask for all
    nib.save(nib.Nifti1Image(np.zeros(t1_data.shape, np.uint8), img.affine), label)
    entries = []
    for i, (gm_ratio, csf_ratio) in enumerate(contrasts):
        image = os.path.abspath(os.path.join(output_dir, f"{name}_g{gm_ratio:.2f}_c{csf_ratio:.2f}_flair.nii.gz"))
        nib.save(nib.Nifti1Image(pseudo_flair(t1_data, peaks, gm_ratio, csf_ratio, seed=i), img.affine), image)
        entries.append({"image": image, "label": label})
    if datalist is not None:
        with open(datalist) as f:
            lists = json.load(f)
        for key in ("training", "validation", "testing"):
            if key in lists:  # paths made absolute, so the new datalist works from output_dir
                lists[key] = training_datalist(os.path.abspath(datalist), key)
        lists["training"] = lists.get("training", []) + entries
        with open(os.path.join(output_dir, "datalist.json"), "w") as f:
            json.dump(lists, f, indent=1)
    return entries
