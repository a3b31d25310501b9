"""The inference step of the Deploy app: the bundle's own inference config, run on the traced ``models/model.ts``.

Receives the ``Image`` of ``DICOMSeriesToVolumeOperator`` (array ``[slice, row, column]``, metadata ``affine`` in RAS
with index order (column, row, slice), so ``nifti = array.transpose(2, 1, 0)``), writes it as NIfTI into a work
folder, runs ``configs/inference.yaml`` + ``configs/inference_torchscript.yaml`` on it (same preprocessing,
sampler, postprocessing, report and review PNG as the bundle), and emits the binary mask back in
``[slice, row, column]`` order for ``DICOMSegmentationWriterOperator``. The uncertainty map, report and review PNG
stay in the output folder. The source series' timing tags go beside the NIfTI as its BIDS sidecar, so the report's
header check (a series whose headers say it is not a FLAIR is flagged) sees them. MONAI Deploy's
``MonaiBundleInferenceOperator`` is not used: it casts image outputs to uint8 (the uncertainty is float) and cannot
drive the two-method diffusion sampler.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from monai.deploy.core import Fragment, Image, Operator, OperatorSpec

from bundle.evaluation.evaluate import read_config
from bundle.inputs.dicom_series import bids_sidecar
from bundle.inputs.input_check import remove_if_empty
from bundle.outputs.files import write_json_atomic

CONFIGS = ("configs/inference.yaml", "configs/inference_torchscript.yaml")
SERIES_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "Modality")


def series_header(study_selected_series: list, series_uid: str) -> pydicom.Dataset | None:
    """The header of the first instance of series ``series_uid`` among the selector's ``study_selected_series_list``
    (already read by the loader), or None."""
    for study in study_selected_series or []:
        for selected in study.selected_series:
            instances = selected.series.get_sop_instances()
            if instances and str(selected.series.SeriesInstanceUID) == series_uid:
                return instances[0].get_native_sop_instance()
    return None


def series_name(metadata: dict) -> str:
    """Output name of a series: ``series_<SeriesInstanceUID>``."""
    return f"series_{metadata.get('SeriesInstanceUID', 'unknown')}"


class LesionSegmentationOperator(Operator):
    """Image (DICOM volume) in, ``seg_image`` (uint8 lesion mask, same array layout) out."""

    def __init__(
        self,
        fragment: Fragment,
        *args,
        bundle_root: str,
        output_folder: Path,
        num_samples: int | None = None,
        num_steps: int | None = None,
        **kwargs,
    ) -> None:
        self.bundle_root, self.output_folder = os.path.abspath(bundle_root), Path(output_folder)
        self.num_samples, self.num_steps = num_samples, num_steps
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("image")
        spec.input("study_selected_series_list")
        spec.output("seg_image")

    def compute(self, op_input, op_output, context) -> None:
        image = op_input.receive("image")
        selected_series = op_input.receive("study_selected_series_list")
        metadata = image.metadata()
        name = series_name(metadata)
        self.output_folder.mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".work_", dir=self.output_folder)
        try:
            volume = np.asarray(image.asnumpy(), dtype=np.float32).transpose(2, 1, 0)
            source = os.path.join(work, f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(volume, np.asarray(metadata["affine"], dtype=np.float64)), source)
            uid = str(metadata.get("SeriesInstanceUID", ""))
            header = series_header(selected_series, uid)
            if header is not None:  # the bundle's header check reads it as the temporary NIfTI's BIDS sidecar
                write_json_atomic(os.path.join(work, f"{name}.json"), bids_sidecar(header))
            self.run_bundle(source)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.name_source_series(self.output_folder / f"{name}_report.json", metadata)
        seg = np.asarray(nib.load(self.output_folder / f"{name}_seg.nii.gz").dataobj, dtype=np.uint8)
        op_output.emit(Image(seg.transpose(2, 1, 0).copy(), metadata), "seg_image")

    @staticmethod
    def name_source_series(report_path: Path, metadata: dict) -> None:
        """Point the report's ``input`` at the DICOM series instead of the deleted temporary NIfTI."""
        with open(report_path) as f:
            report = json.load(f)
        report["input"] = {key: str(metadata.get(key, "")) for key in SERIES_KEYS}
        write_json_atomic(str(report_path), report)

    def run_bundle(self, source: str) -> None:
        """The bundle's inference config on the one NIfTI file ``source``, outputs into ``output_folder``."""
        parser = read_config(self.bundle_root, list(CONFIGS))
        parser.update({"bundle_root": self.bundle_root, "output_dir": str(self.output_folder), "datalist_files": [
            {"image": source}]})
        if self.num_samples:
            parser["num_samples"] = self.num_samples
        if self.num_steps:
            parser["num_steps"] = self.num_steps
        parser.get_parsed_content("initialize")
        parser.get_parsed_content("evaluator").run()
        remove_if_empty(parser.get_parsed_content("staging_dir"))
