"""Per-case JSON report: lesions, volumes, uncertainty and the human-review flag.

Lesions are 26-connected components of the saved binary mask, measured in the input's own voxel grid (volume =
voxel count x |det(affine[:3, :3])| / 1000 mL; centroid in scanner mm via the affine). A case is flagged for review
when its case uncertainty score (``case_uncertainty_score``) exceeds ``max_case_uncertainty``, when the mean
uncertainty inside predicted lesions exceeds ``max_lesion_uncertainty``, when the input may not be a head, or when a
DICOM series' headers say it is not a FLAIR.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import torch
from monai.transforms import MapTransform
from scipy import ndimage

from bundle.inputs.data import case_name
from bundle.inputs.dicom_series import not_flair_reason
from bundle.outputs.cohort import write_cohort_tables
from bundle.outputs.files import write_json_atomic
from bundle.outputs.locations import LOCATIONS, case_regions, lesion_locations
from bundle.preprocessing.brain_extraction import STRIPPED_META_KEY


def bundle_version(bundle_root: str) -> str:
    """Version recorded in ``configs/metadata.json``."""
    with open(os.path.join(bundle_root, "configs", "metadata.json")) as f:
        return json.load(f)["version"]


def lesion_summary(mask: np.ndarray, uncertainty: np.ndarray, affine: np.ndarray,
                   regions: np.ndarray | None = None) -> dict[str, Any]:
    """Lesion count, volumes, centroids and uncertainties of binary ``mask`` (H, W, D) on grid ``affine``; with the
    location ``regions`` on that grid (``bundle.outputs.locations``) each lesion's location and the count and volume
    per location."""
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    labels, count = ndimage.label(mask > 0, structure=np.ones((3, 3, 3)))
    places = None
    if regions is not None:
        places = lesion_locations(labels, count, regions, np.linalg.norm(affine[:3, :3], axis=0))
    lesions = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):  # each lesion within its bounding box
        voxels = labels[box] == index
        centroid_vox = np.array(ndimage.center_of_mass(voxels)) + [b.start for b in box]
        centroid_mm = affine[:3, :3] @ centroid_vox + affine[:3, 3]
        lesions.append(
            {
                "volume_ml": round(float(voxels.sum()) * voxel_ml, 4),
                "centroid_mm": [round(float(v), 2) for v in centroid_mm],
                "mean_uncertainty": round(float(uncertainty[box][voxels].mean()), 4),
                **({"location": places[index - 1]} if places is not None else {}),
            }
        )
    lesions.sort(key=lambda lesion: -lesion["volume_ml"])
    inside = mask > 0
    summary = {
        "lesion_count": int(count),
        "lesion_volume_ml": round(float(inside.sum()) * voxel_ml, 4),
        "mean_uncertainty_in_lesions": round(float(uncertainty[inside].mean()), 4) if inside.any() else 0.0,
        "voxel_volume_ml": voxel_ml,
        "lesions": lesions,
    }
    if places is not None:
        summary["locations"] = {
            place: {"count": sum(les["location"] == place for les in lesions),
                    "volume_ml": round(sum(les["volume_ml"] for les in lesions if les["location"] == place), 4)}
            for place in LOCATIONS
        }
    return summary


def estimated_dice(probability: np.ndarray, mask: np.ndarray) -> float:
    """The model's own expected Dice of its mask, taking the truth as independent Bernoulli(p(v)) voxels (ratio of
    expectations):

        estimated_dice = 2 * sum_{v in M} p(v) / (|M| + sum_v p(v))

    (p = mean of the N soft masks, M = the binary mask, both on one grid); 1 when M is empty and sum p = 0. Low when
    the samples dispute much of the mask or put probability outside it; it cannot see lesions the model is sure are
    not there (docs/results.md, "Review score").
    """
    p = np.asarray(probability, dtype=np.float64)
    m = np.asarray(mask) > 0
    total = p.sum() + m.sum()
    return 1.0 if total == 0 else float(2.0 * p[m].sum() / total)


def case_uncertainty_score(probability: np.ndarray, mask: np.ndarray) -> float:
    """The case uncertainty score behind the review flag and the failure AUROC: ``1 - estimated_dice``."""
    return 1.0 - estimated_dice(probability, mask)


def sample_agreement(probability: np.ndarray, uncertainty: np.ndarray, num_samples: int) -> float | None:
    """Pooled pairwise Dice of the N sampled soft masks s_n, from their mean p and spread sigma alone:

        sum_{i<j} 2 <s_i, s_j> / sum_{i<j} (|s_i| + |s_j|) = (sum_v p^2 - sum_v sigma^2 / (N - 1)) / sum_v p

    (per voxel sum_{i<j} s_i s_j = (N^2 p^2 - N (sigma^2 + p^2)) / 2 and sum_{i<j} (s_i + s_j) = (N - 1) N p).
    1 when all samples are the same mask, 0 when no two overlap; 1 when they mark nothing; None for N < 2. The mean
    pairwise Dice between samples was the best simple case-level failure signal in Zenk et al. (Medical Image
    Analysis 2025); this is its ratio-of-sums form, which p and sigma determine exactly.
    """
    if num_samples < 2:
        return None
    p = np.asarray(probability, dtype=np.float64)
    total = p.sum()
    if total <= 0:
        return 1.0
    agreement = ((p**2).sum() - (np.asarray(uncertainty, dtype=np.float64) ** 2).sum() / (num_samples - 1)) / total
    return float(np.clip(agreement, 0.0, 1.0))


def edge_fraction(mask: np.ndarray, brain: np.ndarray, spacing, margin_mm: float = 3.0) -> float:
    """Fraction of the lesion voxels of ``mask`` within ``margin_mm`` of the outside of the brain mask ``brain``
    (0 without lesions): a mask that follows the brain's outline (left-over scalp, fat, a badly stripped edge)
    has most of its voxels there, real MS lesions and most gliomas few."""
    lesion = np.asarray(mask) > 0
    if not lesion.any():
        return 0.0
    depth = ndimage.distance_transform_edt(np.asarray(brain) > 0, sampling=[float(s) for s in spacing])
    return float((depth[lesion] <= margin_mm).mean())


HEAD_EXTENT_MM = (100.0, 260.0)  # plausible left-right and anterior-posterior extent of a head or brain


def tissue_extent_mm(image: torch.Tensor, threshold: float = 0.2) -> list[float]:
    """Extent (mm) along each voxel axis of the voxels of channel 0 above ``threshold`` (``image`` has an affine)."""
    tissue = np.argwhere(torch.as_tensor(image[0]).cpu().numpy() > threshold)
    if len(tissue) == 0:
        return [0.0, 0.0, 0.0]
    spacing = np.linalg.norm(np.asarray(torch.as_tensor(image.affine).cpu(), dtype=np.float64)[:3, :3], axis=0)
    return [round(float(v), 1) for v in (tissue.max(0) - tissue.min(0) + 1) * spacing]


CASE_SCORES = ("estimated_dice", "sample_agreement", "combined")


def case_score(estimated: float | None, agreement: float | None, at_edge: float | None, kind: str) -> float | None:
    """The case score behind the review flag (higher = less trustworthy), from the case signals:
    "estimated_dice": 1 - estimated Dice; "sample_agreement": 1 - sample agreement; "combined": the largest of
    those two and the lesion fraction at the brain's edge. None when its signals are missing."""
    if kind not in CASE_SCORES:
        raise ValueError(f"case_score must be one of {CASE_SCORES}, got {kind!r}")
    scores = {"estimated_dice": None if estimated is None else 1.0 - estimated,
              "sample_agreement": None if agreement is None else 1.0 - agreement}
    if kind != "combined":
        return scores[kind]
    if None in scores.values():
        return None
    return max(*scores.values(), at_edge or 0.0)


