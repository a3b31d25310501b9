"""Semi-synthetic MS cases: other patients' real lesion masks inserted into one real labelled MS scan.

``python -m bundle.dev semi-synthetic --output_dir DIR`` writes the set that docs/results.md scores ("Semi-synthetic MS
cases"). Only one labelled MS scan exists (patient26, the validation case), so the review flag and the failure
AUROC cannot be judged on MS with it alone. Here every ``every``-th of the real MNI lesion masks is inserted into
that scan's anatomy by the training augmentation (``bundle.training.synthesis.SynthesizeLesionsd``, on the scan's own 1 mm MNI
grid, before any resampling), case i at lesion-to-tissue ratio

    r_i = r_lo + (r_hi - r_lo) * i / (n - 1)        (faint to clear)

The label of each case is the scan's own lesions plus the inserted ones; ``DIR/datalist.json`` lists the cases under
"testing" for ``python -m bundle evaluate --datalist DIR/datalist.json --key testing``. The masks were seen in
training (on other anatomy); the anatomy is held out.
"""

from __future__ import annotations

import glob
import json
import os

import nibabel as nib
import numpy as np
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from bundle.preprocessing.intensity import NormalizeToTissued
from bundle.training.synthesis import SynthesizeLesionsd

OPEN_MS = os.path.join("..", "shared", "data", "open_ms_data")
ANATOMY = os.path.join(OPEN_MS, "cross_sectional_mni", "patient26_FLAIR.nii.gz")
ANATOMY_LABEL = os.path.join(OPEN_MS, "cross_sectional_mni", "patient26_lesion_mask.nii.gz")
MASKS = os.path.join(OPEN_MS, "lesion_masks_mni")


def semi_synthetic_cases(
    output_dir: str,
    image: str = ANATOMY,
    label: str = ANATOMY_LABEL,
    masks_dir: str = MASKS,
    every: int = 3,
    ratio_range: tuple[float, float] = (1.15, 1.55),
) -> list[dict]:
    """Write one (FLAIR, label) pair per inserted mask and ``output_dir/datalist.json``; return the datalist entries.

    Each entry also gives ``added_ml``, the lesion volume the insertion added (mL).
    """
    for path in (image, label, masks_dir):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: not found (the open_ms_data of ../shared/data/README.md)")
    masks = sorted(glob.glob(os.path.join(masks_dir, "*.nii.gz")))[::every]
    if not masks:
        raise FileNotFoundError(f"{masks_dir}: no lesion masks (*.nii.gz)")
    ratios = np.linspace(ratio_range[0], ratio_range[1], len(masks))
    load = Compose([LoadImaged(["image", "label"], image_only=True), EnsureChannelFirstd(["image", "label"]),
                    NormalizeToTissued("image", method="mode")])
    base = load({"image": image, "label": label})
    affine = np.asarray(base["image"].affine)
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000
    base_voxels = int((np.asarray(base["label"][0]) > 0).sum())
    os.makedirs(output_dir, exist_ok=True)
    cases = []
    for i, (mask, ratio) in enumerate(zip(masks, ratios)):
        synth = SynthesizeLesionsd(["image", "label"], [mask], image, prob=1.0, ratio_range=(ratio, ratio))
        case = synth.set_random_state(i)(dict(base))
        lesion = np.asarray(case["label"][0]) > 0
        name = f"p26_{os.path.basename(mask).split('_')[0]}_r{ratio:.2f}"
        paths = {key: os.path.abspath(os.path.join(output_dir, f"{name}_{key}.nii.gz")) for key in ("FLAIR", "label")}
        nib.save(nib.Nifti1Image(np.asarray(case["image"][0], np.float32), affine), paths["FLAIR"])
        nib.save(nib.Nifti1Image(lesion.astype(np.uint8), affine), paths["label"])
        added_ml = (int(lesion.sum()) - base_voxels) * voxel_ml
        cases.append({"image": paths["FLAIR"], "label": paths["label"], "added_ml": round(added_ml, 2)})
    with open(os.path.join(output_dir, "datalist.json"), "w") as f:
        json.dump({"testing": cases}, f, indent=1)
    return cases
