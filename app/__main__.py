"""`python -m app [ui|demo-model|info] ...`: the studio's command line. Nothing heavy at import."""

from __future__ import annotations

import argparse
import os
import sys

from app.ui_defaults import DEFAULT_PORT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--models-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,  # so a value given before the sub-command is not reset
        help="folder of GGUF models (default: $CHAIN_STUDIO_MODELS_DIR, else models/ in the data folder)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Chain Studio: chain local GGUF language models, offline.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ui = commands.add_parser("ui", parents=[common], help="open the studio in the browser (default)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    ui.add_argument("--listen", action="store_true", help="serve on all network interfaces (needs --password)")
    ui.add_argument("--password", help="password for --listen (or set CHAIN_STUDIO_PASSWORD)")
    ui.add_argument("--no-browser", action="store_true", help="do not open a browser tab")

    demo = commands.add_parser("demo-model", parents=[common], help="write the scripted demo GGUF")
    demo.add_argument("path", nargs="?", help="file or folder to write to (default: the models folder)")
    demo.add_argument("--keep-existing", action="store_true", help="leave an existing file as it is")

    info = commands.add_parser("info", parents=[common], help="print a GGUF file's metadata as JSON")
    info.add_argument("path", help="GGUF file (a bare name is looked up in the models folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command and return its exit code."""
    args = build_parser().parse_args(argv)
    from app import cli

    command = args.command or "ui"
    models_dir = getattr(args, "models_dir", None)
    if command == "demo-model":
        return cli.cmd_demo_model(args.path, models_dir, args.keep_existing)
    if command == "info":
        return cli.cmd_info(args.path, models_dir)
    return cli.cmd_ui(
        port=getattr(args, "port", DEFAULT_PORT),
        listen=getattr(args, "listen", False),
        password=getattr(args, "password", None) or os.environ.get("CHAIN_STUDIO_PASSWORD"),
        open_browser=not getattr(args, "no_browser", False),
        models_dir=models_dir,
    )


if __name__ == "__main__":
    sys.exit(main())
