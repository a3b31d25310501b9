"""Masks and uncertainty of inference with adaptive stopping (tau) against all K steps (tau = 0)."""
import json

import nibabel as nib
import numpy as np

cases = {"patient26_FLAIR": "../shared/data/open_ms_data/cross_sectional_mni/patient26_lesion_mask.nii.gz",
         "BRATS_474_flair": "../shared/data/msd_brain_tumour_flair128/BRATS_474_label.nii.gz"}
dice = lambda a, b: 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)
rows = []
for case, label in cases.items():
    lab = np.asarray(nib.load(label).dataobj) > 0
    ref = np.asarray(nib.load(f"runs/adaptive/tau_0.0/{case}_seg.nii.gz").dataobj) > 0
    ref_u = np.asarray(nib.load(f"runs/adaptive/tau_0.0/{case}_uncertainty.nii.gz").dataobj)
    for tau in ("0.0", "0.05", "0.1", "0.2"):
        seg = np.asarray(nib.load(f"runs/adaptive/tau_{tau}/{case}_seg.nii.gz").dataobj) > 0
        unc = np.asarray(nib.load(f"runs/adaptive/tau_{tau}/{case}_uncertainty.nii.gz").dataobj)
        rep = json.load(open(f"runs/adaptive/tau_{tau}/{case}_report.json"))
        rows.append(dict(case=case, tau=tau, dice_to_full=round(float(dice(seg, ref)), 4), voxels_changed=int((seg != ref).sum()),
                         max_abs_uncertainty_diff=round(float(np.abs(unc - ref_u).max()), 3),
                         mean_abs_uncertainty_diff=round(float(np.abs(unc - ref_u).mean()), 5),
                         dice_to_label=round(float(dice(seg, lab)), 4), volume_ml=rep["lesion_volume_ml"],
                         uncertain_volume_ml=rep["uncertain_volume_ml"], review=rep["review_required"]))
for r in rows: print(r)
json.dump(rows, open("runs/adaptive/compare.json", "w"), indent=1)
