"""What the installed llama.cpp can do, asked once in a child process (the studio's own process
never imports llama_cpp: the model worker does)."""

from __future__ import annotations

import functools
import subprocess
import sys

_ASK_GPU = "import llama_cpp, sys; sys.stdout.write('1' if llama_cpp.llama_supports_gpu_offload() else '0')"


@functools.cache
def gpu_offload_supported() -> bool:
    """True when this llama.cpp build can offload layers to a GPU (CUDA, Metal, Vulkan, …)."""
    try:
        done = subprocess.run([sys.executable, "-c", _ASK_GPU], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "1"
