"""bundle.memory: glibc keeps freed memory for reuse when asked, and only then."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
from conftest import BUNDLE_ROOT

import bundle.memory as memory

# a fresh process: loads bundle/memory.py alone, optionally applies it, then mallocs and frees 64 MiB and reads
# glibc's mallinfo2 (bytes in mmapped blocks, bytes free in the heap) while the block is live and after free
PROBE = """
import ctypes, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("memory", sys.argv[1])
memory = importlib.util.module_from_spec(spec); spec.loader.exec_module(memory)
applied = memory.keep_freed_memory(sys.argv[2] == "1")
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2()
block = libc.malloc(64 << 20)
ctypes.memset(block, 1, 64 << 20)
live = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(json.dumps({"applied": applied, "mmapped": live.hblkhd - before.hblkhd, "free_after": after.fordblks}))
"""


def _probe(enabled: bool) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(BUNDLE_ROOT / "bundle" / "memory.py"), str(int(enabled))],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc settings (Linux with glibc only)")
def test_freed_block_stays_in_the_heap_only_when_enabled():
    tuned, default = _probe(True), _probe(False)
    assert tuned["applied"] and not default["applied"]
    assert tuned["mmapped"] == 0 and tuned["free_after"] >= 64 << 20  # from the heap, and kept there after free
    assert default["mmapped"] >= 64 << 20 and default["free_after"] < 64 << 20  # its own mmap, unmapped on free


class FakeLibc:
    def __init__(self, result: int):
        self.calls, self.result = [], result

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


def test_settings_and_refusal(monkeypatch, caplog):
    libc = FakeLibc(1)
    monkeypatch.setattr(memory, "_glibc", lambda: libc)
    assert memory.keep_freed_memory(False) is False and libc.calls == []
    assert memory.keep_freed_memory(True) is True
    assert libc.calls == [(memory.M_MMAP_THRESHOLD, 2**31 - 1), (memory.M_TRIM_THRESHOLD, -1)]
    monkeypatch.setattr(memory, "_glibc", lambda: FakeLibc(0))
    assert memory.keep_freed_memory(True) is False
    assert "refused" in caplog.text


def test_no_glibc_is_a_no_op(monkeypatch):
    monkeypatch.setattr(memory.platform, "system", lambda: "Darwin")
    assert memory.keep_freed_memory(True) is False
