"""The MONAI Deploy application: DICOM loader -> MR series selector -> volume -> lesion inference -> DICOM SEG writer.

``python -m bundle.deploy -i DICOM_DIR -o OUT_DIR`` (or ``HOLOSCAN_INPUT_PATH`` / ``HOLOSCAN_OUTPUT_PATH``).
OUT_DIR receives ``<SOPInstanceUID>.dcm`` (DICOM SEG of the lesion mask, referencing the source series) and, named
``series_<SeriesInstanceUID>``: ``_uncertainty.nii.gz``, ``_seg.nii.gz``, ``_report.json``, ``_review.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators import (
    DICOMDataLoaderOperator,
    DICOMSegmentationWriterOperator,
    DICOMSeriesSelectorOperator,
    DICOMSeriesToVolumeOperator,
)
from monai.deploy.operators.dicom_seg_writer_operator import SegmentDescription
from pydicom.sr.codedict import codes

from bundle.deploy.lesion_operator import LesionSegmentationOperator
from bundle.outputs.report import bundle_version

BUNDLE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# the first MR series of the study; FLAIR is preferred by name when several are present
SELECTION_RULES = """{"selections": [
  {"name": "FLAIR", "conditions": {"Modality": "(?i)MR", "SeriesDescription": "(?i).*flair.*"}},
  {"name": "MR", "conditions": {"Modality": "(?i)MR"}}
]}"""


class LesionSegApp(Application):
    """DICOM MR series in, DICOM SEG of FLAIR-hyperintense lesions out."""

    def __init__(self, *args, num_samples: int | None = None, num_steps: int | None = None, **kwargs) -> None:
        self.num_samples, self.num_steps = num_samples, num_steps
        super().__init__(*args, **kwargs)

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        input_path, output_path = Path(context.input_path), Path(context.output_path)
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_path, name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, rules=SELECTION_RULES, name="series_selector")
        to_volume = DICOMSeriesToVolumeOperator(self, name="series_to_volume")
        inference = LesionSegmentationOperator(
            self, bundle_root=BUNDLE_ROOT, output_folder=output_path, num_samples=self.num_samples,
            num_steps=self.num_steps, name="lesion_inference",
        )
        lesion = SegmentDescription(
            segment_label="FLAIR hyperintense lesion",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_name="Brain MRI lesion diffusion bundle",
            algorithm_family=codes.DCM.ArtificialIntelligence,
            algorithm_version=bundle_version(BUNDLE_ROOT),
        )
        writer = DICOMSegmentationWriterOperator(
            self, segment_descriptions=[lesion], output_folder=output_path, name="dicom_seg_writer",
            custom_tags={"SeriesDescription": "Lesion SEG (research use only, not for clinical use)"},
        )
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, to_volume, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(to_volume, inference, {("image", "image")})
        self.add_flow(selector, inference, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(selector, writer, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(inference, writer, {("seg_image", "seg_image")})
