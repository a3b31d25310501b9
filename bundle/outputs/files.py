"""Atomic file writing: a temporary file beside the target, then a rename, so a killed run leaves the old file or the
new one, never a partial one. The temporary name carries the process id: ranks of a multi-process run may write the
same file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (module docstring)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, content: Any) -> None:
    """Write ``content`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(content, indent=2))
