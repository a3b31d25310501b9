"""Semi-synthetic MS cases: the anatomy's own lesions kept, another patient's real mask added, nothing else changed."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from conftest import BUNDLE_ROOT, require_shared

from bundle.dev.semi_synthetic import ANATOMY, ANATOMY_LABEL, MASKS, semi_synthetic_cases

ROOT_ANATOMY, ROOT_LABEL, ROOT_MASKS = (str(BUNDLE_ROOT / p) for p in (ANATOMY, ANATOMY_LABEL, MASKS))


def test_one_case_adds_a_brighter_lesion_and_keeps_the_rest(tmp_path):
    require_shared(BUNDLE_ROOT / ANATOMY, BUNDLE_ROOT / MASKS)
    cases = semi_synthetic_cases(str(tmp_path), ROOT_ANATOMY, ROOT_LABEL, ROOT_MASKS, every=100, ratio_range=(1.5, 1.5))
    assert len(cases) == 1 and json.loads((tmp_path / "datalist.json").read_text())["testing"] == cases
    own = np.asarray(nib.load(ROOT_LABEL).dataobj) > 0
    label = np.asarray(nib.load(cases[0]["label"]).dataobj) > 0
    image = np.asarray(nib.load(cases[0]["image"]).dataobj)
    added = label & ~own
    assert (label >= own).all()  # the scan's own lesions stay labelled
    assert cases[0]["added_ml"] == pytest.approx(added.sum() / 1000, abs=0.01) and added.sum() > 100  # 1 mm grid
    white = np.median(image[(image > 0) & ~label])
    assert np.median(image[added]) > 1.2 * white  # the inserted lesion is hyperintense
    original = np.asarray(nib.load(ROOT_ANATOMY).dataobj, np.float32)
    far = ~label & (image > 0)
    ratio = image[far] / np.maximum(original[far], 1e-6)
    assert np.median(ratio) > 0 and np.percentile(np.abs(ratio / np.median(ratio) - 1), 90) < 0.05  # rescaled only


def test_missing_data_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        semi_synthetic_cases(str(tmp_path), image=str(tmp_path / "nowhere.nii.gz"))