def implausible_case(
    mean_uncertainty_in_lesions: float,
    lesion_volume_ml: float,
    brain_volume_ml: float | None,
    max_lesion_uncertainty: float,
    lesion_volume_range_ml: Sequence[float] = (0.0, float("inf")),
    brain_volume_range_ml: Sequence[float] = (0.0, float("inf")),
) -> bool:
    """The part of the review rule that no case score sees: uncertain lesions, a lesion volume outside
    ``lesion_volume_range_ml`` (none or almost none found, or far more than any training case), a brain volume
    outside ``brain_volume_range_ml`` (a failed brain extraction or not a brain; None: not known)."""
    load_lo, load_hi = lesion_volume_range_ml
    brain_lo, brain_hi = brain_volume_range_ml
    return bool(
        mean_uncertainty_in_lesions > max_lesion_uncertainty
        or not load_lo <= lesion_volume_ml <= load_hi
        or (brain_volume_ml is not None and not brain_lo <= brain_volume_ml <= brain_hi)
    )


def review_decision(
    summary: dict[str, Any],
    uncertainty_score: float | None,
    extent_mm: Sequence[float],
    max_lesion_uncertainty: float,
    max_case_uncertainty: float,
    not_flair: str = "",
    lesion_volume_range_ml: Sequence[float] = (0.0, float("inf")),
    brain_volume_ml: float | None = None,
    brain_volume_range_ml: Sequence[float] = (0.0, float("inf")),
) -> tuple[bool, str]:
    """(review_required, the rule with this case's values) for a lesion summary.

    ``uncertainty_score`` is ``case_uncertainty_score`` (None when no probability was given: that part of the rule
    is then left out). ``extent_mm`` is the tissue extent on the RAS working grid; a left-right or anterior-posterior
    extent outside ``HEAD_EXTENT_MM`` means the input may not be a head MRI (low confidence in everything else).
    ``not_flair`` is why a DICOM series' headers (or a NIfTI file's BIDS sidecar) say it is not a FLAIR
    (``bundle.inputs.dicom_series.not_flair_reason``), "" when they do not: the model is confidently wrong on other
    contrasts, which no uncertainty score shows. Uncertain lesions and implausible lesion or brain volumes:
    ``implausible_case``.
    """
    lo, hi = HEAD_EXTENT_MM
    not_head = any(not lo <= e <= hi for e in extent_mm[:2])
    disputed = uncertainty_score is not None and uncertainty_score > max_case_uncertainty
    load_lo, load_hi = lesion_volume_range_ml
    brain_lo, brain_hi = brain_volume_range_ml
    load = summary.get("lesion_volume_ml", 0.0)
    implausible = implausible_case(summary["mean_uncertainty_in_lesions"], load, brain_volume_ml,
                                   max_lesion_uncertainty, lesion_volume_range_ml, brain_volume_range_ml)
    flagged = disputed or not_head or bool(not_flair) or implausible
    score = "n/a" if uncertainty_score is None else f"{uncertainty_score:.4f}"
    brain = "n/a" if brain_volume_ml is None else f"{brain_volume_ml:g} mL"
    rule = (
        f"case score > {max_case_uncertainty} "
        f"or mean_uncertainty_in_lesions > {max_lesion_uncertainty} "
        f"or lesion volume outside [{load_lo:g}, {load_hi:g}] mL "
        f"or brain volume outside [{brain_lo:g}, {brain_hi:g}] mL "
        f"or tissue extent left-right/anterior-posterior outside [{lo:g}, {hi:g}] mm (not a head MRI?) "
        f"or DICOM headers (or BIDS sidecar) of another contrast than FLAIR "
        f"(this case: {score}, {summary['mean_uncertainty_in_lesions']:.4f}, {load:g} mL, {brain}, "
        f"{extent_mm[0]:g} x {extent_mm[1]:g} mm, {not_flair or 'headers do not say otherwise'})"
    )
    return bool(flagged), rule


