"""MONAI Deploy App SDK application: DICOM series in, DICOM SEG of the lesion mask out (see docs/deploy.md).

Runs in its own environment (``bash bundle/deploy/setup.sh`` creates ``.venv-deploy``); ``python -m bundle.deploy``
from the bundle's main environment hands over to it.
"""
