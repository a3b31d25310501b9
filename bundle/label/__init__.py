"""MONAI Label: ``python -m bundle label-serve --studies DIR`` serves this bundle with MONAI Label 0.8.5 (see
docs/monailabel.md). The server runs in its own environment, ``.venv-label`` (``bundle/label/setup.sh``)."""
