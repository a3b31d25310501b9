#!/usr/bin/env bash
# Create ./.venv-label (at the bundle root): a MONAI Label 0.8.5 server environment that serves this bundle.
# Separate from the bundle's .venv because monailabel 0.8.5 needs pydicom < 3 (pydicom-seg) and numpy < 2
# (numpymaxflow), while the bundle and highdicom use pydicom 3. Why each step: docs/monailabel.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-label
if [ -x "$VENV/bin/monailabel" ] && "$VENV/bin/python" -c "import monailabel, torchvision.utils, monai, deepbet" 2>/dev/null; then
  exit 0
fi
bash bundle/venv_with_torch.sh "$VENV"
"$VENV/bin/python" -m pip install --quiet -r bundle/label/requirements.txt
# monailabel's own pins would pull sam2 (and the CUDA torchvision it needs) and pydicom 3 via dicomweb-client 0.61
"$VENV/bin/python" -m pip install --quiet --no-deps monailabel==0.8.5 pydicom-seg==0.4.1 torchvision==0.28.0
# torchvision from PyPI is built against CUDA torch; this start-up hook lets its pure-Python parts import on CPU torch
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp bundle/label/torchvision_cpu_shim.py "$SITE/"
echo "import torchvision_cpu_shim" > "$SITE/zz_torchvision_cpu_shim.pth"
"$VENV/bin/python" -c "import monailabel, torchvision.utils; print('monailabel', monailabel.__version__)"
