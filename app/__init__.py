"""Chain Studio: a local, offline studio that chains GGUF language models."""

import os as _os

__version__ = "0.1.0"

# Offline by design: no analytics from Gradio, no telemetry (or telemetry look-ups) from
# huggingface_hub. Set before either library is imported anywhere in the studio.
_os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
