"""Bundle layout, metadata against the public schema, workflow properties, README and CI agreement."""

from __future__ import annotations

import json
import re
from importlib.metadata import version

import pytest
from conftest import BUNDLE_ROOT, SHARED, require_shared
from monai.bundle import ConfigWorkflow, verify_metadata

META = BUNDLE_ROOT / "configs" / "metadata.json"


def test_metadata_passes_the_public_schema():
    schema = SHARED / "schema" / "meta_schema_20240725.json"
    require_shared(schema)
    verify_metadata(meta_file=str(META), filepath=str(schema))  # raises ValidationError on any violation


def test_metadata_versions_are_the_installed_ones():
    meta = json.loads(META.read_text())
    assert meta["version"] in meta["changelog"]
    assert meta["monai_version"] == version("monai")
    assert meta["pytorch_version"] == version("torch").split("+")[0]
    assert meta["numpy_version"] == version("numpy")
    assert "einops" in meta["required_packages_version"]
    for package, pinned in meta["required_packages_version"].items():
        assert version(package) == pinned, package
    fmt = meta["network_data_format"]
    assert list(fmt["inputs"]) == ["image"]
    assert fmt["outputs"]["pred"]["channel_def"] == {"0": "background", "1": "lesion"}


@pytest.mark.parametrize("config, workflow_type", [("inference.yaml", "infer"), ("train.yaml", "train")])
def test_workflow_has_every_required_property(config, workflow_type):
    if workflow_type == "train":  # instantiating the training datasets reads the shared data
        require_shared(SHARED / "data" / "msd_brain_tumour_flair128")
    workflow = ConfigWorkflow(
        config_file=str(BUNDLE_ROOT / "configs" / config),
        meta_file=str(META),
        logging_file=str(BUNDLE_ROOT / "configs" / "logging.conf"),
        workflow_type=workflow_type,
    )
    workflow.initialize()
    assert not workflow.check_properties()


def test_readme_commands_are_the_ones_ci_runs():
    readme = (BUNDLE_ROOT / "README.md").read_text()
    ci = (BUNDLE_ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2, "README must start with the setup+inference and the test command"
    setup_and_run, tests = blocks[0].strip(), blocks[1].strip()
    assert "configs/inference.yaml" in setup_and_run and ".ci/setup" in setup_and_run
    assert tests in ci, "the README's test command must be what .ci/run executes"



def test_slice_batch_size_follows_the_device():
    """4 slices per batch on CPU (a third of the peak memory of 16 at the same speed, docs/benchmarks.md), 16 on GPU;
    the device may be a torch.device (the config's own) or a name (MONAI Label sets the name it was asked for)."""
    from bundle.evaluation.evaluate import read_config

    for device, expected in (("$torch.device('cpu')", 4), ("$torch.device('cuda')", 16), ("cpu", 4), ("cuda:0", 16)):
        parser = read_config(str(BUNDLE_ROOT), "configs/inference.yaml")
        parser.update({"bundle_root": str(BUNDLE_ROOT), "device": device})
        assert parser.get_parsed_content("slice_batch_size") == expected, device


def test_small_lesions_leave_the_mask_before_it_is_saved_and_reported():
    """``min_lesion_mm3`` drops lesions below that volume on the input grid, after thresholding and before the mask
    is saved and reported."""
    import numpy as np
    import torch
    from monai.data import MetaTensor

    from bundle.evaluation.evaluate import read_config

    parser = read_config(str(BUNDLE_ROOT), "configs/inference.yaml")
    parser.update({"bundle_root": str(BUNDLE_ROOT), "min_lesion_mm3": 10})
    transforms = parser["postprocessing"]["transforms"]
    order = [t["_target_"] + ("/seg" if t.get("output_postfix") == "seg" else "") for t in transforms]
    at = order.index("RemoveSmallObjectsd")
    assert order.index("AsDiscreted") < at < order.index("SaveImaged/seg")
    assert at < order.index("bundle.outputs.report.LesionReportd")
    remove = parser.get_parsed_content(f"postprocessing#transforms#{at}")
    mask = np.zeros((1, 12, 12, 8), np.float32)
    mask[0, 1:4, 1:4, 1:3] = 1  # 18 voxels of 1.5 x 1.5 x 2 mm = 81 mm³
    mask[0, 8, 8, 5:7] = 1  # 2 voxels = 9 mm³
    affine = torch.diag(torch.tensor([1.5, 1.5, 2.0, 1.0], dtype=torch.float64))
    out = remove({"pred_lesion": MetaTensor(torch.from_numpy(mask), affine=affine)})["pred_lesion"]
    assert float(out.sum()) == 18 and float(out[0, 8, 8, 5]) == 0
