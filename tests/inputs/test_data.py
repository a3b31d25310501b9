"""Which files a run reads, and clear errors naming the path when there is nothing to read."""

from __future__ import annotations

import json

import pytest

from bundle.inputs.data import inference_datalist, training_datalist


def test_dataset_dir_lists_every_nifti_file_sorted(tmp_path):
    for name in ("b.nii.gz", "a.nii", "notes.txt", "c.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    files = [item["image"] for item in inference_datalist(dataset_dir=str(tmp_path))]
    assert [f.split("/")[-1] for f in files] == ["a.nii", "b.nii.gz", "c.nii.gz"]


def test_datalist_paths_are_relative_to_the_json(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "list.json"
    path.write_text(json.dumps({"testing": [{"image": "x.nii.gz"}], "training": [{"image": "i.nii", "label": "l.nii"}]}))
    assert inference_datalist(datalist=str(path)) == [{"image": str(tmp_path / "sub" / "x.nii.gz")}]
    assert training_datalist(str(path), "training")[0]["label"] == str(tmp_path / "sub" / "l.nii")


def test_default_is_the_sample_and_the_datalist_wins(tmp_path):
    assert inference_datalist(default_image=__file__) == [{"image": __file__}]
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"testing": [{"image": "/abs/y.nii.gz"}]}))
    assert inference_datalist(dataset_dir=str(tmp_path), datalist=str(path))[0]["image"] == "/abs/y.nii.gz"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset_dir": "/no/such/folder"}, "/no/such/folder: dataset_dir is not a folder"),
        ({"datalist": "/no/such/list.json"}, "/no/such/list.json: datalist file not found"),
        ({"default_image": "/no/sample.nii.gz"}, "/no/sample.nii.gz: the bundle's sample case is missing"),
    ],
)
def test_missing_inputs_name_the_path(kwargs, message):
    with pytest.raises(FileNotFoundError, match=message):
        inference_datalist(**kwargs)


def test_folder_without_nifti_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NIfTI files"):
        inference_datalist(dataset_dir=str(tmp_path))