class LesionReportd(MapTransform):
    """Write ``<output_dir>/<case>_report.json`` from the binary mask and uncertainty of one decollated case.

    Args:
        mask_key / uncertainty_key: keys of the final mask and uncertainty (input grid, channel-first).
        probability_key: key of the lesion probability (mean of the samples) on the same grid; with it the report
            gives the case's ``uncertainty_score`` (``case_uncertainty_score``).
        brain_key: key of the brain mask on the same grid; with it the report gives ``brain_volume_ml``.
        image_key: key whose ``filename_or_obj`` meta names the input file.
        output_dir: where reports go; ``<case>`` is the input file name without ``.nii``/``.nii.gz``.
        model_version, num_samples, num_steps, seed: recorded in the report.
        max_lesion_uncertainty, max_case_uncertainty, lesion_volume_range_ml, brain_volume_range_ml: the review
            rule (``review_decision``).
        case_score: which case score the rule and the report's ``uncertainty_score`` use (``case_score``).
        uncertain_voxel_threshold: voxels above it count towards the reported ``uncertain_volume_ml``.
        locations: give each lesion its location (``bundle.outputs.locations``: the MNI atlas registered to the
            preprocessed FLAIR under ``image_key``) and the count and volume per location.
    """

    def __init__(
        self,
        mask_key: str = "pred",
        uncertainty_key: str = "uncertainty",
        image_key: str = "image",
        output_dir: str = "./eval",
        model_version: str = "",
        num_samples: int = 0,
        num_steps: int = 0,
        seed: int = 0,
        max_lesion_uncertainty: float = 0.25,
        uncertain_voxel_threshold: float = 0.25,
        max_case_uncertainty: float = 0.4,
        probability_key: str = "",
        brain_key: str = "",
        case_score: str = "estimated_dice",
        lesion_volume_range_ml: Sequence[float] = (0.0, float("inf")),
        brain_volume_range_ml: Sequence[float] = (0.0, float("inf")),
        locations: bool = False,
    ) -> None:
        super().__init__(keys=[mask_key, uncertainty_key])
        self.locations = locations
        self.mask_key, self.uncertainty_key, self.image_key = mask_key, uncertainty_key, image_key
        self.probability_key, self.brain_key = probability_key, brain_key
        if case_score not in CASE_SCORES:
            raise ValueError(f"case_score must be one of {CASE_SCORES}, got {case_score!r}")
        self.case_score = case_score
        self.lesion_volume_range_ml = tuple(float(v) for v in lesion_volume_range_ml)
        self.brain_volume_range_ml = tuple(float(v) for v in brain_volume_range_ml)
        self.output_dir = output_dir
        self.model_version, self.num_samples, self.num_steps, self.seed = model_version, num_samples, num_steps, seed
        self.max_lesion_uncertainty = max_lesion_uncertainty
        self.uncertain_voxel_threshold = uncertain_voxel_threshold
        self.max_case_uncertainty = max_case_uncertainty

    def __call__(self, data):
        d = dict(data)
        mask = torch.as_tensor(d[self.mask_key]).detach().cpu().numpy()[0]
        uncertainty = torch.as_tensor(d[self.uncertainty_key]).detach().cpu().numpy()[0]
        probability = torch.as_tensor(d[self.probability_key]).detach().cpu().numpy()[0] if self.probability_key else None
        affine = np.asarray(torch.as_tensor(d[self.mask_key].affine).cpu().numpy(), dtype=np.float64)
        meta = d[self.image_key].meta if hasattr(d[self.image_key], "meta") else {}
        source = meta.get("filename_or_obj", "")
        regions = None
        if self.locations:
            image = d[self.image_key]
            image_affine = np.asarray(torch.as_tensor(image.affine).cpu().numpy(), dtype=np.float64)
            regions = case_regions(torch.as_tensor(image).detach().cpu().float().numpy()[0], image_affine, affine,
                                   mask.shape)
        summary = lesion_summary(mask, uncertainty, affine, regions)
        uncertain_ml = float((uncertainty > self.uncertain_voxel_threshold).sum()) * summary["voxel_volume_ml"]
        extent = tissue_extent_mm(d[self.image_key])
        score = round(case_uncertainty_score(probability, mask), 4) if probability is not None else None
        brain = d.get(self.brain_key) if self.brain_key else None
        brain = None if brain is None else torch.as_tensor(brain).detach().cpu().numpy()[0] > 0
        brain_ml = None if brain is None else round(float(brain.sum()) * summary["voxel_volume_ml"], 1)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        at_edge = None if brain is None else round(edge_fraction(mask, brain, spacing), 4)
        agreement = None if probability is None else sample_agreement(probability, uncertainty, self.num_samples)
        not_flair = not_flair_reason(source) if isinstance(source, str) else ""
        estimated = None if score is None else 1.0 - score
        chosen = case_score(estimated, agreement, at_edge, self.case_score)
        chosen = None if chosen is None else round(chosen, 4)
        flagged, rule = review_decision(
            summary, chosen, extent, self.max_lesion_uncertainty, self.max_case_uncertainty, not_flair,
            self.lesion_volume_range_ml, brain_ml, self.brain_volume_range_ml,
        )
        report = {
            "input": str(source),
            "model_version": self.model_version,
            "num_samples": self.num_samples,
            "num_steps": self.num_steps,
            "seed": self.seed,
            "lesion_count": summary["lesion_count"],
            "lesion_volume_ml": summary["lesion_volume_ml"],
            "mean_uncertainty_in_lesions": summary["mean_uncertainty_in_lesions"],
            "uncertain_volume_ml": round(uncertain_ml, 4),
            "uncertainty_score": chosen,
            "case_score": self.case_score,
            "estimated_dice": None if score is None else round(1.0 - score, 4),
            "sample_agreement": None if agreement is None else round(agreement, 4),
            "lesion_fraction_at_brain_edge": at_edge,
            "tissue_extent_mm": extent,
            "skull_stripped_by_bundle": bool(meta.get(STRIPPED_META_KEY, False)),
            "brain_volume_ml": brain_ml,
            "not_flair_reason": not_flair,
            **({"locations": summary["locations"]} if "locations" in summary else {}),
            "lesions": summary["lesions"],
            "review_required": flagged,
            "review_rule": rule,
        }
        os.makedirs(self.output_dir, exist_ok=True)
        write_json_atomic(os.path.join(self.output_dir, f"{case_name(source)}_report.json"), report)
        return d


