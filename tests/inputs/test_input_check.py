"""Bad inputs get one clear line naming the file; a batch goes on past them and exits 1 with failures.json."""

from __future__ import annotations

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pytest
from conftest import SAMPLE, run_bundle

from bundle.inputs.input_check import InputError, check_image, screen_datalist


def save(path, data, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine), path)
    return str(path)


def volume(shape=(8, 9, 10)):
    return np.random.default_rng(0).random(shape)


def write(path, content: bytes):
    path.write_bytes(content)
    return str(path)


def singular_affine(path):
    image = nib.Nifti1Image(volume().astype(np.float32), None)
    image.header.set_sform(np.diag([1.0, 1.0, 0.0, 1.0]), code=1)  # set_sform keeps it as given
    nib.save(image, path)
    return str(path)


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: str(d / "missing.nii.gz"), "file not found"),
        (lambda d: write(d / "empty.nii.gz", b""), "empty file"),
        (lambda d: write(d / "text.nii", b"not an image at all" * 30), "not a readable NIfTI"),
        (lambda d: save(d / "flat.nii.gz", np.random.rand(8, 9)), "is not a 3D volume"),
        (lambda d: save(d / "4d.nii.gz", np.random.rand(8, 9, 10, 3)), "has 3 channels/volumes, the model takes 1"),
        (lambda d: save(d / "nan.nii.gz", np.where(volume() > 0.9, np.nan, volume())), "NaN/Inf voxels"),
        (lambda d: save(d / "const.nii.gz", np.full((8, 9, 10), 7.0)), "constant image (every voxel is 7)"),
        (lambda d: singular_affine(d / "sing.nii.gz"), "degenerate affine"),
        (lambda d: save(d / "zscored.nii.gz", volume() - 0.5), "of the non-zero voxels are negative"),
    ],
)
def test_bad_image_gives_one_line_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(InputError) as err:
        check_image(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_a_few_negative_voxels_from_interpolation_are_accepted(tmp_path):
    data = volume() + 0.1
    data.flat[::40] = -0.05  # 2.5 % of the voxels, like ringing at the edge of a resampled scan (0.5 % in ../shared)
    assert check_image(save(tmp_path / "ringing.nii.gz", data)) == (8, 9, 10)


def test_truncated_gzip_is_reported_as_corrupt(tmp_path):
    good = save(tmp_path / "good.nii.gz", volume((40, 40, 40)))
    data = open(good, "rb").read()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.nii.gz: .*(truncated or corrupt|not a readable)"):
        check_image(str(tmp_path / "cut.nii.gz"))


def test_oversized_image_is_refused_before_reading(tmp_path):
    header = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    header.header.set_data_shape((4000, 4000, 4000))
    path = tmp_path / "huge.nii"
    with open(path, "wb") as f:  # header only: reading the data would fail, so the refusal must come first
        f.write(header.header.binaryblock + b"\0" * 4)
    with pytest.raises(InputError, match="exceeds the limit"):
        check_image(str(path))


def test_singleton_fourth_dimension_is_accepted(tmp_path):
    assert check_image(save(tmp_path / "x.nii.gz", volume((8, 9, 10, 1)))) == (8, 9, 10)


def test_screen_keeps_good_cases_and_lists_the_rest(tmp_path):
    good = save(tmp_path / "ok.nii.gz", volume())
    cases = [{"image": good}, {"image": str(tmp_path / "nope.nii")}, {"label": "x"}]
    kept, failures = screen_datalist(cases)
    assert kept == [{"image": good}]
    assert [f["path"] for f in failures] == [str(tmp_path / "nope.nii"), "None"]


def test_batch_goes_on_past_bad_cases_and_exits_1(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    os.symlink(SAMPLE, data / "good.nii.gz")
    (data / "broken.nii.gz").write_bytes(gzip.compress(b"garbage"))
    out = tmp_path / "out"
    proc = run_bundle(
        "monai.bundle", "run", "--config_file", "configs/inference.yaml", "--dataset_dir", str(data),
        "--output_dir", str(out), "--num_samples", "1", "--num_steps", "1", check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 of 2 cases failed" in proc.stderr
    failures = json.loads((out / "failures.json").read_text())
    assert [f["path"] for f in failures] == [str(data / "broken.nii.gz")]
    assert (out / "good_seg.nii.gz").exists() and (out / "good_report.json").exists()
    assert not list(out.glob("broken*"))


def test_outputs_appear_only_complete_and_skip_existing_reruns_nothing(tmp_path):
    out = tmp_path / "out"
    args = ["monai.bundle", "run", "--config_file", "configs/inference.yaml", "--output_dir", str(out),
            "--num_samples", "1", "--num_steps", "1"]
    run_bundle(*args)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["BRATS_474_flair_brain.nii.gz", "BRATS_474_flair_report.json", "BRATS_474_flair_review.png",
                     "BRATS_474_flair_seg.nii.gz", "BRATS_474_flair_uncertainty.nii.gz", "cohort.csv",
                     "failures.json", "lesions.csv"]  # staging folder removed
    stamp = (out / "BRATS_474_flair_seg.nii.gz").stat().st_mtime_ns
    run_bundle(*args, "--skip_existing", "true")
    assert (out / "BRATS_474_flair_seg.nii.gz").stat().st_mtime_ns == stamp


def test_publish_moves_a_finished_case_with_the_report_last(tmp_path):
    from monai.data import MetaTensor

    from bundle.outputs.report import PublishCased

    staging, final = tmp_path / "staging", tmp_path / "final"
    staging.mkdir()
    for suffix in ("_seg.nii.gz", "_uncertainty.nii.gz"):
        (staging / f"case{suffix}").write_text("x")
    (staging / "case_report.json").write_text('{"lesion_count": 0, "lesion_volume_ml": 0.0, "review_required": false}')
    (staging / "case_b_seg.nii.gz").write_text("another case")  # a case whose name extends this one
    image = MetaTensor(np.zeros((1, 2, 2, 2)), meta={"filename_or_obj": "/data/case.nii.gz"})
    PublishCased(str(staging), str(final))({"image": image})
    assert sorted(p.name for p in final.iterdir()) == ["case_report.json", "case_seg.nii.gz", "case_uncertainty.nii.gz",
                                                       "cohort.csv", "lesions.csv"]
    assert [p.name for p in staging.iterdir()] == ["case_b_seg.nii.gz"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset_dir", "/no/such/dir"], "error: /no/such/dir: dataset_dir is not a folder"),
        (["--datalist", "/no/list.json"], "error: /no/list.json: datalist file not found"),
        (["--output_dir", "/proc/forbidden"], "error: /proc/forbidden: output folder is not writable"),
    ],
)
def test_fatal_input_errors_are_one_line_without_traceback(args, message):
    proc = run_bundle("monai.bundle", "run", "--config_file", "configs/inference.yaml", *args, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in proc.stderr


def test_non_brain_image_is_processed_and_flagged_for_review(tmp_path):
    """A small phantom (a 50 mm ball, not a head) runs through without error and its report asks for review."""
    grid = np.indices((64, 64, 40)) - np.array([32, 32, 20])[:, None, None, None]
    ball = (np.sqrt((grid**2).sum(0)) < 25).astype(np.float32) * 300 + np.random.default_rng(0).random((64, 64, 40))
    data = tmp_path / "in"
    data.mkdir()
    save(data / "phantom.nii.gz", ball)
    out = tmp_path / "out"
    run_bundle(
        "monai.bundle", "run", "--config_file", "configs/inference.yaml", "--dataset_dir", str(data),
        "--output_dir", str(out), "--num_samples", "1", "--num_steps", "1",
    )
    report = json.loads((out / "phantom_report.json").read_text())
    assert report["review_required"] is True and report["tissue_extent_mm"][0] < 100
    assert nib.load(out / "phantom_seg.nii.gz").shape == (64, 64, 40)


def test_labelled_case_needs_a_label_on_the_same_world_space(tmp_path):
    image = save(tmp_path / "img.nii.gz", volume((20, 22, 24)))
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    flipped[0, 3] = 19.0  # the same voxels stored in the other x direction: same world space
    same_world = save(tmp_path / "lab_flipped.nii.gz", (volume((20, 22, 24)) > 0.5)[::-1], flipped)
    empty = save(tmp_path / "lab_empty.nii.gz", np.zeros((20, 22, 24)))  # a lesion-free case is valid
    cropped = save(tmp_path / "lab_cropped.nii.gz", np.zeros((20, 22, 12)))
    moved = np.eye(4)
    moved[:3, 3] = (0, 0, 30.0)
    shifted = save(tmp_path / "lab_shifted.nii.gz", np.zeros((20, 22, 24)), moved)
    cases = [
        {"image": image, "label": same_world},
        {"image": image, "label": empty},
        {"image": image, "label": cropped},
        {"image": image, "label": shifted},
        {"image": image},
        {"label": empty},
    ]
    kept, failures = screen_datalist(cases, labelled=True)
    assert kept == cases[:2]
    errors = [f["error"] for f in failures]
    assert errors[0].startswith(f"{cropped}: label of shape (20, 22, 12) does not cover the same world space")
    assert errors[1].startswith(f"{shifted}: label of shape (20, 22, 24) does not cover the same world space")
    assert "differ by 30.0 mm" in errors[1]
    assert errors[2] == f"{image}: datalist entry has no 'label' path"
    assert "has no 'image' path" in errors[3]
    assert all("\n" not in e for e in errors)


def test_modality_lists_must_match_the_model_channels(tmp_path):
    a, b, c = (save(tmp_path / f"{m}.nii.gz", volume()) for m in ("flair", "t1", "t2"))
    kept, failures = screen_datalist([{"image": [a, b]}, {"image": [a, b, c]}, {"image": a}], channels=2)
    assert kept == [{"image": [a, b]}]
    assert failures[0]["error"] == f"{a}: 3 images listed for one case, the model takes 2 channels"
    assert failures[1]["error"].startswith(f"{a}: image of shape (8, 9, 10) has 1 channels/volumes, the model takes 2")


def test_evaluate_skips_bad_cases_with_one_line_each_and_exits_1(tmp_path):
    image = save(tmp_path / "img.nii.gz", volume((20, 22, 24)))
    label = save(tmp_path / "lab.nii.gz", np.zeros((20, 22, 12)))
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"testing": [{"image": image, "label": label}, {"image": image}]}))
    out = tmp_path / "eval"
    proc = run_bundle("bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(out), check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    failures = json.loads((out / "failures.json").read_text())
    assert [f["path"] for f in failures] == [image, image]
    assert "does not cover the same world space" in failures[0]["error"]
    assert "no 'label' path" in failures[1]["error"]
    assert json.loads((out / "metrics.json").read_text())["cases"] == []


@pytest.mark.parametrize(
    "content, message",
    [(None, "datalist file not found"), ('{"training": []}', "not a datalist with a 'testing' list")],
)
def test_evaluate_refuses_a_bad_datalist_in_one_line(tmp_path, content, message):
    datalist = tmp_path / "list.json"
    if content is not None:
        datalist.write_text(content)
    proc = run_bundle("bundle", "evaluate", "--datalist", str(datalist), "--output_dir", str(tmp_path), check=False)
    assert proc.returncode == 1 and f"error: {datalist}: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
