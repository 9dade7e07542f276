"""Chain Studio: a local, offline studio that chains GGUF language models."""

__version__ = "0.1.0"
