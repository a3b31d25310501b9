"""Strength of the N4 field of every case scored in docs/results.md (stage 12): spread = q95 / q05 of the field
over the tissue voxels (above the volume mean), on the grid N4 sees in the bundle (after Spacingd). Run from the
bundle root after the commands that make runs/semisynth, runs/variants and runs/native/in (results.md)."""

import json
import os

import numpy as np
from monai.bundle import ConfigParser
from monai.transforms import Compose

from bundle.bias_field import n4_bias_field

DATALISTS = [("configs/datalist_shared.json", "validation"), ("configs/datalist_shared.json", "testing"),
             ("runs/semisynth/datalist.json", "testing"), ("runs/variants/validation/datalist.json", "testing"),
             ("runs/variants/testing/datalist.json", "testing")]
SKULL_ON = ["runs/native/in/patient01_study1_FLAIR.nii.gz", "runs/native/in/patient12_study1_FLAIR.nii.gz"]

parser = ConfigParser()
parser.read_config("configs/inference.yaml")
transforms = parser.get_parsed_content("preprocessing").transforms
resample = Compose(transforms[: [type(t).__name__ for t in transforms].index("Spacingd") + 1])
paths = [os.path.normpath(os.path.join(os.path.dirname(f), c["image"])) for f, key in DATALISTS
         for c in json.load(open(f))[key]] + SKULL_ON
for path in paths:
    image = resample({"image": path})["image"]
    x = image[0].numpy()
    field = n4_bias_field(x, [float(s) for s in image.pixdim])
    low, high = np.percentile(field[x > x.mean()], [5, 95])
    print(f"{os.path.basename(path)}\t{high / low:.3f}")