OUTPUT_SUFFIXES = (
    "_seg.nii.gz", "_uncertainty.nii.gz", "_prob.nii.gz", "_brain.nii.gz", "_review.png", "_report.json"
)  # report last


class PublishCased(MapTransform):
    """Move one finished case's outputs from ``staging_dir`` into ``output_dir`` (report last).

    Outputs are written into the staging folder first and renamed (atomic on one file system) only when the whole
    case is done, so a killed run leaves no partial file in ``output_dir``, and a case whose report is there is
    complete (``--skip_existing`` relies on this). Then the cohort tables are rewritten (``bundle.outputs.cohort``).
    """

    def __init__(self, staging_dir: str, output_dir: str, image_key: str = "image") -> None:
        super().__init__(keys=[image_key])
        self.staging_dir, self.output_dir, self.image_key = staging_dir, output_dir, image_key

    def __call__(self, data):
        case = case_name(data[self.image_key].meta.get("filename_or_obj", ""))
        os.makedirs(self.output_dir, exist_ok=True)
        for suffix in OUTPUT_SUFFIXES:
            staged = os.path.join(self.staging_dir, case + suffix)
            if os.path.exists(staged):
                os.replace(staged, os.path.join(self.output_dir, case + suffix))
        write_cohort_tables(self.output_dir)
        return data
