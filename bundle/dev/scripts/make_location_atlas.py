"""Make the lesion-location atlas of ``bundle.outputs.locations`` from the MNI152 2009a templates in nilearn's wheel.

    pip download nilearn==0.14.1 --no-deps -d /tmp/nl && unzip -o -q /tmp/nl/nilearn-0.14.1-*.whl 'nilearn/datasets/data/mni_icbm152_*' -d /tmp/nl
    python bundle/dev/scripts/make_location_atlas.py /tmp/nl/nilearn/datasets/data

Writes, on a 2 mm grid, ``bundle/outputs/atlas/mni152_t1_brain_2mm.nii.gz`` (the T1 template inside its brain, the
registration target) and ``mni152_locations_2mm.nii.gz`` (uint8: 1 lateral ventricles, 2 cortex, 3 infratentorial).
In MNI mm, with g, w the grey- and white-matter probabilities:

    brain          g + w > 0.2, holes filled
    ventricles     1 - g - w > 0.5 inside the brain, at least 8 mm from its surface, |x| < 35, -50 < y < 40, -5 < z < 40
    cortex         g > 0.5 outside the deep grey-matter box |x| < 30, -35 < y < 28, -12 < z < 22
    infratentorial the cerebellum (the connected part of g + w > 0.95 around (20, -65, -35) once the brainstem box is
                   removed, closed and grown by 3 mm inside g + w > 0.3) and the brainstem box |x| < 15,
                   -45 < y < -10, z < -5 inside g + w > 0.3
"""

import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "outputs", "atlas")


def main(folder: str) -> None:
    load = lambda name: nib.load(os.path.join(folder, f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"))  # noqa
    t1, gm = load("t1"), load("gm")
    g, w = gm.get_fdata() / 255, load("wm").get_fdata() / 255
    affine = gm.affine
    i, j, k = np.meshgrid(*(np.arange(n) for n in g.shape), indexing="ij")
    x, y, z = (affine[a, 0] * i + affine[a, 1] * j + affine[a, 2] * k + affine[a, 3] for a in range(3))
    brain = ndimage.binary_fill_holes(g + w > 0.2)
    depth = ndimage.distance_transform_edt(brain)
    ventricles = (1 - g - w > 0.5) & brain & (depth >= 8) & (abs(x) < 35) & (y > -50) & (y < 40) & (z > -5) & (z < 40)
    ventricles = ndimage.binary_opening(ventricles)
    cortex = (g > 0.5) & ~((abs(x) < 30) & (y > -35) & (y < 28) & (z > -12) & (z < 22))
    stem = (abs(x) < 15) & (y > -45) & (y < -10) & (z < -5)
    core = (g + w > 0.95) & ~((abs(x) < 22) & (y > -48) & (y < 0) & (z < 5))
    labels, _ = ndimage.label(core)
    seed = tuple(np.round(np.linalg.inv(affine) @ [20, -65, -35, 1])[:3].astype(int))
    cerebellum = ndimage.binary_closing(labels == labels[seed], iterations=2)
    cerebellum = ndimage.binary_dilation(cerebellum, iterations=3) & (g + w > 0.3)
    infratentorial = (cerebellum | (stem & (g + w > 0.3))) & brain
    regions = np.zeros(g.shape, np.uint8)
    regions[cortex] = 2
    regions[ventricles] = 1
    regions[infratentorial] = 3
    # 2 mm grid: every other voxel (nearest), and the T1 inside the brain
    half = affine.copy()
    half[:3, :3] *= 2
    os.makedirs(OUT, exist_ok=True)
    nib.save(nib.Nifti1Image(regions[::2, ::2, ::2], half), os.path.join(OUT, "mni152_locations_2mm.nii.gz"))
    t1_brain = (t1.get_fdata() * brain)[::2, ::2, ::2].astype(np.uint8)
    nib.save(nib.Nifti1Image(t1_brain, half), os.path.join(OUT, "mni152_t1_brain_2mm.nii.gz"))
    for name, mask in (("ventricles", ventricles), ("cortex", cortex), ("infratentorial", infratentorial)):
        print(f"{name}: {mask.sum() / 1000:.1f} mL")


if __name__ == "__main__":
    main(sys.argv[1])
