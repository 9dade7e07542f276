"""Defaults shared by the command line and the UI server (kept free of heavy imports)."""

DEFAULT_PORT = 7860
