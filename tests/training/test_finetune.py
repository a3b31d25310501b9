"""``python -m bundle finetune``: starts from the shipped weights, trains on the datalist, writes model.pt."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import BUNDLE_ROOT, SAMPLE, SAMPLE_LABEL, require_shared, run_bundle


def test_finetune_moves_the_shipped_weights_and_writes_them(tmp_path):
    require_shared(SAMPLE_LABEL)
    datalist = tmp_path / "site.json"
    datalist.write_text(json.dumps({"training": [{"image": str(SAMPLE), "label": str(SAMPLE_LABEL)}]}))
    out = tmp_path / "ft"
    proc = run_bundle("bundle", "finetune", "--datalist", str(datalist), "--output_dir", str(out), "--iterations", "2",
                      "--bundle_root", str(BUNDLE_ROOT), timeout=900)
    assert f"weights: {out / 'model.pt'}" in proc.stdout
    tuned = torch.load(out / "model.pt", weights_only=True)
    shipped = torch.load(BUNDLE_ROOT / "models" / "model.pt", weights_only=True)
    assert tuned.keys() == shipped.keys()
    changed = [name for name in shipped if not torch.equal(tuned[name], shipped[name])]
    assert changed  # trained
    # started from the shipped weights: two small steps leave every tensor close to them
    assert all((tuned[n].float() - shipped[n].float()).abs().max() < 0.05 for n in shipped)


def test_bad_datalists_and_iteration_counts_are_one_line_errors(tmp_path):
    from bundle.training.finetune import finetune

    with pytest.raises(SystemExit, match="datalist file not found"):
        finetune(str(tmp_path / "missing.json"), bundle_root=str(BUNDLE_ROOT))
    (tmp_path / "empty.json").write_text(json.dumps({"training": []}))
    with pytest.raises(SystemExit, match="list is empty"):
        finetune(str(tmp_path / "empty.json"), bundle_root=str(BUNDLE_ROOT))
    (tmp_path / "one.json").write_text(json.dumps({"training": [{"image": str(SAMPLE), "label": str(SAMPLE)}]}))
    with pytest.raises(SystemExit, match="multiple of 100"):
        finetune(str(tmp_path / "one.json"), iterations=150, bundle_root=str(BUNDLE_ROOT))
