"""Command line of the bundle: ``python -m bundle <command> [--flags]``.

Commands:
    export   trace models/model.pt to TorchScript models/model.ts (see bundle.export)

Inference and training run through MONAI's own runner, e.g.
``python -m monai.bundle run --config_file configs/inference.yaml``.
"""

from __future__ import annotations

import fire

from bundle.export import export_torchscript


def export(bundle_root: str = ".", ckpt: str = "models/model.pt", output: str = "models/model.ts") -> str:
    """Trace the network weights in ``ckpt`` into a TorchScript file ``output``; prints its path."""
    return export_torchscript(bundle_root=bundle_root, ckpt=ckpt, output=output)


def main() -> None:
    fire.Fire({"export": export})


if __name__ == "__main__":
    main()
