"""Visual review: the three-plane PNG shows the right anatomy in the right place; the batch page orders by risk."""

from __future__ import annotations

import json

import numpy as np
from conftest import run_bundle
from PIL import Image

from bundle.outputs.overlay import PRED_COLOUR, save_review_png, to_ras


def _phantom():
    """A 40x50x30 RAS volume with a lesion in the patient's right, anterior, superior octant."""
    image = np.zeros((40, 50, 30), np.float32)
    image[5:35, 5:45, 3:27] = 1.0
    lesion = np.zeros(image.shape, bool)
    lesion[28:33, 35:40, 20:25] = True  # RAS: axis 0 grows towards the patient's right, 1 anterior, 2 superior
    return image, lesion


def test_same_anatomy_in_any_orientation_gives_the_same_picture(tmp_path):
    image, lesion = _phantom()
    unc = lesion * 0.3
    ras = np.diag([2.0, 1.0, 3.0, 1.0])
    save_review_png(image, ras, lesion, unc, str(tmp_path / "ras.png"))
    # the same voxels stored LPI-ordered: flip x, y and z, and say so in the affine
    flip = np.diag([-1.0, -1.0, -1.0, 1.0])
    flip[:3, 3] = np.array(image.shape) - 1
    lpi = ras @ flip
    save_review_png(image[::-1, ::-1, ::-1], lpi, lesion[::-1, ::-1, ::-1], unc[::-1, ::-1, ::-1],
                    str(tmp_path / "lpi.png"))
    a, b = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("ras", "lpi"))
    assert a.shape == b.shape and np.array_equal(a, b)


def test_axial_panel_puts_patient_right_on_the_left_and_anterior_on_top(tmp_path):
    image, lesion = _phantom()
    right = np.zeros(image.shape, bool)
    right[30:34, 40:44, 14:16] = True  # identity affine: high x = patient's right, high y = anterior
    save_review_png(image, np.eye(4), right, np.zeros(image.shape), str(tmp_path / "r.png"))
    picture = np.asarray(Image.open(tmp_path / "r.png"))[16:, :40]  # the axial panel (1 mm pixels, 40 wide)
    red = np.all(picture == PRED_COLOUR, axis=-1)
    rows, cols = np.nonzero(red[:50])
    assert cols.max() < 20, "the patient's right must be on the viewer's left"
    assert rows.max() < 25, "anterior must be at the top"


def test_to_ras_undoes_a_flip():
    volume = np.arange(24).reshape(2, 3, 4)
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    assert np.array_equal(to_ras(volume, flip), volume[::-1])


def _report(out, case, flagged, uncertain_ml, score=0.1):
    (out / f"{case}_report.json").write_text(json.dumps({
        "input": f"/data/{case}.nii.gz", "lesion_count": 1, "lesion_volume_ml": 1.0, "uncertainty_score": score,
        "uncertain_volume_ml": uncertain_ml, "mean_uncertainty_in_lesions": 0.1, "review_required": flagged,
        "review_rule": "rule"}))
    Image.new("RGB", (4, 4)).save(out / f"{case}_review.png")


def test_review_page_lists_worst_first_and_failures(tmp_path):
    _report(tmp_path, "calm", False, 0.5)
    _report(tmp_path, "flagged_small", True, 1.0)
    _report(tmp_path, "flagged_big", True, 9.0)
    _report(tmp_path, "flagged_disputed", True, 0.2, score=0.3)  # the score orders before the uncertain volume
    failure = {"path": "/data/bad.nii.gz", "error": "/data/bad.nii.gz: empty file"}
    (tmp_path / "failures.json").write_text(json.dumps([failure]))
    run_bundle("bundle", "review", str(tmp_path))
    page = (tmp_path / "review.html").read_text()
    order = [page.index(f'src="{c}_review.png"') for c in ("flagged_disputed", "flagged_big", "flagged_small", "calm")]
    assert order == sorted(order)
    assert "/data/bad.nii.gz: empty file" in page and "4 cases, 3 flagged for review, 1 failed inputs" in page


def test_review_of_a_folder_without_reports_is_one_line(tmp_path):
    proc = run_bundle("bundle", "review", str(tmp_path), check=False)
    assert proc.returncode != 0 and f"error: {tmp_path}: no *_report.json files" in proc.stderr
    assert "Traceback" not in proc.stderr
