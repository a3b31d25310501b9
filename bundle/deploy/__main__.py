"""``python -m bundle.deploy -i DICOM_DIR -o OUT_DIR [--num_samples N] [--num_steps K]``: run the Deploy app.

From the bundle's main environment (no MONAI Deploy SDK) this hands over to ``.venv-deploy`` (created by
``bash bundle/deploy/setup.sh``). Holoscan needs ``libcudart.so.13`` even without a GPU: the copy that the
``nvidia-cuda-runtime`` wheel installs is loaded first, so no ``LD_LIBRARY_PATH`` is needed.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import sysconfig

BUNDLE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY_VENV = os.path.join(BUNDLE_ROOT, ".venv-deploy")
DEPLOY_PYTHON = os.path.join(DEPLOY_VENV, "bin", "python")


def _load_cuda_runtime() -> None:
    for lib in glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu*", "lib", "libcudart.so.*")):
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)


def split_settings(argv: list[str]) -> tuple[dict, list[str]]:
    """(``{"num_samples", "num_steps"}`` given as ``--name N`` or ``--name=N``, the other arguments for the app)."""
    settings, rest, i = {}, [], 0
    while i < len(argv):
        name, _, value = argv[i].partition("=")
        if name in ("--num_samples", "--num_steps"):
            if not value:
                i += 1
                value = argv[i] if i < len(argv) else ""
            if not value.isdigit():
                raise SystemExit(f"error: {name} takes a positive integer, got {value!r}")
            settings[name[2:]] = int(value)
        else:
            rest.append(argv[i])
        i += 1
    return settings, rest


def main() -> None:
    try:
        _load_cuda_runtime()
        import highdicom  # noqa: F401
        import monai.deploy  # noqa: F401
    except ImportError:
        if os.path.exists(DEPLOY_PYTHON) and os.path.realpath(sys.prefix) != os.path.realpath(DEPLOY_VENV):
            path = os.pathsep.join(filter(None, [BUNDLE_ROOT, os.environ.get("PYTHONPATH")]))
            env = dict(os.environ, PYTHONPATH=path)
            os.execve(DEPLOY_PYTHON, [DEPLOY_PYTHON, "-m", "bundle.deploy", *sys.argv[1:]], env)
        raise SystemExit("error: the MONAI Deploy App SDK is not installed: run `bash bundle/deploy/setup.sh` "
                         "(creates .venv-deploy), then run this command again") from None
    settings, app_argv = split_settings(sys.argv[1:])
    from bundle.deploy.app import LesionSegApp

    sys.argv = [sys.argv[0], *app_argv]  # the SDK parses -i/-o/-m/-l from sys.argv
    LesionSegApp(**settings).run()


if __name__ == "__main__":
    main()
